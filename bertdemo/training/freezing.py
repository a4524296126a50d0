"""Freezing the lower encoder layers of a pretrained model for fine-tuning.

With the embeddings and the lowest N layers frozen, autograd records nothing below layer N: the backward pass,
the gradients, clipping and AdamW cover only the layers above. A backward costs about twice its forward, so on
a 6-layer MiniLM freezing 2 layers leaves 14 of 18 layer-passes a step (bench/RESULTS.md measures what that buys
and what it costs in accuracy). Lower layers hold the most general features (word pieces in context), which
fine-tuning on a few thousand labels moves least.

transformers has no switch for this, and peft's adapters change the architecture; this only clears
``requires_grad``, so a saved run is an ordinary model.
"""
from __future__ import annotations

from pathlib import Path

import torch


def encoder_layers(model: torch.nn.Module) -> tuple[torch.nn.Module | None, list[torch.nn.Module]]:
    """(the embeddings module, the encoder's layers in order) of a BERT-family model (BERT, RoBERTa, ELECTRA,
    DistilBERT and their kin); layers [] when the model is laid out otherwise."""
    base = getattr(model, "base_model", model)
    embeddings = getattr(base, "embeddings", None)
    for holder in ("encoder", "transformer"):
        layers = getattr(getattr(base, holder, None), "layer", None)
        if isinstance(layers, torch.nn.ModuleList):
            return embeddings, list(layers)
    return embeddings, []


def planned_freeze(count: int, given: bool, layers: int, *, train_embeddings: bool = False,
                   from_scratch: bool = False) -> int:
    """How many layers to freeze: ``count`` as a person chose it, or — the default, which must suit any model —
    at most a third of the model's layers (2 of MiniLM's 6 or BERT-base's 12, none of a 2-layer toy), and none
    when the word embeddings are to be trained (they sit below every layer, so the whole backward runs anyway)
    or the weights were learned from random ones in this app (``from_scratch``: its lower layers are no
    pretrained features to keep)."""
    if given:
        if count and train_embeddings:
            raise ValueError(f"freeze_layers {count} keeps the embeddings as they are, but training the word "
                             "embeddings was asked for too. Set freeze_layers to 0 to train the embeddings, or "
                             "freeze the word embeddings.")
        return count
    return 0 if train_embeddings or from_scratch else min(count, layers // 3)


def check_layer_count(model_name: str, count: int) -> None:
    """Refuse ``count`` frozen layers that the model cannot spare, before any job or model load — read from the
    model's config where that can be had here (the embedded model, a folder); for a hub id the
    training run refuses it once the model is loaded."""
    from transformers import AutoConfig

    from bertdemo.config import SCRATCH_MODEL
    from bertdemo.models import resolve_model

    if count <= 0 or model_name == SCRATCH_MODEL:
        return
    try:
        folder = Path(resolve_model(model_name))
        if not (folder / "config.json").is_file():  # a hub id: asking the network would hold the click up
            return
        layers = getattr(AutoConfig.from_pretrained(folder), "num_hidden_layers", None)
    except Exception:  # noqa: BLE001 - no readable config here: the run itself says what is wrong
        return
    if isinstance(layers, int) and count >= layers:
        raise ValueError(_too_many(count, layers))


def _too_many(count: int, layers: int) -> str:
    return (f"freeze_layers is {count}, but this model has {layers} encoder layers and at least one must be trained. "
            f"Set freeze_layers to at most {layers - 1} (0 trains them all).")


def freeze_lower_layers(model: torch.nn.Module, count: int) -> int:
    """Freeze the embeddings, the lowest ``count`` encoder layers and any encoder weight shared between layers;
    returns how many layers stay trained.

    A ValueError says what to set when the model has no layers we can find, or not more than ``count``."""
    if count <= 0:
        return len(encoder_layers(model)[1])
    embeddings, layers = encoder_layers(model)
    if not layers or embeddings is None:
        raise ValueError(f"freeze_layers works for BERT-style encoders; this model ({type(model).__name__}) has "
                         "no encoder layers we can find. Set freeze_layers to 0.")
    if count >= len(layers):
        raise ValueError(_too_many(count, len(layers)))
    # Everything of the encoder but the layers above ``count`` and the pooler: also the weights some families
    # share between layers or keep between the embeddings and layer 0 (ELECTRA's embeddings_project, DeBERTa's
    # relative embeddings, MPNet's attention bias), through which a backward would otherwise still run.
    base = getattr(model, "base_model", model)
    trained = {id(p) for module in (*layers[count:], getattr(base, "pooler", None)) if module is not None
               for p in module.parameters()}
    for param in base.parameters():
        if id(param) not in trained:
            param.requires_grad_(False)
    return len(layers) - count
