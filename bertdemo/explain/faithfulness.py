"""How far an explanation can be trusted on *this* text and *this* model: ERASER's deletion test.

For a token scoring of one text and its explained class:
- **comprehensiveness**: how much the class probability drops when the top-scored word-pieces are removed;
- **sufficiency**: how much it drops when *only* they are kept.
Each is averaged (AOPC) over the bins 1, 5, 10, 20 and 50% of the word-pieces — at least one piece per bin, a
bin that repeats the previous one's pieces skipped. [CLS], [SEP] and the other special tokens always stay.

Removal is ``deletion`` by default (ERASER's: the pieces are taken out of the sequence, the rest closes up) or
``mask`` (each is replaced by [MASK], so positions stay). The choice moves the numbers: deletion also shifts every
later position, [MASK] keeps the length but shows the model a token it rarely saw in fine-tuning.

The random baseline is the mean over ``RANDOM_ORDERS`` seeded random orderings. Rank agreement with occlusion is
Kendall's τ between a method's scores and occlusion's (ferret's ``taucorr_loo``). Occlusion itself — the drop
when each piece alone is removed — is one of the scored methods: one batched forward pass.

All perturbed inputs of one text — every method, the random orderings and occlusion — go through the prediction
model in one batched call (``Predictor.predict_proba_ids``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

from bertdemo.inference.predict import Predictor

BINS = (0.01, 0.05, 0.10, 0.20, 0.50)  # ERASER's AOPC bins: shares of the word-pieces removed or kept
RANDOM_ORDERS = 8  # random orderings averaged for the baseline (ERASER-style reference line; ≥ 5)
OPERATORS = ("deletion", "mask")


@dataclass(frozen=True)
class Faithfulness:
    comprehensiveness: float  # AOPC of p(target | text) − p(target | text without the top pieces); higher: better
    sufficiency: float  # AOPC of p(target | text) − p(target | only the top pieces); lower: better
    random_comprehensiveness: float  # the same for random orderings (the reference line)
    random_sufficiency: float
    tau_occlusion: float | None  # Kendall's τ with occlusion's scores (None for occlusion itself, or no variance)
    curve: list[float]  # p(target) after removing each bin's top pieces, starting from the full text
    random_curve: list[float]  # the same, averaged over the random orderings
    bins: list[int]  # word-pieces removed at each point of ``curve`` (0 first)

    @property
    def beats_random(self) -> bool:
        return self.comprehensiveness > self.random_comprehensiveness

    def to_dict(self) -> dict:
        return {"comprehensiveness": self.comprehensiveness, "sufficiency": self.sufficiency,
                "random_comprehensiveness": self.random_comprehensiveness,
                "random_sufficiency": self.random_sufficiency, "tau_occlusion": self.tau_occlusion}


def bin_sizes(pieces: int) -> list[int]:
    """How many word-pieces each AOPC bin removes or keeps, for a text of ``pieces`` non-special pieces:
    at least one each, bins that repeat the previous size skipped."""
    sizes: list[int] = []
    for share in BINS:
        k = min(pieces, max(1, math.ceil(share * pieces - 1e-9)))
        if not sizes or k != sizes[-1]:
            sizes.append(k)
    return sizes if pieces else []


def occlusion_scores(predictor: Predictor, ids: Sequence[int], special: Sequence[bool], target: int, *,
                     operator: str = "deletion") -> np.ndarray:
    """(T,) the drop in p(target) when each word-piece alone is removed; 0 for special tokens."""
    positions = [i for i, s in enumerate(special) if not s]
    sequences = [list(ids)] + [_perturb(ids, {i}, operator, predictor) for i in positions]
    probs = predictor.predict_proba_ids(sequences)[:, target]
    scores = np.zeros(len(ids))
    scores[positions] = probs[0] - probs[1:]
    return scores


def faithfulness(predictor: Predictor, ids: Sequence[int], special: Sequence[bool], target: int,
                 methods: Mapping[str, np.ndarray], *, operator: str = "deletion", seed: int = 0,
                 occlusion: np.ndarray | None = None) -> dict[str, Faithfulness]:
    """Every method's scores on one text (``methods``: name → (T,) scores, special tokens included), with the
    random baseline and τ against ``occlusion`` (pass it when it is one of the methods, or it is computed)."""
    if operator not in OPERATORS:
        raise ValueError(f"Unknown removal operator {operator!r}; use one of {', '.join(OPERATORS)}.")
    positions = np.array([i for i, s in enumerate(special) if not s])
    if len(positions) == 0:
        raise ValueError("The text has no word-pieces to explain besides the special tokens.")
    sizes = bin_sizes(len(positions))
    rng = np.random.default_rng(seed)
    orders = {name: positions[np.argsort(-np.asarray(scores, dtype=float)[positions], kind="stable")]
              for name, scores in methods.items()}
    randoms = [rng.permutation(positions) for _ in range(RANDOM_ORDERS)]
    plans = [*orders.values(), *randoms]
    sequences = [list(ids)]
    for order in plans:
        for k in sizes:
            top = set(order[:k].tolist())
            sequences.append(_perturb(ids, top, operator, predictor))  # comprehensiveness: top pieces gone
            sequences.append(_perturb(ids, set(positions.tolist()) - top, operator, predictor))  # sufficiency
    probs = predictor.predict_proba_ids(sequences)[:, target]
    full, rest = float(probs[0]), probs[1:].reshape(len(plans), len(sizes), 2)
    comp, suff = full - rest[:, :, 0], full - rest[:, :, 1]  # (plans, bins)
    random_comp, random_suff = float(comp[len(orders):].mean()), float(suff[len(orders):].mean())
    random_curve = [full] + rest[len(orders):, :, 0].mean(axis=0).astype(float).tolist()
    if occlusion is None:
        occlusion = occlusion_scores(predictor, ids, special, target, operator=operator)
    out = {}
    for n, (name, scores) in enumerate(methods.items()):
        out[name] = Faithfulness(comprehensiveness=float(comp[n].mean()), sufficiency=float(suff[n].mean()),
                                 random_comprehensiveness=random_comp, random_sufficiency=random_suff,
                                 tau_occlusion=None if scores is occlusion else _tau(scores, occlusion, positions),
                                 curve=[full] + rest[n, :, 0].astype(float).tolist(), random_curve=random_curve,
                                 bins=[0] + sizes)
    return out


def most_comprehensive(results: Mapping[str, Faithfulness]) -> str:
    """The method whose top pieces, removed, drop the class probability most: the one to show first."""
    return max(results, key=lambda name: results[name].comprehensiveness)


def _perturb(ids: Sequence[int], positions: set, operator: str, predictor: Predictor) -> list[int]:
    if operator == "deletion":
        return [token for i, token in enumerate(ids) if i not in positions]
    mask = predictor.tokenizer.mask_token_id
    if mask is None:
        raise ValueError("This model's tokenizer has no [MASK] token: use the deletion operator.")
    return [mask if i in positions else token for i, token in enumerate(ids)]


def _tau(scores: np.ndarray, occlusion: np.ndarray, positions: np.ndarray) -> float | None:
    a, b = np.asarray(scores, dtype=float)[positions], np.asarray(occlusion, dtype=float)[positions]
    if len(positions) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    tau = kendalltau(a, b).statistic
    return None if tau is None or np.isnan(tau) else float(tau)
