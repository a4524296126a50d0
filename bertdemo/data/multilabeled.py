"""Multi-label rows in, a validated and split ``LabeledData`` out (``multi_label=True``).

The single-label intake (``bertdemo.data.labeled``) stays as it is; this module reuses its cleaning (a label set
travels through it as one opaque key, so duplicates and conflicts are found the same way), holds out validation
with ``iterative_split``, and adds the multi-label figures to the report. Label cells and 0/1 columns are read in
``bertdemo.data.multilabel``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bertdemo.config import TrainConfig
from bertdemo.data.clean import clean_rows, same_number_labels, sort_labels
from bertdemo.data.multilabel import (LabelFormat, LabelSet, RARE_POSITIVES, format_cell, iterative_split,
                                      label_figures, multi_hot)
from bertdemo.data.report import DataReport, data_warnings
from bertdemo.data.split import MAX_VALIDATION_ROWS
from bertdemo.data.tables import shown
from bertdemo.limits import Limits

_JOIN, _NONE = "\ue000", "\ue001"  # a label set as one key while cleaning: private-use characters, in no
# label name (not the ASCII separators: str.strip() takes those for spaces)


def multilabel_data(texts: Sequence, label_sets: Sequence[LabelSet | None], config: TrainConfig | None = None, *,
                    origin=None, label_format: LabelFormat | None = None,
                    validation: tuple[Sequence, Sequence[LabelSet | None]] | None = None,
                    validation_source: str = "validation", tokenizer=None, first_row: int = 2,
                    max_validation_rows: int = MAX_VALIDATION_ROWS):
    """Clean, check and split rows whose labels are label sets (None: not labeled, dropped; (): no label
    applies). The validation split is iterative-stratified and seeded; ``validation`` holds out given rows."""
    from bertdemo.data.labeled import LabeledData, Origin, measure_tokens

    config = config or TrainConfig()
    origin = origin or Origin()
    label_format = label_format or LabelFormat()
    name = origin.source
    rows, clean = _clean(texts, label_sets, first_row)
    if rows.empty:
        raise ValueError(f"{name}: no usable rows left in column {shown(origin.text_col, 30)!r} and the label "
                         "columns (every row has an empty text or no labels). Fill in texts and labels (write "
                         "'none' where no label applies).")
    labels = sort_labels({label for names in rows["label"] for label in names})
    if len(labels) < 2:
        raise ValueError(f"{name} names {len(labels)} label{'' if len(labels) == 1 else 's'} in all "
                         f"({', '.join(map(repr, labels)) or 'none'}). A multi-label classifier needs at least two "
                         "labels: add texts with other labels, or check the separator (--label-sep).")
    limits = Limits.current()
    if len(labels) > limits.max_classes:
        raise ValueError(f"{name} has {len(labels):,} different labels; at most {limits.max_classes} are trained "
                         f"{limits.hint('max_classes')}. Is the separator right (--label-sep)? Merge rare labels.")
    if validation is not None:
        val_df, _ = _clean(*validation, first_row=2)
        if val_df.empty:
            raise ValueError(f"Validation file {validation_source} has no usable rows (texts and labels are empty).")
        unknown = sorted({label for names in val_df["label"] for label in names} - set(labels))
        if unknown:
            raise ValueError(f"Validation file {validation_source} has labels the training data lacks: "
                             f"{', '.join(map(repr, unknown[:10]))}. Use the same label names in both files.")
        train_df, val_source = rows, validation_source
        if config.max_train_rows and config.max_train_rows < len(train_df):
            train_df = train_df.sample(n=config.max_train_rows, random_state=config.seed)
    else:
        train_df, val_df = _split(rows, labels, name, config, max_validation_rows)
        val_source = "split"
    train_df = train_df[["text", "label"]].reset_index(drop=True)
    val_df = val_df[["text", "label"]].reset_index(drop=True)
    report = multilabel_report(train_df, val_df, labels, clean, origin, len(texts), val_source, config.max_length,
                               label_format, rows["label"].tolist())
    data = LabeledData(train=train_df, validation=val_df, labels=labels, report=report, multi_label=True,
                       label_format=label_format.to_dict())
    return measure_tokens(data, tokenizer) if tokenizer is not None else data


def multilabel_frames(train: pd.DataFrame, validation: pd.DataFrame, labels: Sequence[str], *, source: str = "rows",
                      max_length: int = 128, validation_source: str = "given", label_format: LabelFormat | None = None):
    """LabeledData of multi-label rows cleaned and split elsewhere (a labeling project's frozen validation set,
    the folds of a suspicious-label search): "label" holds label sets, each within ``labels``."""
    from bertdemo.data.labeled import LabeledData, Origin

    labels = tuple(labels)
    unknown = sorted({name for names in pd.concat([train["label"], validation["label"]]) for name in names}
                     - set(labels))
    if unknown:
        raise ValueError(f"Rows carry labels outside the label set: {', '.join(map(repr, unknown[:10]))}.")
    train, validation = train.reset_index(drop=True), validation.reset_index(drop=True)
    rows, clean = _clean(pd.concat([train["text"], validation["text"]]).tolist(),
                         pd.concat([train["label"], validation["label"]]).tolist(), 2)
    label_format = label_format or LabelFormat()
    report = multilabel_report(train, validation, labels, clean, Origin(source=source), len(train) + len(validation),
                               validation_source, max_length, label_format, rows["label"].tolist())
    return LabeledData(train=train, validation=validation, labels=labels, report=report, multi_label=True,
                       label_format=label_format.to_dict())


def multilabel_report(train: pd.DataFrame, validation: pd.DataFrame, labels: tuple[str, ...], clean, origin,
                      rows_total: int, val_source: str, max_length: int, label_format: LabelFormat,
                      kept_sets: list[LabelSet]) -> DataReport:
    figures = label_figures(kept_sets, labels)
    counts = figures["label_counts"]
    imbalance = max(counts.values()) / max(1, min(counts.values()))
    normalised = set(train["text"].str.lower().str.split().str.join(" "))
    overlap = int(validation["text"].str.lower().str.split().str.join(" ").isin(normalised).sum())
    warnings = data_warnings(counts, imbalance, clean.conflicts, overlap, same_number_labels(labels), clean.cut)
    warnings += multilabel_warnings(figures, len(kept_sets))
    return DataReport(
        source=origin.source, encoding=origin.encoding, delimiter=origin.delimiter, text_col=origin.text_col,
        label_col=", ".join(label_format.label_cols) if label_format.label_cols else origin.label_col,
        rows_total=rows_total, rows_kept=len(kept_sets), dropped=clean.dropped,
        exact_duplicates=clean.exact_duplicates, conflicting_duplicates=clean.conflicts, class_counts=counts,
        imbalance_ratio=round(float(imbalance), 3), train_rows=len(train), validation_rows=len(validation),
        validation_source=val_source, train_validation_overlap=overlap, max_length=max_length, cut=clean.cut,
        warnings=warnings, multi_label=True, label_format=label_format.to_dict(),
        cooccurrence=figures["cooccurrence"],
        labels_per_text={str(k): v for k, v in figures["labels_per_text"].items()},
        rare_labels=figures["rare_labels"])


def multilabel_warnings(figures: dict, rows: int) -> list[str]:
    """What a user should know about label sets before training on them."""
    out = []
    rare = figures["rare_labels"]
    if rare:
        out.append(f"{len(rare)} label{'s are' if len(rare) > 1 else ' is'} on fewer than {RARE_POSITIVES} texts and "
                   f"cannot be learned: {', '.join(map(repr, rare[:10]))}. Label more texts with "
                   f"{'them' if len(rare) > 1 else 'it'}, or drop {'them' if len(rare) > 1 else 'it'}.")
    every = figures["every_label"]
    if every and every / max(rows, 1) > 0.05:
        out.append(f"{every} texts carry every label: they teach the model nothing about telling labels apart. "
                   "Check that the labels were not filled in wholesale.")
    single = figures["labels_per_text"].get(1, 0)
    if rows and single == rows:
        out.append("Every text has exactly one label: this is a single-label file. Train it as one (leave the "
                   "separator out) to get a softmax over classes.")
    return out


def cell_frame(frame: pd.DataFrame, sep: str) -> pd.DataFrame:
    """A copy of a multi-label frame with each label set written as a cell (for a CSV a person opens)."""
    return frame.assign(label=[format_cell(tuple(names), sep) for names in frame["label"]])


def _clean(texts: Sequence, label_sets: Sequence[LabelSet | None], first_row: int):
    """(rows with "label" as label sets, CleanRows): ``clean_rows`` on each set as one key."""
    keys = ["" if names is None else (_JOIN.join(names) if names else _NONE) for names in label_sets]
    clean = clean_rows(list(texts), keys, first_row=first_row)
    rows = clean.rows.assign(label=[_from_key(k) for k in clean.rows["label"]])
    conflicts = [{"text": c["text"], "labels": tuple(format_cell(_from_key(k)) for k in c["labels"])}
                 for c in clean.conflicts]
    return rows, type(clean)(rows=rows, dropped=clean.dropped, exact_duplicates=clean.exact_duplicates,
                             conflicts=conflicts, cut=clean.cut)


def _from_key(key: str) -> LabelSet:
    return () if key == _NONE else tuple(key.split(_JOIN))


def _split(rows: pd.DataFrame, labels: tuple[str, ...], name: str, config: TrainConfig,
           max_validation_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    if len(rows) < 4:
        raise ValueError(f"{name}: only {len(rows)} usable rows; too few to hold out a validation set. Add more rows.")
    n_val = round(len(rows) * config.validation_split)
    if config.max_train_rows and config.max_train_rows < len(rows) - n_val:
        n_val = round(config.max_train_rows * config.validation_split / (1 - config.validation_split))
    n_val = max(1, min(n_val, max_validation_rows, len(rows) - 2))
    train_idx, val_idx = iterative_split(multi_hot(rows["label"].tolist(), labels), n_val, config.seed)
    train_df, val_df = rows.iloc[train_idx], rows.iloc[val_idx]
    if config.max_train_rows and config.max_train_rows < len(train_df):
        keep, _ = iterative_split(multi_hot(train_df["label"].tolist(), labels),
                                  len(train_df) - config.max_train_rows, config.seed)
        train_df = train_df.iloc[np.sort(keep)]
    return train_df, val_df
