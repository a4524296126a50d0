"""Data intake: labeled rows in, a validated and split ``LabeledData`` with its data report out.

``labeled_data(texts, labels, config)`` takes rows from memory (what a labeling project hands over);
``load_data(path, config)`` reads a file (``bertdemo.data.tables``) and calls it. The split, the sample size and
``max_length`` come from the ``TrainConfig``. Tokenizing for training happens in ``bertdemo.training``; the word-
piece statistics of the report are added by ``measure_tokens`` once the rows have passed every check.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bertdemo.config import TrainConfig
from bertdemo.data.clean import CleanRows, clean_rows, same_number_labels, sort_labels
from bertdemo.data.layout import label_layout
from bertdemo.data.multilabel import separator_hint
from bertdemo.data.multilabeled import multilabel_data
from bertdemo.data.report import DataReport, data_warnings, with_token_stats
from bertdemo.data.split import MAX_VALIDATION_ROWS, split_rows
from bertdemo.data.tables import guess_columns, read_table, shown
from bertdemo.limits import Limits


@dataclass(frozen=True)
class Origin:
    """Where rows came from, for the data report and its messages."""
    source: str = "rows"  # a file's name, or a labeling project's name
    text_col: str = "text"
    label_col: str = "label"
    encoding: str = ""  # "" when the rows did not come from a file
    delimiter: str = ""


@dataclass(frozen=True)
class LabeledData:
    train: pd.DataFrame  # columns "text", "label" (label as str)
    validation: pd.DataFrame
    labels: tuple[str, ...]  # sorted; index = class id
    report: DataReport
    provenance: dict = field(default_factory=dict)  # where the labels came from, kept in the run (a labeling
    # project's name and label snapshot)
    multi_label: bool = False  # "label" then holds a tuple of label names per row (bertdemo.data.multilabel);
    # () is "no label applies"
    label_format: dict = field(default_factory=dict)  # multi-label: how the file wrote label sets (separator or
    # 0/1 columns), so that what is written back reads the same way

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))


def labeled_data(texts: Sequence, labels: Sequence, config: TrainConfig | None = None, *,
                 origin: Origin | None = None, validation: tuple[Sequence, Sequence] | None = None,
                 validation_source: str = "validation", tokenizer=None, first_row: int = 2,
                 max_validation_rows: int = MAX_VALIDATION_ROWS) -> LabeledData:
    """Clean, check and split labeled rows.

    ``validation`` is an optional (texts, labels) pair held out as given (named ``validation_source`` in the
    report); without it a stratified, seeded ``config.validation_split`` (at most ``max_validation_rows``) is
    held out. ``config.max_train_rows`` > 0 trains on a seeded sample of that many rows. ``tokenizer``
    (optional) fills the word-piece statistics of the report.
    """
    config = config or TrainConfig()
    origin = origin or Origin()
    clean = clean_rows(texts, labels, first_row=first_row)
    rows = clean.rows
    name = origin.source
    if rows.empty:
        raise ValueError(f"{name}: no usable rows left in columns {shown(origin.text_col, 30)!r}/"
                         f"{shown(origin.label_col, 30)!r} "
                         "(every row has an empty text or a missing label). Fill in texts and labels.")
    counts = rows["label"].value_counts()
    if len(counts) < 2:
        raise ValueError(f"{name} has only one class ({shown(counts.index[0])!r}) in column "
                         f"{shown(origin.label_col, 30)!r}. A classifier needs at least two classes: add examples of "
                         "other classes, or choose the right label column.")
    limits = Limits.current()
    if len(counts) > limits.max_classes:
        raise ValueError(f"{name} has {len(counts):,} different labels in column {shown(origin.label_col, 30)!r}; "
                         f"at most {limits.max_classes} classes are trained {limits.hint('max_classes')}. Is it the "
                         "label column? Choose the right one, or merge rare classes.")
    if validation is not None:
        val_df = checked_heldout(clean_rows(*validation).rows, rows["label"], role="Validation",
                                 name=validation_source)
        train_df, val_source = rows, validation_source
        if config.max_train_rows and config.max_train_rows < len(train_df):
            train_df = train_df.sample(n=config.max_train_rows, random_state=config.seed)
    else:
        train_df, val_df = split_rows(rows, name, validation_split=config.validation_split, seed=config.seed,
                                      max_rows=config.max_train_rows, max_validation_rows=max_validation_rows)
        val_source = "split"
    train_df = train_df[["text", "label"]].reset_index(drop=True)
    val_df = val_df[["text", "label"]].reset_index(drop=True)
    labels = sort_labels(rows["label"])
    report = _report(train_df, val_df, labels, clean, origin, len(texts), val_source, config.max_length)
    data = LabeledData(train=train_df, validation=val_df, labels=labels, report=report)
    return measure_tokens(data, tokenizer) if tokenizer is not None else data


def load_data(source: str | Path | pd.DataFrame, config: TrainConfig | None = None, *, text_col: str | None = None,
              label_col: str | None = None, validation: str | Path | None = None, tokenizer=None,
              max_validation_rows: int = MAX_VALIDATION_ROWS, label_sep: str | None = None,
              label_cols: Sequence[str] | None = None, multi_label: bool | None = None) -> LabeledData:
    """Read a labeled CSV/TSV (or take a table ``read_table`` returned) and hand its rows to ``labeled_data``, or
    to ``multilabel_data`` when texts carry several labels.

    The text and label columns are found by name unless given; ``validation`` is an optional separate file
    with the same columns (found by name there too). Multi-label files (``bertdemo.data.multilabel``): label cells
    holding ``label_sep`` ("|" unless given; giving it makes the file multi-label), or ``label_cols`` (one 0/1
    column per label; found by themselves when the file has no label column but two or more 0/1 columns).
    ``multi_label`` False/True overrides the detection (``bertdemo.data.layout.label_layout``).
    """
    table = source if isinstance(source, pd.DataFrame) else read_table(source)
    layout = label_layout(table, text_col, label_col, label_sep, label_cols, multi_label)
    origin = Origin(source=table.attrs.get("source", "table"), text_col=layout.text_col,
                    label_col=layout.label_col, encoding=table.attrs.get("encoding", "utf-8"),
                    delimiter=table.attrs.get("delimiter", ","))
    held_out = None
    if validation is not None:
        val_table = read_table(validation)
        if layout.multi_label:
            held_out = layout.with_table(val_table, what=f"Validation file {Path(validation).name}")
        else:
            val_text, val_label = _matching_columns(val_table, layout.text_col, layout.label_col,
                                                    what=f"Validation file {Path(validation).name}")
            held_out = (val_table[val_text], val_table[val_label])
    val_name = Path(validation).name if validation is not None else "validation"
    if layout.multi_label:
        return multilabel_data(table[layout.text_col], layout.label_sets(table), config, origin=origin,
                               label_format=layout.format, validation=held_out, validation_source=val_name,
                               tokenizer=tokenizer, max_validation_rows=max_validation_rows)
    return labeled_data(table[layout.text_col], table[layout.label_col], config, origin=origin, validation=held_out,
                        validation_source=val_name, tokenizer=tokenizer, max_validation_rows=max_validation_rows)


def load_heldout(path: str | Path, known_labels, *, role: str, text_col: str | None = None,
                 label_col: str | None = None) -> pd.DataFrame:
    """Clean text/label rows of a validation or test file whose labels must all be in ``known_labels``.

    Columns named like the training file's are used when present, else found by name. ``role`` ("Validation",
    "Test") starts every error message.
    """
    path = Path(path)
    table = read_table(path)
    text_col, label_col = _matching_columns(table, text_col, label_col, what=f"{role} file {path.name}")
    return checked_heldout(clean_rows(table[text_col], table[label_col]).rows, known_labels, role=role,
                           name=path.name)


def frames_data(train: pd.DataFrame, validation: pd.DataFrame, labels: Sequence[str], *, source: str = "rows",
                max_length: int = 128, validation_source: str = "given") -> LabeledData:
    """LabeledData of rows cleaned and split elsewhere (a labeling project's frozen validation set, the folds of a
    suspicious-label search): ``text`` and ``label`` columns, extra columns kept, every label in ``labels``."""
    labels = tuple(labels)
    unknown = sorted((set(train["label"]) | set(validation["label"])) - set(labels))
    if unknown:
        raise ValueError(f"Rows carry labels outside the label set: {', '.join(map(repr, unknown[:10]))}.")
    train, validation = train.reset_index(drop=True), validation.reset_index(drop=True)
    clean = CleanRows(rows=pd.concat([train, validation])[["text", "label"]], dropped=[], exact_duplicates=0,
                      conflicts=[])
    report = _report(train, validation, labels, clean, Origin(source=source), len(train) + len(validation),
                     validation_source, max_length)
    return LabeledData(train=train, validation=validation, labels=labels, report=report)


def checked_heldout(rows: pd.DataFrame, known_labels, *, role: str, name: str) -> pd.DataFrame:
    """Cleaned held-out ``rows``, refused when empty or when they carry labels training lacks."""
    if rows.empty:
        raise ValueError(f"{role} file {name} has no usable rows (texts and labels are empty).")
    unknown = sorted(set(rows["label"]) - set(known_labels))
    if unknown:
        raise ValueError(f"{role} file {name} has labels the training data lacks: "
                         f"{', '.join(map(repr, unknown[:10]))}. Known labels: {', '.join(sort_labels(known_labels))}. "
                         "Use the same label names in both files.")
    return rows


def measure_tokens(data: LabeledData, tokenizer) -> LabeledData:
    """``data`` with the word-piece statistics of the rows it trains and validates on in the report (a separate
    validation file is not counted: the report is about the training file)."""
    texts = data.train["text"].tolist()
    if data.report.validation_source == "split":
        texts += data.validation["text"].tolist()
    return dataclasses.replace(data, report=with_token_stats(data.report, tokenizer, texts))


def _report(train: pd.DataFrame, validation: pd.DataFrame, labels: tuple[str, ...], clean: CleanRows,
            origin: Origin, rows_total: int, val_source: str, max_length: int) -> DataReport:
    counts = clean.rows["label"].value_counts()
    kept_counts = {label: int(counts.get(label, 0)) for label in labels}
    imbalance = max(kept_counts.values()) / max(1, min(kept_counts.values()))
    normalised = train["text"].str.lower().str.split().str.join(" ")
    overlap = int(validation["text"].str.lower().str.split().str.join(" ").isin(set(normalised)).sum())
    return DataReport(
        source=origin.source, encoding=origin.encoding, delimiter=origin.delimiter, text_col=origin.text_col,
        label_col=origin.label_col, rows_total=rows_total, rows_kept=len(clean.rows), dropped=clean.dropped,
        exact_duplicates=clean.exact_duplicates, conflicting_duplicates=clean.conflicts, class_counts=kept_counts,
        imbalance_ratio=round(float(imbalance), 3), train_rows=len(train), validation_rows=len(validation),
        validation_source=val_source, train_validation_overlap=overlap, max_length=max_length, cut=clean.cut,
        warnings=data_warnings(kept_counts, imbalance, clean.conflicts, overlap, same_number_labels(labels),
                               clean.cut) + [hint for hint in [separator_hint(labels)] if hint])


def _matching_columns(table: pd.DataFrame, text_col: str | None, label_col: str | None, *,
                      what: str) -> tuple[str, str]:
    """A second file's columns: the training file's names where it has them, else found by name; an error
    starts with ``what`` (which file it is)."""
    try:
        return guess_columns(table, text_col if text_col in table.columns else None,
                             label_col if label_col in table.columns else None)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from err
