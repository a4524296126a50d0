"""Scoring a saved run on a held-out labeled file (the CLI's ``--test``), apart from validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bertdemo.data import load_heldout
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
