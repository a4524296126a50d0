"""Scoring a saved run on a held-out labeled file (the CLI's ``--test``), apart from validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bertdemo.data import clean_rows
from bertdemo.metrics import classification_metrics
from bertdemo.predict import Predictor
from bertdemo.tables import guess_columns, read_table


def evaluate_file(predictor: Predictor, path: str | Path, *, text_col: str | None = None,
                  label_col: str | None = None) -> dict:
    """Metrics (see ``bertdemo.metrics``) of ``predictor`` on a labeled CSV/TSV."""
    path = Path(path)
    table = read_table(path)
    text_col, label_col = guess_columns(table, text_col if text_col in table.columns else None,
                                        label_col if label_col in table.columns else None)
    rows, _, _, _ = clean_rows(table, text_col, label_col)
    if rows.empty:
        raise ValueError(f"Test file {path.name} has no usable rows (empty texts or labels).")
    unknown = sorted(set(rows["label"]) - set(predictor.labels))
    if unknown:
        raise ValueError(f"Test file {path.name} has labels the model was not trained on: "
                         f"{', '.join(map(repr, unknown[:10]))}. The model knows: {', '.join(predictor.labels)}.")
    index = {label: i for i, label in enumerate(predictor.labels)}
    y_true = np.array([index[label] for label in rows["label"]])
    texts = rows["text"].tolist()
    return classification_metrics(y_true, predictor.predict_proba(texts), predictor.labels, texts=texts)
