"""Multi-label metrics and decision thresholds, from 0/1 label matrices and per-label sigmoid probabilities
(scikit-learn does the maths; ``bertdemo.metrics`` keeps the single-label ones).

A text carries label l when its probability reaches the label's threshold. Thresholds are tuned per label on
the validation set to maximise that label's F1 (``tune_thresholds``); a label with no positive validation text
keeps 0.5.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, f1_score, hamming_loss, multilabel_confusion_matrix,
                             precision_recall_fscore_support)

DEFAULT_THRESHOLD = 0.5
THRESHOLD_RANGE = (0.05, 0.95)  # tuned thresholds stay inside: a handful of validation texts can otherwise push
# one to 0.001, where every text gets the label
MAX_MISCLASSIFIED = 200  # texts with a wrong label decision kept in metrics.json, the most wrong first


def decide(probs: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """(N, L) 0/1 decisions: probability ≥ the label's threshold (0.5 where none are given)."""
    probs = np.asarray(probs, dtype=np.float64)
    t = np.full(probs.shape[1], DEFAULT_THRESHOLD) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    return (probs >= t[None, :]).astype(int)


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(L,) the threshold that maximises each label's F1 on these rows; ties go to the one nearest 0.5.

    Cutting a label's texts sorted by probability after the k-th gives F1 = 2·TP_k / (k + P); every cut between
    two distinct probabilities is tried, the threshold set midway between them.
    """
    y = np.asarray(y_true) > 0
    probs = np.asarray(probs, dtype=np.float64)
    out = np.full(probs.shape[1], DEFAULT_THRESHOLD)
    for label in range(probs.shape[1]):
        positives = int(y[:, label].sum())
        if positives == 0:
            continue
        order = np.argsort(-probs[:, label], kind="stable")
        p, hits = probs[order, label], y[order, label]
        tp = np.cumsum(hits)
        k = np.arange(1, len(p) + 1)
        f1 = 2 * tp / (k + positives)
        cut = np.r_[p[1:] < p[:-1], True]  # a cut after position k-1 only where the next text scores lower
        below = np.r_[p[1:], 0.0]
        candidates = np.clip((p + below) / 2, *THRESHOLD_RANGE)
        f1 = np.where(cut, f1, -1.0)
        best = np.flatnonzero(np.isclose(f1, f1.max()))
        out[label] = candidates[best[np.argmin(np.abs(candidates[best] - DEFAULT_THRESHOLD))]]
    return out


def multilabel_metrics(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                       thresholds: Sequence[float] | np.ndarray | None = None, texts: Sequence[str] | None = None,
                       loss: float | None = None) -> dict:
    """Micro-, macro- (over the labels present) and samples-F1, subset accuracy, Hamming loss, per-label precision/recall/F1/support and
    2×2 confusion, and the texts with a wrong label decision, the most wrong first.

    ``y_true`` is (N, L) 0/1, ``probs`` (N, L) sigmoid probabilities; decisions use ``thresholds`` (0.5 each
    when None). "accuracy" is the subset accuracy (every label of a text right), so that the headline figures
    every run has read the same way for multi-label runs.
    """
    y_true = (np.asarray(y_true) > 0).astype(int)
    probs = np.asarray(probs, dtype=np.float64)
    t = np.full(len(labels), DEFAULT_THRESHOLD) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    y_pred = decide(probs, t)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    subset = float(accuracy_score(y_true, y_pred))
    result = {
        "multi_label": True,
        "accuracy": subset,
        "subset_accuracy": subset,
        **f1_figures(y_true, y_pred),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "loss": None if loss is None else float(loss),
        "count": int(len(y_true)),
        "labels": list(labels),
        "thresholds": {label: float(v) for label, v in zip(labels, t)},
        "per_class": {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                              "support": int(support[i])} for i, label in enumerate(labels)},
        # per label [[true negatives, false positives], [false negatives, true positives]]
        "label_confusion": {label: m.tolist() for label, m in zip(labels, multilabel_confusion_matrix(y_true, y_pred))},
        "misclassified": [],
    }
    if texts is not None:
        result["misclassified"] = misclassified(y_true, probs, y_pred, labels, texts)
    return result


def misclassified(y_true: np.ndarray, probs: np.ndarray, y_pred: np.ndarray, labels: Sequence[str],
                  texts: Sequence[str]) -> list[dict]:
    """Texts with at least one wrong label decision, ordered by how wrong: the largest distance between a wrongly
    decided label's probability and its truth (a label missed at 0.02 is wronger than one missed at 0.45)."""
    wrong = y_pred != y_true  # (N, L)
    distance = np.where(wrong, np.abs(y_true - probs), 0.0).max(axis=1)
    rows = np.flatnonzero(wrong.any(axis=1))
    rows = rows[np.argsort(-distance[rows], kind="stable")][:MAX_MISCLASSIFIED]
    names = np.asarray(labels, dtype=object)
    return [{"text": texts[i], "labels": list(names[y_true[i] > 0]), "predicted": list(names[y_pred[i] > 0]),
             "missed": list(names[(y_true[i] > 0) & (y_pred[i] == 0)]),
             "extra": list(names[(y_true[i] == 0) & (y_pred[i] > 0)]), "wrongness": float(distance[i]),
             "probabilities": {label: float(p) for label, p in zip(labels, probs[i])}} for i in rows]


def f1_figures(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """{"micro_f1", "macro_f1"} of (N, L) 0/1 decisions. Macro-F1 averages the labels present (a text has it, or it
    was predicted): a label absent from these rows and rightly never predicted has no F1 to average; counting it
    as 0 would sink the headline figure and the checkpoint choice for rare labels."""
    present = np.flatnonzero((np.asarray(y_true).sum(axis=0) > 0) | (np.asarray(y_pred).sum(axis=0) > 0))
    macro = f1_score(y_true, y_pred, average="macro", zero_division=0, labels=present) if len(present) else 0.0
    return {"micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)), "macro_f1": float(macro)}


def with_fixed_half(result: dict, y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict:
    """``result`` (metrics at some thresholds) with the headline figures at a fixed 0.5 under "at_0_5": what the
    thresholds bought."""
    fixed = multilabel_metrics(y_true, probs, labels, None)
    return {**result, "at_0_5": {k: fixed[k] for k in ("accuracy", "micro_f1", "macro_f1", "samples_f1",
                                                        "hamming_loss")}}


def validation_summary(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                       texts: Sequence[str] | None = None, loss: float | None = None) -> dict:
    """Validation metrics of a multi-label model: thresholds tuned on these rows, the metrics at them, and the
    same metrics at a fixed 0.5 under "at_0_5" (what tuning bought)."""
    thresholds = tune_thresholds(y_true, probs)
    return with_fixed_half(multilabel_metrics(y_true, probs, labels, thresholds, texts=texts, loss=loss),
                           y_true, probs, labels)
