"""Cleaning labeled rows: trimmed text and label strings, unusable rows dropped with their reasons, duplicates
and conflicting labels found. Works on any rows (a file's columns, a labeling project's items)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_CONFLICTS_LISTED = 50  # texts with conflicting labels named in the report; the count is always exact
MISSING_WORDS = {"nan", "null", "none", "n/a", "#n/a", "na"}  # label cells that spreadsheets and pandas write for
# "no value": a class named "NaN" is never meant


@dataclass(frozen=True)
class CleanRows:
    rows: pd.DataFrame  # columns "text", "label" (str, stripped) and "row" (the row number a user would see)
    dropped: list[dict]  # {"reason", "count", "examples": [row numbers]}
    exact_duplicates: int  # rows dropped because the same text with the same label appeared earlier
    conflicts: list[dict]  # {"text", "labels"}: the same text with different labels (kept)


def sort_labels(labels: Iterable) -> tuple[str, ...]:
    """Sort label names, numerically when every label is a number ("2" before "10")."""
    labels = sorted(set(labels))
    try:
        return tuple(sorted(labels, key=float))
    except ValueError:
        return tuple(labels)


def clean_rows(texts: Sequence, labels: Sequence, *, first_row: int = 2) -> CleanRows:
    """Strip texts and labels, drop empty texts, missing labels and exact duplicates; list conflicts.

    ``first_row`` is the number a user sees for the first row (2 in a spreadsheet, whose header is row 1).
    """
    rows = pd.DataFrame({"text": list(texts), "label": list(labels)})
    rows["row"] = np.arange(len(rows)) + first_row
    rows["text"] = rows["text"].fillna("").astype(str).str.strip()
    rows["label"] = rows["label"].fillna("").astype(str).str.strip()
    dropped: list[dict] = []

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal rows
        if mask.any():
            dropped.append({"reason": reason, "count": int(mask.sum()),
                            "examples": rows.loc[mask, "row"].head(5).astype(int).tolist()})
            rows = rows[~mask]

    drop(rows["text"] == "", "empty text")
    drop(rows["label"] == "", "missing label")
    drop(rows["label"].str.lower().isin(MISSING_WORDS), "missing label (written as NaN, null, None or N/A)")
    exact = rows.duplicated(subset=["text", "label"], keep="first")
    exact_count = int(exact.sum())
    drop(exact, "exact duplicate (same text and label as an earlier row)")
    per_text = rows.groupby("text")["label"].nunique()
    conflicts = [{"text": text, "labels": sort_labels(rows.loc[rows["text"] == text, "label"])}
                 for text in per_text[per_text > 1].index[:MAX_CONFLICTS_LISTED]]
    return CleanRows(rows=rows.reset_index(drop=True), dropped=dropped, exact_duplicates=exact_count,
                     conflicts=conflicts)


def same_number_labels(labels: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups of distinct labels that are one number written differently ("01", "1", "1.0"): each group would
    train as several classes."""
    groups: dict[float, set[str]] = {}
    for label in set(labels):
        try:
            groups.setdefault(float(label), set()).add(label)
        except ValueError:
            continue
    return [tuple(sorted(g)) for _, g in sorted(groups.items()) if len(g) > 1]
