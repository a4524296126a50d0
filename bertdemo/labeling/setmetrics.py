"""Scoring a multi-label run on label sets it may not fully know: a project's frozen validation items (the
before/after of a retrain) and the test rows of a simulated labeling loop.

A label the run was not trained on gets probability 0 (always missed), as a class added after a single-label run
was trained counts as always missed (``bertdemo.inference.evaluate.evaluate_rows``). Decisions use the run's own
per-label thresholds; the metrics are ``bertdemo.multilabel_metrics``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bertdemo.data import sort_labels
from bertdemo.data.multilabel import LabelSet, multi_hot
from bertdemo.inference.predict import Predictor
from bertdemo.multilabel_metrics import DEFAULT_THRESHOLD, multilabel_metrics


def set_probabilities(predictor: Predictor, texts: Sequence[str], names: Sequence[str]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """((N, L) sigmoid probabilities, (L,) thresholds) in ``names`` order; a label the run lacks: 0 and 0.5."""
    if not predictor.multi_label:
        raise ValueError(f"{Path(predictor.source).name or 'This run'} is a single-label model: label sets need a "
                         "multi-label run (trained on a multi-label file or project).")
    names = list(names)
    probs = np.zeros((len(texts), len(names)), dtype=np.float32)
    thresholds = np.full(len(names), DEFAULT_THRESHOLD)
    scored = predictor.predict_proba(list(texts)) if len(texts) else np.zeros((0, len(predictor.labels)))
    for j, label in enumerate(predictor.labels):
        if label in names:
            probs[:, names.index(label)] = scored[:, j]
            thresholds[names.index(label)] = predictor.thresholds[j]
    return probs, thresholds


def evaluate_sets(predictor: Predictor, texts: Sequence[str], label_sets: Sequence[LabelSet]) -> dict:
    """Multi-label metrics of ``predictor`` on ``texts`` whose true sets are ``label_sets``: labels are the union
    of the run's and the rows', sorted."""
    names = sort_labels({n for s in label_sets for n in s} | set(predictor.labels))
    probs, thresholds = set_probabilities(predictor, texts, names)
    return multilabel_metrics(multi_hot(label_sets, names), probs, names, thresholds, texts=list(texts))
