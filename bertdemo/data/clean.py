"""Cleaning labeled rows: trimmed text and label strings, texts over the cell limit cut to it, unusable rows dropped
with their reasons, duplicates and conflicting labels found. Works on any rows (a file's columns, a labeling
project's items)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bertdemo.limits import Limits

MAX_CONFLICTS_LISTED = 50  # texts with conflicting labels named in the report; the count is always exact
MISSING_WORDS = {"nan", "null", "none", "n/a", "#n/a", "na"}  # label cells that spreadsheets and pandas write for
# "no value": a class named "NaN" is never meant


@dataclass(frozen=True)
class CleanRows:
    rows: pd.DataFrame  # columns "text", "label" (str, stripped) and "row" (the row number a user would see)
    dropped: list[dict]  # {"reason", "count", "examples": [row numbers]}
    exact_duplicates: int  # rows dropped because the same text with the same label appeared earlier
    conflicts: list[dict]  # {"text", "labels"}: the same text with different labels (kept)
    cut: list[dict] = field(default_factory=list)  # {"reason", "count", "examples", "limit"}: kept rows whose text
    # was longer than max_cell_chars and was cut to it


def sort_labels(labels: Iterable) -> tuple[str, ...]:
    """Sort label names, numerically when every label is a number ("2" before "10")."""
    labels = sorted(set(labels))
    try:
        return tuple(sorted(labels, key=float))
    except ValueError:
        return tuple(labels)


def cut_texts(texts: pd.Series, limit: int) -> tuple[pd.Series, pd.Series]:
    """(texts, cut): each text longer than ``limit`` characters cut to its first ``limit``, and which ones were.

    A long text is cut rather than its row dropped: the row keeps its label, and the model reads only a text's
    first max_length word-pieces anyway (a word-piece is a few characters, so the limit is far beyond them).
    """
    cut = texts.str.len() > limit
    return texts.where(~cut, texts.str.slice(0, limit).str.rstrip()), cut


def clean_rows(texts: Sequence, labels: Sequence, *, first_row: int = 2, max_chars: int | None = None) -> CleanRows:
    """Strip texts and labels, drop empty texts, missing labels and exact duplicates; cut texts over ``max_chars``
    (default: the ``max_cell_chars`` limit); list conflicts.

    ``first_row`` is the number a user sees for the first row (2 in a spreadsheet, whose header is row 1). A label
    cell over ``max_chars`` is no class name (a text in the wrong column): its row is dropped.
    """
    max_chars = max_chars or Limits.current().max_cell_chars
    rows = pd.DataFrame({"text": list(texts), "label": list(labels)})
    rows["row"] = np.arange(len(rows)) + first_row
    rows["text"] = rows["text"].fillna("").astype(str).str.strip()
    rows["label"] = rows["label"].fillna("").astype(str).str.strip()
    dropped: list[dict] = []

    def entry(mask: pd.Series, reason: str) -> dict:
        return {"reason": reason, "count": int(mask.sum()),
                "examples": rows.loc[mask, "row"].head(5).astype(int).tolist()}

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal rows
        if mask.any():
            dropped.append(entry(mask, reason))
            rows = rows[~mask]

    drop(rows["text"] == "", "empty text")
    drop(rows["label"] == "", "missing label")
    drop(rows["label"].str.lower().isin(MISSING_WORDS), "missing label (written as NaN, null, None or N/A)")
    drop(rows["label"].str.len() > max_chars, f"label longer than {max_chars:,} characters (is it the label column?)")
    rows["text"], long = cut_texts(rows["text"], max_chars)
    cut = [{**entry(long, f"text longer than {max_chars:,} characters: cut to its first {max_chars:,} (row kept)"),
            "limit": max_chars}] if long.any() else []
    exact = rows.duplicated(subset=["text", "label"], keep="first")
    exact_count = int(exact.sum())
    drop(exact, "exact duplicate (same text and label as an earlier row)")
    per_text = rows.groupby("text")["label"].nunique()
    conflicts = [{"text": text, "labels": sort_labels(rows.loc[rows["text"] == text, "label"])}
                 for text in per_text[per_text > 1].index[:MAX_CONFLICTS_LISTED]]
    return CleanRows(rows=rows.reset_index(drop=True), dropped=dropped, exact_duplicates=exact_count,
                     conflicts=conflicts, cut=cut)


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
