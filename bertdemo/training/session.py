"""Everything one training run holds — model, tokenizer, loaders, optimizer, schedule, precision strategy — and
the training step itself. Built by ``start_session``; dropped as a whole when the run ends, which frees its
memory.

The plain path reads top to bottom: load the model, tokenize, make loaders, AdamW, ``accelerator.prepare``, a
linear schedule, and a step of forward, cross-entropy, backward, clip, update. The optional CPU speed paths
enter in four places only: ``use_cpu_training_kernels``, ``use_first_token_top``, the precision strategy and the
frozen layers' ``FrozenCache`` (``bertdemo.fast``).

A run's randomness (the new head's weights, dropout) comes from a generator state of its own
(``bertdemo.seeding.TorchRng``, seeded with ``config.seed``), swapped in around its initialisation and each
step: the same seed gives the same run however many other threads draw random numbers meanwhile, and the
global generators are never reseeded.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from accelerate import Accelerator
from transformers import get_scheduler

from bertdemo import fast
from bertdemo.config import SCRATCH_MODEL, TrainConfig
from bertdemo.data import LabeledData
from bertdemo.fast.cpu_training_kernels import use_cpu_training_kernels
from bertdemo.fast.first_token_top import use_first_token_top
from bertdemo.fast.frozen_cache import FrozenCache, frozen_prefix, kept_states, memory_budget, supports
from bertdemo.models import load_classifier, load_tokenizer
from bertdemo.runs import lineage_of
from bertdemo.seeding import TorchRng
from bertdemo.training.freezing import encoder_layers, freeze_lower_layers, planned_freeze
from bertdemo.training.loaders import CountingCollator, eval_loader, model_inputs, tokenize_frame, train_loader
from bertdemo.training.plan import plan_batch_size, plan_training
from bertdemo.training.precision import Plain, precision_strategy
from bertdemo.training.scratch import build_scratch_model, build_scratch_tokenizer

EVAL_BATCH_SIZE = 128  # inference needs no activations for backward: bigger batches are cheaper per text


@dataclass
class Session:
    accelerator: Accelerator
    device: torch.device
    precision: Plain  # the strategy (bertdemo.training.precision); .name is "fp32", "bf16" or "fp16"
    tokenizer: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    loader: object
    val_loader: object
    val_frame: pd.DataFrame  # the validation rows in the order val_loader yields them
    collator: CountingCollator
    epochs: int  # as planned (bertdemo.training.plan): config.epochs, or more for a small data set (batch size too)
    class_weights: torch.Tensor | None  # (C,) cross-entropy weights (multi-label: BCE positive weights), or None
    notes: tuple[str, ...]  # the plan's notes
    rng: TorchRng  # this run's random state (initialisation, then dropout step after step)
    multi_label: bool = False  # a sigmoid per label and BCE, instead of a softmax and cross-entropy
    frozen_cache: FrozenCache | None = None  # the frozen layers' output kept from the first epoch on (CPU, >1 epoch)


def start_session(config: TrainConfig, data: LabeledData) -> Session:
    # Precision is handled by our strategies, not by Accelerator(mixed_precision=...): accelerate's state is a
    # process-wide singleton that refuses a second, different precision, and the app trains many runs.
    accelerator = Accelerator()
    device = accelerator.device
    rng = TorchRng(config.seed, device)
    with rng:
        tokenizer, model = _build_model(config, data)
    if config.dropout is not None:
        _set_dropout(model, config.dropout)
    if device.type == "cpu" and fast.enabled("cpu_kernels"):
        use_cpu_training_kernels(model)
    if fast.enabled("first_token_top"):
        use_first_token_top(model)  # after the attention swap: the top layer calls the model's attention function
    freeze_notes = _freeze_notes(model)  # before accelerate may wrap the model
    precision = precision_strategy(config.precision, accelerator, model)
    train_ds = tokenize_frame(data.train, tokenizer, data.label2id, config.max_length, multi_label=data.multi_label,
                              rows=True)
    # Validation sorted by length: evaluation batches then carry almost no padding.
    val_frame = data.validation.assign(_len=data.validation["text"].str.len()).sort_values("_len", kind="stable")
    val_ds = tokenize_frame(val_frame, tokenizer, data.label2id, config.max_length, multi_label=data.multi_label,
                            rows=True, first_row=len(data.train))
    collator = CountingCollator(tokenizer, pad_to_multiple_of=8 if device.type == "cuda" else None)
    batch_size, notes = plan_batch_size(config, len(data.train), accelerator.num_processes)
    loader = train_loader(train_ds, collator, batch_size, seed=config.seed, batching=config.batching)
    val_loader = eval_loader(val_ds, CountingCollator(tokenizer), EVAL_BATCH_SIZE)
    # fused: one kernel for all tensors instead of torch's per-tensor loop on CPU (bench/RESULTS.md)
    optimizer = torch.optim.AdamW(_param_groups(precision.named_trainable(), config.weight_decay),
                                  lr=config.learning_rate, fused=device.type in ("cpu", "cuda"))
    with rng:  # preparing may draw a seed for a sampler without a generator (several processes)
        model, optimizer, loader, val_loader = accelerator.prepare(model, optimizer, loader, val_loader)
    plan = plan_training(config, data, len(loader), batch_size, notes)
    total_steps = len(loader) * plan.epochs
    scheduler = get_scheduler(config.scheduler, optimizer, num_warmup_steps=round(config.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    weights = None if plan.class_weights is None else torch.tensor(plan.class_weights, device=device)
    return Session(accelerator=accelerator, device=device, precision=precision, tokenizer=tokenizer, model=model,
                   optimizer=optimizer, scheduler=scheduler, loader=loader, val_loader=val_loader,
                   val_frame=val_frame, collator=collator, epochs=plan.epochs, class_weights=weights,
                   notes=(*plan.notes, *freeze_notes), rng=rng, multi_label=data.multi_label,
                   frozen_cache=_frozen_cache(accelerator, model, tokenizer, plan.epochs))


def _frozen_cache(accelerator: Accelerator, model: torch.nn.Module, tokenizer, epochs: int) -> FrozenCache | None:
    """A cache of the frozen layers' output where one pays: on the CPU (a GPU recomputes them faster than the
    states travel), for more than one epoch, with frozen layers, right-hand padding (the kept states fill each
    row from its start) and a model whose embeddings feed layer 0 directly. Each process keeps its own share."""
    if accelerator.device.type != "cpu" or epochs < 2 or not fast.enabled("frozen_cache"):
        return None
    model = accelerator.unwrap_model(model)  # several processes: prepare wrapped it
    if getattr(tokenizer, "padding_side", "right") != "right" or not supports(model):
        return None
    embeddings, layers = encoder_layers(model)
    frozen = frozen_prefix(embeddings, layers)
    return FrozenCache(embeddings, frozen, memory_budget(accelerator.num_processes)) if frozen else None


def training_step(s: Session, batch: dict, max_grad_norm: float) -> float:
    """One optimizer step; returns the batch's training loss."""
    with s.rng, kept_states(s.frozen_cache, batch):  # dropout draws from this run's state only
        with s.precision.autocast():
            logits = s.model(**model_inputs(batch)).logits  # (B, C)
        loss = batch_loss(s, logits, batch["labels"])
        s.precision.backward(loss)
    s.precision.step(s.optimizer, max_grad_norm)
    s.scheduler.step()
    s.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def batch_loss(s: Session, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss, in fp32 whatever the model's dtype: cross-entropy over classes (weighted by class when
    the plan says so), or for multi-label a binary cross-entropy per label, averaged over labels and texts as
    transformers' own multi-label loss is (positive weights per label when the plan says so)."""
    if s.multi_label:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float(),
                                                                    pos_weight=s.class_weights)
    return torch.nn.functional.cross_entropy(logits.float(), labels, weight=s.class_weights)


