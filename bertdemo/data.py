"""Data intake: a labeled table in, a validated and split ``LabeledData`` with its data report out.

Reading bytes and finding columns is ``bertdemo.tables``; tokenizing for training is ``bertdemo.train``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from bertdemo.tables import guess_columns, read_table

MAX_VALIDATION_ROWS = 2000  # an automatic split holds out at most this many rows: enough to rank checkpoints,
# cheap enough to evaluate twice an epoch on a CPU
IMBALANCE_WARNING = 3.0  # largest/smallest class ratio above which the report warns
UNKNOWN_WARNING = 0.1  # share of [UNK] word-pieces above which the model does not know the language


@dataclass(frozen=True)
class DataReport:
    source: str
    encoding: str
    delimiter: str
    text_col: str
    label_col: str
    rows_total: int  # data rows in the file(s), header excluded
    rows_kept: int
    dropped: list[dict]  # {"reason", "count", "examples": [row numbers, 1-based, header = row 1]}
    exact_duplicates: int  # rows dropped because the same text with the same label appeared earlier
    conflicting_duplicates: list[dict]  # {"text", "labels"}: the same text with different labels (kept)
    class_counts: dict[str, int]
    imbalance_ratio: float
    train_rows: int
    validation_rows: int
    validation_source: str  # "split" or the validation file's name
    train_validation_overlap: int  # validation texts that also occur in train (case/space-insensitive)
    max_length: int
    token_lengths: list[int] = field(default_factory=list)  # word-pieces per kept row, [CLS]/[SEP] included
    truncated: int = 0  # kept rows longer than max_length
    unknown_token_share: float = 0.0  # share of word-pieces the tokenizer maps to [UNK] (wrong-language model)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def token_stats(self) -> dict[str, float]:
        if not self.token_lengths:
            return {}
        lengths = np.asarray(self.token_lengths)
        return {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
                "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max()),
                "truncated": int(self.truncated), "max_length": int(self.max_length)}


@dataclass(frozen=True)
class LabeledData:
    train: pd.DataFrame  # columns "text", "label" (label as str)
    validation: pd.DataFrame
    labels: tuple[str, ...]  # sorted; index = class id
    report: DataReport

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))


def sort_labels(labels) -> tuple[str, ...]:
    """Sort label names, numerically when every label is a number ("2" before "10")."""
    labels = sorted(set(labels))
    try:
        return tuple(sorted(labels, key=float))
    except ValueError:
        return tuple(labels)


def clean_rows(df: pd.DataFrame, text_col: str, label_col: str) -> tuple[pd.DataFrame, list[dict], int, list[dict]]:
    """Drop unusable rows; return (clean df with text/label, dropped reasons, exact dupes, conflicts)."""
    rows = pd.DataFrame({"text": df[text_col], "label": df[label_col]})
    rows["row"] = np.arange(len(rows)) + 2  # the row number a spreadsheet shows (header is row 1)
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
    exact = rows.duplicated(subset=["text", "label"], keep="first")
    exact_count = int(exact.sum())
    drop(exact, "exact duplicate (same text and label as an earlier row)")
    per_text = rows.groupby("text")["label"].nunique()
    conflicts = [{"text": text, "labels": sort_labels(rows.loc[rows["text"] == text, "label"])}
                 for text in per_text[per_text > 1].index[:50]]
    return rows.reset_index(drop=True), dropped, exact_count, conflicts


def load_data(path: str | Path, *, text_col: str | None = None, label_col: str | None = None,
              validation: str | Path | None = None, validation_split: float = 0.2, seed: int = 42,
              max_length: int = 128, tokenizer=None, max_rows: int = 0,
              max_validation_rows: int = MAX_VALIDATION_ROWS) -> LabeledData:
    """Read, clean, check and split a labeled CSV/TSV.

    ``validation`` is an optional separate file (same columns); without it a stratified, seeded split of
    ``validation_split`` (at most ``max_validation_rows``) is held out. ``max_rows`` > 0 trains on a seeded
    sample of that many rows. ``tokenizer`` (optional) fills the token-length statistics of the report.
    """
    path = Path(path)
    table = read_table(path)
    text_col, label_col = guess_columns(table, text_col, label_col)
    rows, dropped, exact, conflicts = clean_rows(table, text_col, label_col)
    if rows.empty:
        raise ValueError(f"{path.name}: no usable rows left in columns {text_col!r}/{label_col!r} "
                         "(every row has an empty text or a missing label). Fill in texts and labels.")
    counts = rows["label"].value_counts()
    if len(counts) < 2:
        raise ValueError(f"{path.name} has only one class ({counts.index[0]!r}) in column {label_col!r}. "
                         "A classifier needs at least two classes: add examples of other classes, "
                         "or choose the right label column.")

    if validation is not None:
        val_df = load_heldout(validation, rows["label"], role="Validation", text_col=text_col, label_col=label_col)
        train_df, val_source = rows, Path(validation).name
        if max_rows and max_rows < len(train_df):
            train_df = train_df.sample(n=max_rows, random_state=seed)
    else:
        train_df, val_df = _split(rows, counts, path.name, validation_split, seed, max_rows, max_validation_rows)
        val_source = "split"

    labels = sort_labels(rows["label"])
    train_df = train_df[["text", "label"]].reset_index(drop=True)
    val_df = val_df[["text", "label"]].reset_index(drop=True)
    kept_counts = {label: int(counts.get(label, 0)) for label in labels}
    imbalance = max(kept_counts.values()) / max(1, min(kept_counts.values()))
    overlap = int(val_df["text"].str.lower().str.split().str.join(" ").isin(
        set(train_df["text"].str.lower().str.split().str.join(" "))).sum())

    lengths: list[int] = []
    truncated = 0
    unknown_share = 0.0
    if tokenizer is not None:
        lengths, unknown = _token_counts(tokenizer, rows["text"].tolist())
        truncated = int(sum(n > max_length for n in lengths))
        total = sum(lengths) - 2 * len(lengths)
        unknown_share = unknown / total if total > 0 else 0.0

    warnings = _warnings(kept_counts, imbalance, conflicts, overlap, truncated, len(rows), max_length)
    if unknown_share > UNKNOWN_WARNING:
        warnings.append(f"{unknown_share:.0%} of the word-pieces are unknown ([UNK]) to this model's vocabulary: "
                        "it was not trained on this language or script. Use a model that was (e.g. "
                        "bert-base-chinese or bert-base-multilingual-cased when online), or 'scratch'.")
    report = DataReport(
        source=path.name, encoding=table.attrs.get("encoding", "utf-8"),
        delimiter=table.attrs.get("delimiter", ","), text_col=text_col, label_col=label_col,
        rows_total=len(table), rows_kept=len(rows), dropped=dropped, exact_duplicates=exact,
        conflicting_duplicates=conflicts, class_counts=kept_counts, imbalance_ratio=round(float(imbalance), 3),
        train_rows=len(train_df), validation_rows=len(val_df), validation_source=val_source,
        train_validation_overlap=overlap, max_length=max_length, token_lengths=lengths, truncated=truncated,
        unknown_token_share=round(unknown_share, 4), warnings=warnings)
    return LabeledData(train=train_df, validation=val_df, labels=labels, report=report)


def _token_counts(tokenizer, texts: list[str], chunk: int = 2000) -> tuple[list[int], int]:
    """Word-piece length of every text and the number of [UNK] pieces, tokenizing in chunks to bound memory."""
    unk = tokenizer.unk_token_id
    lengths: list[int] = []
    unknown = 0
    for start in range(0, len(texts), chunk):
        for ids in tokenizer(texts[start:start + chunk], add_special_tokens=True, truncation=False)["input_ids"]:
            lengths.append(len(ids))
            if unk is not None:
                unknown += ids.count(unk)
    return lengths, unknown


def _split(rows: pd.DataFrame, counts: pd.Series, name: str, validation_split: float, seed: int,
           max_rows: int, max_validation_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    lonely = counts[counts < 2]
    if len(lonely):
        shown = ", ".join(f"{label!r}" for label in lonely.index[:10])
        raise ValueError(f"{name}: class {shown} has only one example; a stratified split needs at least 2 per "
                         "class. Add examples of that class, remove it, or supply a separate validation file.")
    n_classes = len(counts)
    n_val = round(len(rows) * validation_split)
    wanted_train = max_rows if max_rows and max_rows < len(rows) - n_val else None
    if wanted_train:  # a sample: validation keeps the split's proportion to the sampled training rows
        n_val = round(wanted_train * validation_split / (1 - validation_split))
    n_val = max(n_classes, min(n_val, max_validation_rows, len(rows) - n_classes))
    if len(rows) - n_val < n_classes:
        raise ValueError(f"{name}: only {len(rows)} usable rows for {n_classes} classes; too few to hold out a "
                         "validation set. Add more rows (at least a few per class).")
    train_df, val_df = train_test_split(rows, test_size=n_val, random_state=seed, stratify=rows["label"])
    if wanted_train and wanted_train < len(train_df):
        train_df, _ = train_test_split(train_df, train_size=wanted_train, random_state=seed,
                                       stratify=train_df["label"] if wanted_train >= n_classes else None)
    return train_df, val_df


def load_heldout(path: str | Path, known_labels, *, role: str, text_col: str | None = None,
                 label_col: str | None = None) -> pd.DataFrame:
    """Clean text/label rows of a validation or test file whose labels must all be in ``known_labels``.

    Columns named like the training file's are used when present, else found by name. ``role`` ("Validation",
    "Test") starts every error message.
    """
    path = Path(path)
    table = read_table(path)
    try:
        text_col, label_col = guess_columns(table, text_col if text_col in table.columns else None,
                                            label_col if label_col in table.columns else None)
    except ValueError as err:
        raise ValueError(f"{role} file {path.name}: {err}") from err
    rows, _, _, _ = clean_rows(table, text_col, label_col)
    if rows.empty:
        raise ValueError(f"{role} file {path.name} has no usable rows (texts and labels are empty).")
    unknown = sorted(set(rows["label"]) - set(known_labels))
    if unknown:
        raise ValueError(f"{role} file {path.name} has labels the training data lacks: "
                         f"{', '.join(map(repr, unknown[:10]))}. Known labels: {', '.join(sort_labels(known_labels))}. "
                         "Use the same label names in both files.")
    return rows


def _warnings(counts: dict[str, int], imbalance: float, conflicts: list, overlap: int, truncated: int,
              kept: int, max_length: int) -> list[str]:
    out = []
    if imbalance >= IMBALANCE_WARNING:
        small = min(counts, key=counts.get)
        out.append(f"Classes are imbalanced ({imbalance:.1f}:1); {small!r} has only {counts[small]} rows. "
                   "Watch macro-F1 rather than accuracy, or add examples of the small classes.")
    if min(counts.values()) < 10:
        out.append("Some classes have fewer than 10 examples; expect unstable results until you add more.")
    if conflicts:
        out.append(f"{len(conflicts)} texts appear with different labels; fix them or the model learns noise.")
    if overlap:
        out.append(f"{overlap} validation texts also occur in the training data; validation scores will be "
                   "optimistic.")
    if truncated and kept and truncated / kept > 0.05:
        out.append(f"{truncated} texts ({truncated / kept:.0%}) are longer than max_length={max_length} word-pieces "
                   "and get truncated; raise max_length if their ends matter.")
    return out
