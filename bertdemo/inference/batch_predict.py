"""Batch prediction of a table file: every row gets the predicted label, its confidence and each class's
probability; the result is written as a CSV that is safe to open in a spreadsheet."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bertdemo.data.tables import TEXT_NAMES, guess_columns, read_table
from bertdemo.inference.predict import Predictor

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet apps run cells that start like this


def text_column(table: pd.DataFrame) -> str:
    """The text column of an (unlabeled) batch file: by name, else the only column."""
    try:
        return guess_columns(table)[0]
    except ValueError:
        pass
    names = {c.strip().lower(): c for c in table.columns}
    for name in TEXT_NAMES:
        if name in names:
            return names[name]
    if len(table.columns) == 1:
        return table.columns[0]
    raise ValueError(f"Could not find the text column in the batch file. Columns found: "
                     f"{', '.join(map(repr, table.columns))}. Name the text column 'text'.")


def predict_file(predictor: Predictor, path: str | Path) -> pd.DataFrame:
    """The file's rows plus predicted_label, confidence and p_<label> per class."""
    table = read_table(path)
    texts = table[text_column(table)].fillna("").astype(str).tolist()
    probs = predictor.predict_proba(texts)  # (N, C), batched by length inside
    out = table.copy()
    out["predicted_label"] = [predictor.labels[i] for i in probs.argmax(axis=1)]
    out["confidence"] = probs.max(axis=1).round(4)
    for j, label in enumerate(predictor.labels):
        out[f"p_{label}"] = probs[:, j].round(4)
    return out


def save_predictions(frame: pd.DataFrame, dest: str | Path) -> Path:
    """Write ``frame`` as UTF-8 CSV; text cells that a spreadsheet would run as a formula get a leading
    apostrophe (OWASP's CSV-injection advice), so a hostile input file cannot run code on the reader's side."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    dest = Path(dest)
    safe.to_csv(dest, index=False, encoding="utf-8")
    return dest
