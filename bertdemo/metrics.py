"""Classification metrics from true labels and predicted probabilities (scikit-learn does the maths)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

MAX_MISCLASSIFIED = 200  # misclassified examples kept in metrics.json, most confident first


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, labels: Sequence[str],
                           texts: Sequence[str] | None = None, loss: float | None = None) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix and misclassified examples.

    ``y_true`` holds class ids, ``probs`` is (N, C) with rows summing to 1.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    y_pred = probs.argmax(axis=1)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, average=None, zero_division=0)
    result = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "loss": None if loss is None else float(loss),
        "count": int(len(y_true)),
        "labels": list(labels),
        "per_class": {label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                              "support": int(support[i])} for i, label in enumerate(labels)},
        "confusion": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "misclassified": [],
    }
    if texts is not None:
        wrong = np.flatnonzero(y_pred != y_true)
        confidence = probs[wrong, y_pred[wrong]]
        order = wrong[np.argsort(-confidence, kind="stable")][:MAX_MISCLASSIFIED]
        result["misclassified"] = [
            {"text": texts[i], "label": labels[y_true[i]], "predicted": labels[y_pred[i]],
             "confidence": float(probs[i, y_pred[i]])} for i in order]
    return result