def _build_model(config: TrainConfig, data: LabeledData):
    if config.model == SCRATCH_MODEL:
        tokenizer = build_scratch_tokenizer(data.train["text"].tolist())
        model = build_scratch_model(tokenizer, data.labels, max_length=config.max_length, seed=config.seed,
                                    multi_label=data.multi_label)
        return tokenizer, model
    tokenizer = load_tokenizer(config.model)
    model = load_classifier(config.model, data.labels, attn="sdpa", multi_label=data.multi_label)
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions is not None and config.max_length > positions:
        raise ValueError(f"max_length {config.max_length} is longer than this model reads ({positions} word-pieces). "
                         f"Set max_length to {positions} or less.")
    if config.freeze_word_embeddings:
        # Skips the dense gradient, clipping and AdamW update of the word-embedding matrix (half of MiniLM's
        # weights); pretrained word vectors barely move in a few epochs of fine-tuning anyway (bench/RESULTS.md).
        model.get_input_embeddings().weight.requires_grad_(False)
    layers = len(encoder_layers(model)[1])
    frozen = planned_freeze(config.freeze_layers, "freeze_layers" in config.given, layers,
                            train_embeddings=not config.freeze_word_embeddings,
                            from_scratch=_learned_from_scratch(config.model))
    freeze_lower_layers(model, frozen)
    return tokenizer, model


def _learned_from_scratch(model: str) -> bool:
    """True when ``model`` is a saved run whose lineage began with the scratch model (a labeling round continues
    its project's last run, whose folder is then the model)."""
    return lineage_of(Path(str(model)).expanduser()) == SCRATCH_MODEL


def _freeze_notes(model: torch.nn.Module) -> list[str]:
    """What freezing did, in words (after the plan's notes)."""
    layers = encoder_layers(model)[1]
    frozen = sum(1 for layer in layers if not any(p.requires_grad for p in layer.parameters()))
    if frozen:
        return [f"the lowest {frozen} of {len(layers)} encoder layers stay as pretrained (freeze_layers), so each "
                "step backpropagates through fewer layers; set freeze_layers to 0 to train them all."]
    return []


def _set_dropout(model: torch.nn.Module, p: float) -> None:
    """One rate for every dropout layer (BERT's attention reads its rate from such a layer too)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def _param_groups(named_params: Iterable[tuple[str, torch.Tensor]], weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (as in BERT's original recipe)."""
    decay, no_decay = [], []
    for name, param in named_params:
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
