"""Token attributions for one text toward one class: integrated gradients and gradient×input.

Multi-label runs explain one chosen label at a time (default: the most probable): the scores explain that label's
logit, whose sigmoid is its probability (monotone in the logit, so what raises one raises the other), and the
other labels' logits play no part (no softmax couples them).

Both differentiate the prediction model itself (``Predictor.gradient_forward``: the same weights and precision),
so they explain the numbers the Predict view shows. Scores are per word-piece, in logit units.

``gradient_attributions`` computes the two together: gradient×input is the gradient integrated gradients already
take at the end of their path (the text itself) times the embeddings, so it costs no forward of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from bertdemo.explain.tokens import encode_one, token_view
from bertdemo.inference.predict import Predictor

ATTRIBUTION_METHODS = ("integrated_gradients", "grad_x_input")
FIRST_PANELS = 8  # integrated gradients start with this many Simpson panels (17 points on the path)
DEFAULT_STEPS = 50  # the most points integrated gradients evaluate; cost grows with points × word-pieces
MIN_PANEL_WIDTH = 1 / 64  # narrower panels are not split: their completeness misses are bf16 noise, not error
MAX_STEPS = 2 * round(1 / MIN_PANEL_WIDTH) + 1  # every panel at the narrowest width: 129 points
MAX_PATH_POSITIONS = 4096  # points × word-pieces per forward and backward: bounds activation memory


@dataclass(frozen=True)
class AttributionResult:
    tokens: list[str]  # word-pieces as the tokenizer produced them, special tokens included
    scores: np.ndarray  # (T,) signed, in logit units: positive pushed the target class up
    target: str
    method: str
    probability: float  # the model's probability of the target class
    delta: float  # integrated gradients' completeness error in logit units (0 for grad×input)
    truncated: bool
    steps: int = 0  # points on the path where integrated gradients took gradients (0 for grad×input)
    special: list[bool] = field(default_factory=list)  # which tokens are the tokenizer's special ones
    word_ids: list[int | None] = field(default_factory=list)  # the word each piece belongs to (None: special)
    probabilities: dict[str, float] = field(default_factory=dict)  # every class, from the forward ``probability`` is


def attributions(predictor: Predictor, text: str, target: str | None = None,
                 method: str = "integrated_gradients", steps: int = DEFAULT_STEPS) -> AttributionResult:
    """Per-token attributions toward ``target`` (default: the predicted class) on the word embeddings.

    Scores are summed over the embedding dimension and explain the target's logit (its evidence before the
    softmax). They explain the model predictions use (``Predictor.gradient_forward``: the same weights and
    precision), so ``probability`` is the one the Predict view shows. Integrated gradients use a baseline of
    [PAD] tokens that keeps [CLS] and [SEP] in place; their scores add up to logit(target | text) −
    logit(target | baseline) up to ``delta`` (both logits from the gradient computation's own kernels,
    which in bf16 differ from the prediction kernels' by rounding). The logit, not the probability: the softmax
    saturates along the path, and a few dozen steps then leave errors as large as the probability itself, while
    the logit path converges (bench/RESULTS.md).

    The path integral is adaptive Simpson quadrature (``_integrate_path``). ``steps`` is the most points
    on the path where gradients are taken; ``AttributionResult.steps`` says how many were.
    """
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"Unknown attribution method {method!r}. Use one of: {', '.join(ATTRIBUTION_METHODS)}.")
    return _attribute(predictor, text, target, method, steps)[method]


def gradient_attributions(predictor: Predictor, text: str, target: str | None = None,
                          steps: int = DEFAULT_STEPS) -> dict[str, AttributionResult]:
    """Integrated gradients and gradient×input (``ATTRIBUTION_METHODS`` → result) from one walk along the path.

    Gradient×input is read off the last point integrated gradients evaluate: the gradient at α = 1 (the text's
    own embeddings, up to fp32 rounding of baseline + (embeds − baseline)) times the embeddings. The same
    number ``attributions(method="grad_x_input")`` computes, to float rounding (that one runs its own forward
    and backward on a batch of one), for no forward of its own. Both share one unperturbed forward."""
    return _attribute(predictor, text, target, "integrated_gradients", steps, with_grad_x_input=True)


def _attribute(predictor: Predictor, text: str, target: str | None, method: str, steps: int, *,
               with_grad_x_input: bool = False) -> dict[str, AttributionResult]:
    if not 3 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 3 and {MAX_STEPS} points on the path (got {steps}).")
    batch, truncated = encode_one(predictor, text)
    input_ids = batch["input_ids"]  # (1, T)
    extra = {k: v for k, v in batch.items() if k != "input_ids"}  # attention mask, token types: fixed on the path
    embedding, forward = predictor.gradient_forward()
    with predictor.explain_lock:
        with torch.no_grad():
            embeds = embedding(input_ids)[0]  # (T, d)
            baseline = embedding(_baseline(predictor, input_ids))[0]
            probs = predictor.activate(forward(embeds[None], **extra))[0]  # (C,) what Predict shows
        if target is None:
            target_id = int(probs.argmax())
        elif target in predictor.labels:
            target_id = predictor.labels.index(target)
        else:
            raise ValueError(f"Unknown {_kind(predictor)} {target!r}. Choose one of: {', '.join(predictor.labels)}.")
        # gradient×input is the path from zero embeddings seen at its end alone: embeds · ∇ logit(embeds)
        path = _Path(forward, embeds, torch.zeros_like(embeds) if method == "grad_x_input" else baseline,
                     target_id, extra)
        if method == "grad_x_input":
            scores, error, used = path.contributions([1.0])[1][0], 0.0, 0
        else:
            scores, used, error = _integrate_path(path, steps)
    view = token_view(predictor, text, input_ids[0].tolist())
    common = dict(tokens=view.tokens, target=predictor.labels[target_id], probability=float(probs[target_id]),
                  truncated=truncated, special=view.special, word_ids=view.word_ids,
                  probabilities={label: float(p) for label, p in zip(predictor.labels, probs)})
    out = {method: AttributionResult(scores=scores.cpu().numpy(), method=method, delta=error, steps=used, **common)}
    if with_grad_x_input:
        end = (path.end_gradient * embeds.float()).sum(dim=-1)  # (T,): ∇ logit(text) · embeds
        out["grad_x_input"] = AttributionResult(scores=end.cpu().numpy(), method="grad_x_input", delta=0.0, **common)
    return out


class _Path:
    """The straight path from the baseline's word embeddings to the text's, seen through one target logit.

    ``contributions(alphas)`` gives, at each point ``x(α) = baseline + α (embeds − baseline)``, the target
    logit and each token's ``(embeds − baseline) · ∇ logit(x(α))`` (summed over the embedding dimension):
    integrated gradients integrate the latter over α in [0, 1]. With a zero baseline and α = 1 it is
    gradient×input.

    Written here rather than with captum's LayerIntegratedGradients: captum reaches the embeddings through a
    forward hook on the model's embedding module, which rules out the lean forward (``LeanBert``), needs a
    second (eager) copy of the model so that hooks never touch the one predictions share, and takes all of
    its points in one go, where adaptive quadrature places them where the logit moves.
    """

    def __init__(self, forward, embeds: torch.Tensor, baseline: torch.Tensor, target_id: int, extra: dict):
        self.forward, self.target_id, self.extra = forward, target_id, extra
        self.dtype = embeds.dtype
        self.baseline = baseline.float()  # (T, d)
        self.diff = embeds.float() - self.baseline  # in fp32: so that x(1) is the text's embeddings exactly
        self.end_gradient: torch.Tensor | None = None  # (T, d) fp32 ∇ logit at α = 1, once evaluated

    def contributions(self, alphas: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """(target logits (n,), per-token contributions (n, T)) at the points ``alphas``."""
        logits, contributions = [], []
        per_chunk = max(1, MAX_PATH_POSITIONS // self.diff.shape[0])
        for start in range(0, len(alphas), per_chunk):
            a = torch.tensor(alphas[start:start + per_chunk], dtype=torch.float32, device=self.diff.device)
            x = (self.baseline + a[:, None, None] * self.diff).to(self.dtype).requires_grad_(True)  # (n, T, d)
            logit = self.forward(x, **_repeat(self.extra, len(a)))[:, self.target_id].float()  # (n,)
            (grad,) = torch.autograd.grad(logit.sum(), x)  # row i depends on x[i] only
            if 1.0 in alphas[start:start + per_chunk]:
                self.end_gradient = grad[alphas[start:start + per_chunk].index(1.0)].float()
            logits.append(logit.detach())
            contributions.append((grad.float() * self.diff).sum(dim=-1))  # (n, T)
        return torch.cat(logits).cpu(), torch.cat(contributions).cpu()


def _integrate_path(path: _Path, max_points: int) -> tuple[torch.Tensor, int, float]:
    """∫₀¹ of the path's per-token contributions dα: (T,) scores, the points used (≤ ``max_points``) and the
    completeness error |Σ scores − (logit(1) − logit(0))|.

    Adaptive Simpson on panels of the path. The logit along a trained classifier's path stays flat, then
    turns sharply where the decision flips (a narrow peak in α), so uniform rules spend most points where
    nothing happens and miss the turn (bench/RESULTS.md). Each panel carries its own completeness check — its
    contributions must add up to the logit change across it, known from its edges for free — so points go
    to the panels that miss it. Splitting a panel reuses its three points. Refining stops when every panel
    meets ``_good_enough`` and so does the whole path (the per-panel check stops errors of opposite sign
    cancelling in the sum), when only panels of ``MIN_PANEL_WIDTH`` still miss (there the miss is the bf16
    noise of the two edge logits, and chasing it runs texts to the point cap), or at ``max_points``. The completeness checks only see sums over
    tokens: per-token errors that cancel inside one panel go unseen (bench/RESULTS.md measures the
    distance to a fine fp32 reference instead).
    """
    panels = max(1, min(FIRST_PANELS, (max_points - 1) // 2))
    points: dict[float, tuple[float, torch.Tensor]] = {}

    def evaluate(alphas: list[float]) -> None:
        new = sorted({a for a in alphas if a not in points})
        if new:
            logits, contributions = path.contributions(new)
            points.update({a: (float(logit), row) for a, logit, row in zip(new, logits, contributions)})

    edges = [i / panels for i in range(panels + 1)]
    spans = list(zip(edges[:-1], edges[1:]))
    evaluate(edges + [(a + b) / 2 for a, b in spans])
    gap = points[1.0][0] - points[0.0][0]  # what the scores must add up to
    chased = float("inf")  # the whole-path error when refinement last went after it
    while True:
        simpson = [(b - a) / 6 * (points[a][1] + 4 * points[(a + b) / 2][1] + points[b][1]) for a, b in spans]
        misses = [abs(float(s.sum()) - (points[b][0] - points[a][0])) for s, (a, b) in zip(simpson, spans)]
        scores = torch.stack(simpson).sum(dim=0)
        splittable = [i for i, (a, b) in enumerate(spans) if b - a > MIN_PANEL_WIDTH]
        split = [i for i in splittable if not _good_enough(misses[i], gap)]
        whole = abs(float(scores.sum()) - gap)
        if not split and not _good_enough(whole, gap) and splittable and whole < 0.75 * chased:
            # every panel passes alone but their errors add up: refine where most of it comes from, for as
            # long as that pays (a total made of bf16 noise does not shrink, and is not chased further)
            chased = whole
            worst = max(misses[i] for i in splittable)
            split = [i for i in splittable if misses[i] >= worst / 4]
        room = (max_points - len(points)) // 2  # each split adds two points
        if not split or not room:
            return scores, len(points), whole
        spans = _halve(spans, set(sorted(split, key=lambda i: -misses[i])[:room]))
        evaluate([(a + b) / 2 for a, b in spans])


def _halve(spans: list[tuple[float, float]], which: set[int]) -> list[tuple[float, float]]:
    """The panels in order, those at the indices in ``which`` replaced by their two halves."""
    out = []
    for i, (a, b) in enumerate(spans):
        out += [(a, (a + b) / 2), ((a + b) / 2, b)] if i in which else [(a, b)]
    return out


def _repeat(extra: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    return {name: value.expand(n, -1) for name, value in extra.items()}


def _good_enough(error: float, gap: float) -> bool:
    """Completeness error small against the logit gap being explained."""
    return error <= max(0.05, 0.02 * abs(gap))


def _kind(predictor: Predictor) -> str:
    return "label" if predictor.multi_label else "class"


def _baseline(predictor: Predictor, input_ids: torch.Tensor) -> torch.Tensor:
    """[PAD] everywhere except the special tokens, which stay where they are."""
    pad = predictor.tokenizer.pad_token_id if predictor.tokenizer.pad_token_id is not None else 0
    special = torch.tensor(predictor.special_tokens_mask(input_ids[0].tolist()), dtype=torch.bool,
                           device=input_ids.device)
    return torch.where(special, input_ids[0], torch.full_like(input_ids[0], pad)).unsqueeze(0)
