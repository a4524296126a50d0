"""The top encoder layer computed for the first token only (fast path ``first_token_top``), in training.

A BERT-family classifier reads one position of the last layer: the first ([CLS], <s>) token, through the pooler or
the classification head. Every other position of that layer is computed and thrown away — and, in training,
differentiated too. Its keys and values still need every position (the first token attends to them all), but its
query, attention output, feed-forward and LayerNorms need only the first one: about 2/12 of a layer's matmul
work per token instead of 12/12, in the forward and the backward. On MiniLM's 6 layers that is 14% of a full
step's FLOPs, and more of what is left once the lower layers are frozen (bench/RESULTS.md).

The logits are the model's own to rounding: ``use_first_token_top(model)`` checks them against the stock forward on
a padded probe batch before it changes anything, and leaves the model as it is for an architecture it does not
know. The swap changes the layer's class, not its weights, so a run saves and reloads as an ordinary model.
transformers has no switch for this (its ``output_hidden_states`` plumbing assumes every position).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from bertdemo.fast.probe import logits_tolerance, probe_batch

_log = logging.getLogger(__name__)
# Classifiers whose head reads only position 0 of the last hidden states (transformers' own code says so:
# BertPooler, the Roberta/XLM-R/Electra classification heads' ``features[:, 0, :]``).
_FIRST_TOKEN_HEADS = {"BertForSequenceClassification", "RobertaForSequenceClassification",
                      "XLMRobertaForSequenceClassification", "CamembertForSequenceClassification",
                      "ElectraForSequenceClassification"}
_SUBCLASSES: dict[type, type] = {}


def use_first_token_top(model: nn.Module) -> bool:
    """Make ``model``'s last encoder layer compute the first token only; True when it did. The model's logits
    are unchanged (checked here on a probe batch); its ``last_hidden_state`` then has one position."""
    # every classifier in _FIRST_TOKEN_HEADS keeps its layers at base_model.encoder.layer
    layers = getattr(getattr(getattr(model, "base_model", model), "encoder", None), "layer", None)
    if type(model).__name__ not in _FIRST_TOKEN_HEADS or not layers or not _plain_layers(model):
        return False
    layer = layers[-1]
    if isinstance(layer, tuple(_SUBCLASSES.values())):
        return True
    stock = type(layer)
    was_training = model.training
    try:
        model.eval()
        probe = probe_batch(model)
        with torch.inference_mode():
            expected = model(**probe).logits.float()
            layer.__class__ = _first_token_class(stock)
            got = model(**probe).logits.float()
    except Exception as err:  # noqa: BLE001 - a layer laid out unlike BERT's: keep the stock forward
        layer.__class__ = stock
        _log.info("first-token top layer not used for %s: %s", type(model).__name__, err)
        return False
    finally:
        model.train(was_training)
    tol = logits_tolerance(model)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=tol, atol=tol):
        layer.__class__ = stock
        _log.info("first-token top layer disagrees with %s's own forward: not used", type(model).__name__)
        return False
    return True


def _plain_layers(model: nn.Module) -> bool:
    config = model.config
    return (not getattr(config, "is_decoder", False) and not getattr(config, "add_cross_attention", False)
            # relative position schemes add terms to the scores that the layer's own attention computes
            and getattr(config, "position_embedding_type", "absolute") in (None, "absolute")
            and not getattr(config, "chunk_size_feed_forward", 0))


def _first_token_class(stock: type) -> type:
    """A subclass of the stock layer class whose forward computes the first position only (made once per class;
    a subclass, so ``isinstance`` checks, ``deepcopy`` and gradient checkpointing see the layer they know)."""
    if stock not in _SUBCLASSES:
        _SUBCLASSES[stock] = type(f"FirstToken{stock.__name__}", (stock,), {"forward": _first_token_forward})
    return _SUBCLASSES[stock]


def _first_token_forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         *args, **kwargs) -> torch.Tensor:
    """The stock BERT layer's maths (self-attention, its output block, the feed-forward block) with the query and
    everything after attention taken at position 0 only: returns (B, 1, d)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    attention = self.attention.self
    batch, length, _ = hidden_states.shape
    size = attention.attention_head_size
    first = hidden_states[:, :1]  # (B, 1, d)
    query = attention.query(first).view(batch, 1, -1, size).transpose(1, 2)  # (B, H, 1, hd)
    key = attention.key(hidden_states).view(batch, length, -1, size).transpose(1, 2)  # (B, H, T, hd)
    value = attention.value(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[-2] > 1:
        attention_mask = attention_mask[:, :, :1]  # the first query's row of the (B, 1, T, T) mask
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    context, _ = interface(attention, query, key, value, attention_mask,
                           dropout=attention.dropout.p if attention.training else 0.0, scaling=attention.scaling)
    attended = self.attention.output(context.reshape(batch, 1, -1), first)
    return self.feed_forward_chunk(attended)
