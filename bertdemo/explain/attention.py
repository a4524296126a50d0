"""Attention for one text, computed on demand: every layer's and head's weights, and their rollout.

The weights come from the prediction model itself (``Predictor.forward_with_attention``): the view explains the
numbers the Predict view shows. Attention is not explanation — ``attributions`` and ``faithfulness`` exist so a
user can compare. Everything returned is plain numpy: the UI draws it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from bertdemo.explain.tokens import encode_one, token_view
from bertdemo.inference.predict import Predictor


@dataclass(frozen=True)
class AttentionResult:
    tokens: list[str]  # word-pieces as the tokenizer produced them, [CLS] and [SEP] included
    weights: np.ndarray  # (layers, heads, T, T); each row sums to 1
    rollout: np.ndarray  # (T, T) attention rollout (Abnar & Zuidema 2020); rows sum to 1
    truncated: bool  # the text was longer than max_length word-pieces and was cut
    max_length: int
    probabilities: dict[str, float]  # as Predict shows them: a softmax, or each label's sigmoid (multi-label)
    special: list[bool] = field(default_factory=list)  # which tokens are the tokenizer's special ones
    word_ids: list[int | None] = field(default_factory=list)  # the word each piece belongs to (None: special)


def attention(predictor: Predictor, text: str) -> AttentionResult:
    """All attention weights of every layer and head for one text, plus their rollout."""
    batch, truncated = encode_one(predictor, text)
    logits, attentions = predictor.forward_with_attention(batch)
    if not attentions or attentions[0] is None:
        raise ValueError("This model returned no attention weights. Load it with attn_implementation='eager'.")
    weights = torch.stack([a[0] for a in attentions]).float().cpu().numpy()  # (L, H, T, T)
    probs = predictor.activate(logits)[0].cpu().numpy()  # softmax, or a sigmoid per label (multi-label)
    view = token_view(predictor, text, batch["input_ids"][0].tolist())
    return AttentionResult(tokens=view.tokens, weights=weights, rollout=attention_rollout(weights),
                           truncated=truncated, max_length=predictor.max_length,
                           probabilities={label: float(p) for label, p in zip(predictor.labels, probs)},
                           special=view.special, word_ids=view.word_ids)


def attention_rollout(weights: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020): average heads, mix in the residual path, multiply layers.

    ``weights`` is (L, H, T, T); the result is (T, T): how much each token's final representation draws
    on each input token.
    """
    layers = weights.mean(axis=1)  # (L, T, T)
    n = layers.shape[-1]
    rollout = np.eye(n)
    for layer in layers:
        mixed = residual * np.eye(n) + (1 - residual) * layer
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        rollout = mixed @ rollout
    return rollout
