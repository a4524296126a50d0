"""Explanations for one text, computed on demand: attention weights, attention rollout, token attributions.

Attention comes from an eager-attention copy of the model (``Predictor.eager_model``); attributions
(gradient×input, integrated gradients) use captum on the word-embedding layer of the fast model.
Everything returned is plain numpy: the UI draws it. Attention is not explanation — attributions and
(later) faithfulness scores exist so a user can compare.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from bertdemo.device import autocast
from bertdemo.predict import Predictor

ATTRIBUTION_METHODS = ("integrated_gradients", "grad_x_input")
FIRST_PASS_STEPS = 16  # integrated gradients try this many steps first; cost grows with steps x word-pieces


@dataclass(frozen=True)
class AttentionResult:
    tokens: list[str]  # word-pieces as the tokenizer produced them, [CLS] and [SEP] included
    weights: np.ndarray  # (layers, heads, T, T); each row sums to 1
    rollout: np.ndarray  # (T, T) attention rollout (Abnar & Zuidema 2020); rows sum to 1
    truncated: bool  # the text was longer than max_length word-pieces and was cut
    max_length: int
    probabilities: dict[str, float]


@dataclass(frozen=True)
class AttributionResult:
    tokens: list[str]
    scores: np.ndarray  # (T,) signed, in logit units: positive pushed the target class up
    target: str
    method: str
    probability: float  # the model's probability of the target class
    delta: float  # integrated gradients' completeness error in logit units (0 for grad×input)
    truncated: bool
    steps: int = 0  # integration steps integrated gradients used (0 for grad×input)


def _encode_one(predictor: Predictor, text: str) -> tuple[dict[str, torch.Tensor], bool]:
    if not text or not str(text).strip():
        raise ValueError("The text is empty. Type a sentence to explain.")
    return predictor.encode([str(text)]), predictor.count_tokens(text) > predictor.max_length


def attention(predictor: Predictor, text: str) -> AttentionResult:
    """All attention weights of every layer and head for one text, plus their rollout."""
    batch, truncated = _encode_one(predictor, text)
    model = predictor.eager_model()
    with predictor.explain_lock, torch.inference_mode():
        out = model(**batch, output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise ValueError("This model returned no attention weights. Load it with attn_implementation='eager'.")
    weights = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, H, T, T)
    probs = torch.softmax(out.logits.float(), dim=-1)[0].cpu().numpy()
    tokens = predictor.tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    return AttentionResult(tokens=tokens, weights=weights, rollout=attention_rollout(weights), truncated=truncated,
                           max_length=predictor.max_length,
                           probabilities={label: float(p) for label, p in zip(predictor.labels, probs)})


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


def attributions(predictor: Predictor, text: str, target: str | None = None,
                 method: str = "integrated_gradients", steps: int = 50) -> AttributionResult:
    """Per-token attributions toward ``target`` (default: the predicted class) on the word embeddings.

    Scores are summed over the embedding dimension and explain the target's logit (its evidence before the
    softmax). Integrated gradients use a baseline of [PAD] tokens that keeps [CLS] and [SEP] in place; their
    scores add up to logit(target | text) − logit(target | baseline) of the fp32 model, up to ``delta`` (measured
    against that fp32 gap, also when the integration itself ran in bf16). The logit, not the
    probability: the softmax saturates along the path, and 50 steps then leave errors as large as the
    probability itself, while the logit path converges (measured: error 0.07 vs 0.39 on 59 word-pieces).

    ``steps`` is the most integration steps: a first pass with ``FIRST_PASS_STEPS`` is kept when its
    completeness error is already within ``_good_enough`` (often so on longer texts), else the full count runs.
    """
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"Unknown attribution method {method!r}. Use one of: {', '.join(ATTRIBUTION_METHODS)}.")
    if not 2 <= steps <= 300:
        raise ValueError(f"steps must be between 2 and 300 (got {steps}).")
    batch, truncated = _encode_one(predictor, text)
    model = predictor.eager_model()  # captum hooks its embedding layer: never the model predictions share
    input_ids = batch["input_ids"]  # (1, T)
    extra = {k: v for k, v in batch.items() if k != "input_ids"}
    baseline = _baseline(predictor, input_ids)
    with predictor.explain_lock, torch.inference_mode():
        logits = model(**batch).logits.float()[0]  # (C,)
        baseline_logits = model(input_ids=baseline, **extra).logits.float()[0]
    probs = torch.softmax(logits, dim=-1)
    if target is None:
        target_id = int(probs.argmax())
    elif target in predictor.labels:
        target_id = predictor.labels.index(target)
    else:
        raise ValueError(f"Unknown class {target!r}. Choose one of: {', '.join(predictor.labels)}.")
    gap = float(logits[target_id] - baseline_logits[target_id])  # what integrated gradients must add up to

    def forward(ids: torch.Tensor, *masks: torch.Tensor) -> torch.Tensor:
        kwargs = {name: mask.expand(ids.shape[0], -1) for name, mask in zip(extra, masks)}
        with _gradient_precision(predictor):
            return model(input_ids=ids, **kwargs).logits.float()  # (B, C)

    layer = model.get_input_embeddings()
    masks = tuple(extra.values())
    with predictor.explain_lock:
        scores, delta_value, used = _attribute(method, forward, layer, input_ids, target_id, masks, steps,
                                               baseline, gap)
    token_scores = scores.sum(dim=-1)[0].detach().float().cpu().numpy()  # (T,)
    tokens = predictor.tokenizer.convert_ids_to_tokens(input_ids[0].tolist())
    return AttributionResult(tokens=tokens, scores=token_scores, target=predictor.labels[target_id], method=method,
                             probability=float(probs[target_id]), delta=delta_value, steps=used,
                             truncated=truncated)


def _gradient_precision(predictor: Predictor):
    """bf16 autocast where the predictor already runs bf16 natively, else fp32.

    Integrated gradients push all their interpolation steps through the model as one batch (steps x T
    word-pieces), where bf16 matmuls are several times fp32's on AMX/AVX512-BF16; the completeness error stays
    reported in ``delta`` (bench/RESULTS.md compares it with fp32). fp16 is never used here: gradients
    without loss scaling would underflow.
    """
    if predictor.precision == "bf16":
        return autocast(predictor.device, "bf16")
    return contextlib.nullcontext()


def _attribute(method, forward, layer, input_ids, target_id, masks, steps, baseline, gap):
    """(scores (1, T, d), completeness error against ``gap``, integration steps used)."""
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    if method == "integrated_gradients":
        explainer = LayerIntegratedGradients(forward, layer)
        for n in sorted({min(FIRST_PASS_STEPS, steps), steps}):
            scores = explainer.attribute(input_ids, baselines=baseline, target=target_id,
                                         additional_forward_args=masks, n_steps=n, internal_batch_size=n)
            error = abs(float(scores.sum()) - gap)
            if _good_enough(error, gap):
                break
        return scores, error, n
    explainer = LayerGradientXActivation(forward, layer)
    return explainer.attribute(input_ids, target=target_id, additional_forward_args=masks), 0.0, 0


def _good_enough(error: float, gap: float) -> bool:
    """Completeness error small against the logit gap being explained (50 steps typically reach ~0.01)."""
    return error <= max(0.05, 0.02 * abs(gap))


def _baseline(predictor: Predictor, input_ids: torch.Tensor) -> torch.Tensor:
    """[PAD] everywhere except the special tokens, which stay where they are."""
    tokenizer = predictor.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special = torch.tensor(tokenizer.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True),
                           dtype=torch.bool, device=input_ids.device)
    return torch.where(special, input_ids[0], torch.full_like(input_ids[0], pad)).unsqueeze(0)


def word_spans(tokens: list[str], scores: np.ndarray) -> list[tuple[str, float]]:
    """Merge word-pieces ("##ing") back into words, summing their scores; special tokens are dropped."""
    words: list[tuple[str, float]] = []
    for token, score in zip(tokens, scores):
        if token in ("[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"):
            continue
        if token.startswith("##") and words:
            word, total = words[-1]
            words[-1] = (word + token[2:], total + float(score))
        else:
            words.append((token, float(score)))
    return words
