"""Scoring a saved run on held-out labeled rows, apart from validation: a test file (the CLI's ``--test``), or a
labeling project's frozen validation set, where the run may not know every label."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bertdemo.data import load_heldout, sort_labels
from bertdemo.inference.predict import Predictor
from bertdemo.metrics import classification_metrics


def evaluate_file(predictor: Predictor, path: str | Path, *, text_col: str | None = None,
                  label_col: str | None = None) -> dict:
    """Metrics (see ``bertdemo.metrics``) of ``predictor`` on a labeled CSV/TSV."""
    rows = load_heldout(path, predictor.labels, role="Test", text_col=text_col, label_col=label_col)
    index = {label: i for i, label in enumerate(predictor.labels)}
    y_true = np.array([index[label] for label in rows["label"]])
    texts = rows["text"].tolist()
    return classification_metrics(y_true, predictor.predict_proba(texts), predictor.labels, texts=texts)


def evaluate_rows(predictor: Predictor, texts: Sequence[str], labels: Sequence[str]) -> dict:
    """Metrics of ``predictor`` on labeled rows whose labels it may not all know (a class added after it was
    trained counts as always missed): classes are the union of the run's and the rows', sorted."""
    names = sort_labels(set(labels) | set(predictor.labels))
    probs = np.zeros((len(texts), len(names)), dtype=np.float32)
    columns = [names.index(label) for label in predictor.labels]
    probs[:, columns] = predictor.predict_proba(list(texts))
    y_true = np.array([names.index(label) for label in labels])
    return classification_metrics(y_true, probs, names, texts=list(texts))
