"""Keeping the frozen lower layers' output from one epoch to the next (fast path ``frozen_cache``).

With the embeddings and the lowest N encoder layers frozen (``bertdemo.training.freezing``) and no dropout in them,
what they compute for a training text is the same in every epoch. So the first time a text is trained on, the
output of layer N-1 at its real word-pieces is kept (on the CPU, within a memory budget); a later batch whose texts
are all kept skips the embeddings and the frozen layers and starts layer N from the kept states. The validation
rows, scored after every epoch, are kept the same way (under their own keys, numbered after the training rows).

Exact: the same weights give the same numbers (up to the float summation order of another batch's padding). The
padding positions, which no real position attends to and the classifier never reads, start as zeros instead of
what the frozen layers made of [PAD]. Nothing in the weights changes: the module forwards are swapped on the
instances only, so state dicts, saving and reloading are the stock ones.

Why not transformers' ``past_key_values`` or a hook: a cache must *skip* the frozen forward, which a hook cannot,
and the encoder has no entry point between its layers.

Only for base models whose embeddings module hands layer 0 its input directly (``BASE_MODELS``): ELECTRA and
ConvBERT project the embeddings between the two, which a kept layer input would go through again.
"""
from __future__ import annotations

import contextlib
import os
import types
from collections.abc import Iterator, Sequence

import torch
from torch import nn

ROW = "row"  # the batch key naming each text's row (training rows, then validation): the cache's key, no model input
BUDGET_SHARE = 0.125  # of the machine's (or the container's) memory, at most BUDGET_CAP: what the kept states take
BUDGET_CAP = 2 << 30
BASE_MODELS = ("BertModel", "RobertaModel", "XLMRobertaModel", "CamembertModel")  # embeddings straight into layer 0
CGROUP_LIMIT = "/sys/fs/cgroup/memory.max"


def memory_budget(processes: int = 1) -> int:
    """Bytes the kept states of one training process may take here (``processes`` share the machine)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not every platform tells
        total = 8 << 30
    try:  # a container's limit is lower than the host's memory; "max" means none
        with open(CGROUP_LIMIT) as handle:
            limit = handle.read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return int(min(BUDGET_CAP, total * BUDGET_SHARE) / max(1, processes))


def supports(model: nn.Module) -> bool:
    """Whether ``model``'s embeddings feed its first encoder layer directly (``BASE_MODELS``)."""
    base = getattr(model, "base_model", model)
    return type(base).__name__ in BASE_MODELS and not hasattr(base, "embeddings_project")


class _Swapped:
    """A module's forward while the cache is on. A deep copy of the module (a checkpoint's copy of the model) gets
    its stock forward back instead of one that would run this module and read this cache."""

    def __init__(self, module: nn.Module, forward):
        self.module, self.forward = module, forward

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __deepcopy__(self, memo):
        copy = memo[id(self.module)]  # deepcopy registers the module's copy before copying its attributes
        return types.MethodType(type(copy).forward, copy)


class FrozenCache:
    """The kept layer-N inputs by row, and whether the batch being trained on can start from them."""

    def __init__(self, embeddings: nn.Module, frozen: Sequence[nn.Module], budget: int):
        self.embeddings, self.frozen = embeddings, list(frozen)
        self.budget = budget
        self.kept: dict[int, torch.Tensor] = {}  # row -> (real length, d), detached
        self.used = 0
        self.hits = self.misses = 0  # batches that started from kept states / computed the frozen layers
        self._rows: list[int] | None = None
        self._lengths: list[int] = []
        self._hit = False
        self._install()

    @contextlib.contextmanager
    def batch(self, rows: torch.Tensor, attention_mask: torch.Tensor) -> Iterator[None]:
        """Within it, the model's forward on this batch starts from the kept states when every row has them,
        and keeps the states of rows that have none yet."""
        self._rows = [int(r) for r in rows]
        self._lengths = [int(n) for n in attention_mask.sum(dim=1)]
        self._hit = all(r in self.kept for r in self._rows)
        if self._hit:
            self.hits += 1
        else:
            self.misses += 1
        try:
            yield
        finally:
            self._rows, self._hit = None, False

    def _install(self) -> None:
        stock_embeddings = self.embeddings.forward

        def embeddings_forward(input_ids=None, *args, **kwargs):
            if self._hit:
                return self._stacked(input_ids.shape[1], input_ids.device)
            return stock_embeddings(input_ids, *args, **kwargs)

        self.embeddings.forward = _Swapped(self.embeddings, embeddings_forward)
        for i, layer in enumerate(self.frozen):
            self._install_layer(layer, last=i == len(self.frozen) - 1)

    def _install_layer(self, layer: nn.Module, last: bool) -> None:
        stock = layer.forward

        def layer_forward(hidden_states, *args, **kwargs):
            if self._hit:
                return hidden_states  # already layer N's input
            out = stock(hidden_states, *args, **kwargs)
            if last and self._rows is not None and isinstance(out, torch.Tensor):
                self._keep(out)
            return out

        layer.forward = _Swapped(layer, layer_forward)

    def _keep(self, out: torch.Tensor) -> None:
        for i, (row, length) in enumerate(zip(self._rows, self._lengths)):
            if row in self.kept:
                continue
            size = length * out.shape[-1] * out.element_size()
            if self.used + size > self.budget:
                return  # full: the rows not kept are computed every epoch, as without the cache
            self.kept[row] = out[i, :length].detach().clone()
            self.used += size

    def _stacked(self, width: int, device: torch.device) -> torch.Tensor:
        first = self.kept[self._rows[0]]
        stacked = torch.zeros(len(self._rows), width, first.shape[-1], dtype=first.dtype, device=device)
        for i, row in enumerate(self._rows):
            kept = self.kept[row]
            stacked[i, :kept.shape[0]] = kept
        return stacked


def kept_states(cache: FrozenCache | None, batch: dict) -> contextlib.AbstractContextManager:
    """``cache.batch`` for a training or validation batch (its ``ROW`` keys and attention mask); with no cache, a
    context that does nothing."""
    return cache.batch(batch[ROW], batch["attention_mask"]) if cache is not None else contextlib.nullcontext()


def frozen_prefix(embeddings: nn.Module | None, layers: Sequence[nn.Module]) -> list[nn.Module]:
    """The lowest layers that, with the embeddings, have no trainable weight and no active dropout (what the
    cache may skip); [] when the embeddings train or drop out."""
    def fixed(module: nn.Module) -> bool:
        return (not any(p.requires_grad for p in module.parameters())
                and not any(isinstance(m, nn.Dropout) and m.p > 0 for m in module.modules()))

    if embeddings is None or not fixed(embeddings):
        return []
    prefix = []
    for layer in layers:
        if not fixed(layer):
            break
        prefix.append(layer)
    return prefix
