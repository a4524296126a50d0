"""How far an explanation can be trusted on *this* text and *this* model: ERASER's deletion test.

For a token scoring of one text and its explained class:
- **comprehensiveness**: how much the class probability drops when the top-scored word-pieces are removed;
- **sufficiency**: how much it drops when *only* they are kept.
Each is averaged (AOPC) over the bins 1, 5, 10, 20 and 50% of the word-pieces — at least one piece per bin, a
bin that repeats the previous one's pieces skipped. [CLS], [SEP] and the other special tokens always stay.

The class probability is the one the Predict view shows (``Predictor.activate``): a softmax over the classes, or,
for a multi-label run, **the explained label's own sigmoid**. A multi-label run's test never scores a softmax across
labels: labels are not exclusive, so removing evidence for one need not move the others, and a softmax would turn
one label's drop into the others' rise.

Removal is ``deletion`` by default (ERASER's: the pieces are taken out of the sequence, the rest closes up) or
``mask`` (each is replaced by [MASK], so positions stay). The choice moves the numbers: deletion also shifts every
later position, [MASK] keeps the length but shows the model a token it rarely saw in fine-tuning.

The random baseline is the mean over ``RANDOM_ORDERS`` seeded random orderings. Rank agreement with occlusion is
Kendall's τ between a method's scores and occlusion's (ferret's ``taucorr_loo``). Occlusion itself — the drop
when each piece alone is removed — is one of the scored methods: one batched forward pass.

``DeletionTest`` is the test of one text. Its perturbed inputs go through the prediction model in batched calls
(``Predictor.predict_proba_ids``) by way of ``Passes``, which forwards each distinct sequence once: the random
orderings' sequences are shared by every method, and ``explain.methods.explain_stream`` also shares with it the
unperturbed forward of integrated gradients and occlusion's passes. ``faithfulness`` scores a set of methods in
one go.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import kendalltau

from bertdemo.inference.predict import Predictor

BINS = (0.01, 0.05, 0.10, 0.20, 0.50)  # ERASER's AOPC bins: shares of the word-pieces removed or kept
RANDOM_ORDERS = 8  # random orderings averaged for the baseline (ERASER-style reference line; ≥ 5)
OPERATORS = ("deletion", "mask")
PADDING_SHARE = 0.25  # most of a forward group that may be padding: sufficiency's short sequences go apart


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


class Passes:
    """The prediction model's probabilities of word-piece sequences for one text's tests, each distinct sequence
    forwarded once: the unperturbed text and the random orderings' perturbations are the same whichever method
    is scored, and two orderings often remove the same pieces (every ordering's first bin removes one piece,
    a sequence occlusion has already seen). ``passes(sequences)`` sends those not seen yet through
    ``Predictor.predict_proba_ids``, in groups of similar length (``by_length``): a test mixes sequences of 3
    pieces (sufficiency) with ones of nearly the whole text (comprehensiveness), and one batch would pad the
    short ones to the longest. ``forwarded`` counts the sequences sent.

    A sequence's probabilities depend on the batch it was padded in by float rounding only (≤ ~1e-7 in fp32)."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.forwarded = 0
        self._seen: dict[tuple[int, ...], np.ndarray] = {}

    def __call__(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """(N, C) class probabilities of ``sequences``."""
        new = list(dict.fromkeys(key for key in map(tuple, sequences) if key not in self._seen))
        for group in by_length(new):
            self.remember(group, self.predictor.predict_proba_ids([list(key) for key in group]))
            self.forwarded += len(group)
        return np.stack([self._seen[tuple(s)] for s in sequences])

    def remember(self, sequences: Sequence[Sequence[int]], probabilities: np.ndarray) -> None:
        """Keep probabilities computed elsewhere (the unperturbed forward of integrated gradients, occlusion's)."""
        for sequence, row in zip(sequences, probabilities):
            self._seen.setdefault(tuple(sequence), np.asarray(row))


def by_length(sequences: Sequence[Sequence[int]], padding: float = PADDING_SHARE) -> list[list[Sequence[int]]]:
    """``sequences`` shortest first, cut into groups where padding to the group's longest would be at most
    ``padding`` of what the group computes (each group one forward call: fewer calls, less padding)."""
    groups: list[list[Sequence[int]]] = []
    real = 0
    for sequence in sorted(sequences, key=len):
        if groups and len(sequence) * (len(groups[-1]) + 1) * (1 - padding) > real + len(sequence):
            groups.append([])
            real = 0
        if not groups:
            groups.append([])
        groups[-1].append(sequence)
        real += len(sequence)
    return groups


class DeletionTest:
    """ERASER's deletion test of one encoded text toward one class: the sequences each ordering of the pieces
    needs (``sequences``), occlusion's (``leave_one_out``), and every method's scores with the random baseline
    (``score``). The random orderings are drawn once, from ``seed``, when the test is made."""

    def __init__(self, ids: Sequence[int], special: Sequence[bool], target: int, *, operator: str = "deletion",
                 mask_token_id: int | None = None, seed: int = 0):
        check_operator(operator, mask_token_id)
        self.ids, self.target, self.operator, self.mask = list(ids), target, operator, mask_token_id
        self.positions = np.array([i for i, s in enumerate(special) if not s])
        if len(self.positions) == 0:
            raise ValueError("The text has no word-pieces to explain besides the special tokens.")
        self.sizes = bin_sizes(len(self.positions))
        rng = np.random.default_rng(seed)
        self.random_orders = [rng.permutation(self.positions) for _ in range(RANDOM_ORDERS)]

    def order(self, scores: np.ndarray) -> np.ndarray:
        """The non-special positions, highest score first (ties in position order)."""
        return self.positions[np.argsort(-np.asarray(scores, dtype=float)[self.positions], kind="stable")]

    def sequences(self, order: np.ndarray) -> list[list[int]]:
        """Per bin: the text without the top pieces of ``order``, then the text with only them (2 × bins)."""
        out = []
        for k in self.sizes:
            top = set(order[:k].tolist())
            out.append(self._perturb(top))  # comprehensiveness: top pieces gone
            out.append(self._perturb(set(self.positions.tolist()) - top))  # sufficiency: only they stay
        return out

    def leave_one_out(self) -> list[list[int]]:
        """The text without each non-special piece in turn: occlusion's sequences."""
        return [self._perturb({i}) for i in self.positions.tolist()]

    def score(self, methods: Mapping[str, np.ndarray], passes: Passes, *,
              occlusion: np.ndarray | None) -> dict[str, Faithfulness]:
        """Every method's faithfulness with the random baseline, all their sequences asked of ``passes`` at once;
        τ with ``occlusion`` (None for the method whose scores are that very array, or without it)."""
        orders = [self.order(scores) for scores in methods.values()]
        plans = [*orders, *self.random_orders]
        probs = passes([self.ids] + [s for order in plans for s in self.sequences(order)])[:, self.target]
        full, rest = float(probs[0]), probs[1:].reshape(len(plans), len(self.sizes), 2)
        comp, suff = full - rest[:, :, 0], full - rest[:, :, 1]  # (plans, bins)
        random_comp, random_suff = float(comp[len(orders):].mean()), float(suff[len(orders):].mean())
        random_curve = [full] + rest[len(orders):, :, 0].mean(axis=0).astype(float).tolist()
        out = {}
        for n, (name, scores) in enumerate(methods.items()):
            tau = None if occlusion is None or scores is occlusion else _tau(scores, occlusion, self.positions)
            out[name] = Faithfulness(comprehensiveness=float(comp[n].mean()), sufficiency=float(suff[n].mean()),
                                     random_comprehensiveness=random_comp, random_sufficiency=random_suff,
                                     tau_occlusion=tau, curve=[full] + rest[n, :, 0].astype(float).tolist(),
                                     random_curve=random_curve, bins=[0] + self.sizes)
        return out

    def _perturb(self, positions: set) -> list[int]:
        if self.operator == "deletion":
            return [token for i, token in enumerate(self.ids) if i not in positions]
        return [self.mask if i in positions else token for i, token in enumerate(self.ids)]


def occlusion_scores(predictor: Predictor, ids: Sequence[int], special: Sequence[bool], target: int, *,
                     operator: str = "deletion", passes: Passes | None = None) -> np.ndarray:
    """(T,) the drop in p(target) when each word-piece alone is removed; 0 for special tokens.

    Always one batched call of the text and its leave-one-out sequences, whatever ``passes`` has seen, so the
    scores never depend on what was computed before them; ``passes`` keeps their probabilities for the tests."""
    test = DeletionTest(ids, special, target, operator=operator, mask_token_id=predictor.tokenizer.mask_token_id)
    sequences = [test.ids] + test.leave_one_out()
    every = predictor.predict_proba_ids(sequences)  # (1 + pieces, C)
    if passes is not None:
        passes.remember(sequences, every)
    probs = every[:, target]
    scores = np.zeros(len(ids))
    scores[test.positions] = probs[0] - probs[1:]
    return scores


def faithfulness(predictor: Predictor, ids: Sequence[int], special: Sequence[bool], target: int,
                 methods: Mapping[str, np.ndarray], *, operator: str = "deletion", seed: int = 0,
                 occlusion: np.ndarray | None = None) -> dict[str, Faithfulness]:
    """Every method's scores on one text (``methods``: name → (T,) scores, special tokens included), with the
    random baseline and τ against ``occlusion`` (pass it when it is one of the methods, or it is computed)."""
    test = DeletionTest(ids, special, target, operator=operator, mask_token_id=predictor.tokenizer.mask_token_id,
                        seed=seed)
    passes = Passes(predictor)
    scored = test.score(methods, passes, occlusion=occlusion)
    if occlusion is None:
        occlusion = occlusion_scores(predictor, ids, special, target, operator=operator)
        scored = {name: replace(f, tau_occlusion=_tau(methods[name], occlusion, test.positions))
                  for name, f in scored.items()}
    return scored


def check_operator(operator: str, mask_token_id: int | None) -> None:
    """Refuse a removal operator the test cannot apply (a ``ValueError`` that says what to use instead)."""
    if operator not in OPERATORS:
        raise ValueError(f"Unknown removal operator {operator!r}; use one of {', '.join(OPERATORS)}.")
    if operator == "mask" and mask_token_id is None:
        raise ValueError("This model's tokenizer has no [MASK] token: use the deletion operator.")


def most_comprehensive(results: Mapping[str, Faithfulness]) -> str:
    """The method whose top pieces, removed, drop the class probability most: the one to show first."""
    return max(results, key=lambda name: results[name].comprehensiveness)


def _tau(scores: np.ndarray, occlusion: np.ndarray, positions: np.ndarray) -> float | None:
    a, b = np.asarray(scores, dtype=float)[positions], np.asarray(occlusion, dtype=float)[positions]
    if len(positions) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    tau = kendalltau(a, b).statistic
    return None if tau is None or np.isnan(tau) else float(tau)
