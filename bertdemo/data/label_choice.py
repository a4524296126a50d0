"""What a person said about how a table writes its labels, and reading the table that way.

The Data tab asks "labels per text" (auto-detect, one, several), a separator and the 0/1 label columns; the job that
trains on the tab's table must read it exactly as the tab did, after a server restart too. ``LabelChoice`` holds
those answers as plain, JSON-ready data, and ``load_as_chosen`` turns them into ``load_data``'s arguments (or, for
"one label per text", the single-label intake even where a class name holds the separator). Where the file's
labels are and what they mean is decided in ``bertdemo.data.layout``; this module only adds the person's say.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from bertdemo.config import TrainConfig
from bertdemo.data.labeled import LabeledData, load_data
from bertdemo.data.layout import label_layout
from bertdemo.data.multilabel import DEFAULT_SEP, check_sep, has_separator

PER_TEXT = ("auto", "one", "several")


def multi_label_of(per_text: str) -> bool | None:
    """What a "labels per text" answer says of the file: multi-label (True), single-label (False) or let the file
    say (None, "auto"). The Data tab, the labeling import and the CLI's --labels-per-text all ask here."""
    if per_text not in PER_TEXT:
        raise ValueError(f"Labels per text must be one of {', '.join(PER_TEXT)} (got {str(per_text)[:40]!r}).")
    return {"one": False, "several": True}.get(per_text)


@dataclass(frozen=True)
class LabelChoice:
    per_text: str = "auto"  # "auto": the file says (a cell holding ``sep``, or 0/1 columns); "one": one class per
    # cell, even a class name holding the separator; "several": label sets in cells or 0/1 columns
    sep: str = DEFAULT_SEP  # between the labels of one cell ("billing|bug")
    cols: tuple[str, ...] = ()  # one 0/1 column per label; () when a label column holds the labels

    def __post_init__(self):
        multi_label_of(self.per_text)  # refuses an answer that is none of PER_TEXT

    def to_dict(self) -> dict:
        return {"per_text": self.per_text, "sep": self.sep, "cols": list(self.cols)}

    @classmethod
    def from_dict(cls, values: dict | None) -> "LabelChoice":
        values = values or {}
        return cls(per_text=str(values.get("per_text", "auto")), sep=str(values.get("sep", DEFAULT_SEP)),
                   cols=tuple(values.get("cols", ())))


def load_as_chosen(table: pd.DataFrame, config: TrainConfig, choice: LabelChoice = LabelChoice(), *,
                   text_col: str | None = None, label_col: str | None = None) -> LabeledData:
    """``table``'s rows as ``choice`` says its labels are written; ``label_col`` and ``choice.cols`` exclude
    each other (``label_layout`` says so in words)."""
    cols = list(choice.cols) or None
    if choice.per_text == "one":
        if cols:
            raise ValueError("0/1 label columns give a text several labels. Choose 'several labels' (or "
                             "auto-detect), or clear the 0/1 label columns and choose one label column.")
        return load_data(table, config, text_col=text_col, label_col=label_col, multi_label=False)
    sep = None if cols else check_sep(choice.sep)
    if choice.per_text == "auto" and sep is not None:
        # auto-detect: cells holding the separator make the file multi-label; label_layout looks for "|" itself
        layout = label_layout(table, text_col, label_col) if sep != DEFAULT_SEP else None
        found = layout is not None and not layout.format.label_cols and has_separator(
            table[layout.label_col].tolist(), sep)
        sep = sep if found else None
    return load_data(table, config, text_col=text_col, label_col=label_col, label_sep=sep, label_cols=cols)


def resolved(choice: LabelChoice, data: LabeledData) -> LabelChoice:
    """``choice`` as the loaded ``data`` read it: "one" or "several" with the separator or columns used, so that a
    second read of the same table (the training job's) cannot decide otherwise."""
    if not data.multi_label:
        return replace(choice, per_text="one", cols=())
    cols = tuple(data.label_format.get("label_cols", ()))
    return LabelChoice(per_text="several", sep=str(data.label_format.get("sep", choice.sep)), cols=cols)


def label_cols_of(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Column names from "a,b,c" (the CLI's --label-cols) or a list (the Data tab's choice), blanks dropped."""
    if not text:
        return ()
    parts = text.split(",") if isinstance(text, str) else text
    return tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))


def describe_label_sets(report) -> str:
    """"Multi-label: texts carry 1.6 labels on average; 12% carry none." from a multi-label ``DataReport``'s
    labels-per-text counts (the app's report and the CLI's say the same)."""
    counts = {int(k): v for k, v in report.labels_per_text.items()}
    texts = sum(counts.values())
    mean = sum(k * v for k, v in counts.items()) / max(1, texts)
    return f"Multi-label: texts carry {mean:.1f} labels on average; {counts.get(0, 0) / max(1, texts):.0%} carry none."
