"""Batch prediction of a table file: every row gets the predicted label, its confidence and each class's
probability; the result is written as a CSV that is safe to open in a spreadsheet (``bertdemo.spreadsheet``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bertdemo.data.tables import guess_text_column, read_table
from bertdemo.inference.predict import Predictor
from bertdemo.spreadsheet import write_csv


def predict_file(predictor: Predictor, path: str | Path) -> pd.DataFrame:
    """The file's rows plus predicted_label, confidence and p_<label> per class."""
    table = read_table(path)
    texts = table[guess_text_column(table)].fillna("").astype(str).tolist()
    return prediction_columns(table, predictor.predict_proba(texts), predictor.labels)  # (N, C), length-batched


def prediction_columns(table: pd.DataFrame, probs: np.ndarray, labels: tuple[str, ...]) -> pd.DataFrame:
    """``table`` plus predicted_label, confidence and p_<label> from ``probs`` (N, C)."""
    out = table.copy()
    out["predicted_label"] = [labels[i] for i in probs.argmax(axis=1)] if len(probs) else []
    out["confidence"] = probs.max(axis=1).round(4) if len(probs) else []
    for j, label in enumerate(labels):
        out[f"p_{label}"] = probs[:, j].round(4)
    return out


def save_predictions(frame: pd.DataFrame, dest: str | Path) -> Path:
    """Write ``frame`` as a spreadsheet-safe UTF-8 CSV: a hostile input file cannot run code on the reader's side."""
    return write_csv(frame, dest)
