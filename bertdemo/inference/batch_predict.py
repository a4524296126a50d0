"""Batch prediction of a table file: every row gets the predicted label, its confidence and each class's
probability (a multi-label run: the predicted label set, "a|b" or "none", and each label's probability); the
result is written as a CSV that is safe to open in a spreadsheet (``bertdemo.spreadsheet``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bertdemo.data.multilabel import DEFAULT_SEP, format_cell, label_sets_of
from bertdemo.data.tables import guess_text_column, read_table
from bertdemo.inference.predict import Predictor
from bertdemo.multilabel_metrics import decide
from bertdemo.spreadsheet import write_csv


def predict_file(predictor: Predictor, path: str | Path) -> pd.DataFrame:
    """The file's rows plus predicted_label, confidence and p_<label> per class (multi-label: predicted_labels
    and p_<label>)."""
    table = read_table(path)
    texts = table[guess_text_column(table)].fillna("").astype(str).tolist()
    probs = predictor.predict_proba(texts)  # (N, C), length-batched
    return prediction_columns(table, probs, predictor.labels,
                              thresholds=predictor.thresholds if predictor.multi_label else None)


def prediction_columns(table: pd.DataFrame, probs: np.ndarray, labels: tuple[str, ...], *,
                       thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """``table`` plus predicted_label, confidence and p_<label> from ``probs`` (N, C). With ``thresholds`` (C,)
    ``probs`` are a multi-label run's sigmoids: predicted_labels holds each row's labels at or above their
    threshold, joined by "|" ("none" when no label reaches its own), as the training files write them."""
    if thresholds is not None:
        return _label_set_columns(table, probs, labels, thresholds)
    out = table.copy()
    out["predicted_label"] = [labels[i] for i in probs.argmax(axis=1)] if len(probs) else []
    out["confidence"] = probs.max(axis=1).round(4) if len(probs) else []
    for j, label in enumerate(labels):
        out[f"p_{label}"] = probs[:, j].round(4)
    return out


def _label_set_columns(table: pd.DataFrame, probs: np.ndarray, labels: tuple[str, ...],
                       thresholds: np.ndarray) -> pd.DataFrame:
    out = table.copy()
    decided = decide(probs, thresholds) if len(probs) else np.zeros((0, len(labels)), dtype=int)  # (N, C) 0/1
    out["predicted_labels"] = [format_cell(chosen, DEFAULT_SEP) for chosen in label_sets_of(decided, labels)]
    for j, label in enumerate(labels):
        out[f"p_{label}"] = probs[:, j].round(4)
    return out


def save_predictions(frame: pd.DataFrame, dest: str | Path) -> Path:
    """Write ``frame`` as a spreadsheet-safe UTF-8 CSV: a hostile input file cannot run code on the reader's side."""
    return write_csv(frame, dest)
