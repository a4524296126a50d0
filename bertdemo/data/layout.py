"""Where a table keeps its labels: one column of class names, one column of label sets ("billing|bug"), or one
0/1 column per label. ``label_layout`` decides, from what the user said and what the file holds; training, the
labeling import and the CLI all ask it, so a file reads the same way everywhere."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bertdemo.data.multilabel import (DEFAULT_SEP, LabelFormat, LabelSet, check_sep, from_label_columns,
                                      has_separator, parse_cells, zero_one_columns)
from bertdemo.data.tables import guess_columns, guess_text_column, shown

OTHER_SEPS = ("|", ";", "/", "+")  # separators people use, named when the one given is in no cell


@dataclass(frozen=True)
class LabelLayout:
    text_col: str
    label_col: str  # the label column; "" when the labels are 0/1 columns
    multi_label: bool
    format: LabelFormat  # multi-label: the separator or the 0/1 columns

    def label_sets(self, table: pd.DataFrame) -> list[LabelSet | None]:
        """Each row's label set (None: not labeled); multi-label layouts only."""
        if self.format.label_cols:
            return from_label_columns(table, self.format.label_cols)
        return parse_cells(table[self.label_col].tolist(), self.format.sep)

    def with_table(self, table: pd.DataFrame, *, what: str) -> tuple[list, list[LabelSet | None]]:
        """(texts, label sets) of a second file (validation, test) laid out like this one."""
        if self.text_col not in table.columns:
            raise ValueError(f"{what} has no column {shown(self.text_col, 40)!r} (the training file's text column).")
        try:
            if not self.format.label_cols and self.label_col not in table.columns:
                raise ValueError(f"no column {shown(self.label_col, 40)!r} (the training file's label column)")
            return table[self.text_col].tolist(), self.label_sets(table)
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from err


def label_layout(table: pd.DataFrame, text_col: str | None = None, label_col: str | None = None,
                 label_sep: str | None = None, label_cols: Sequence[str] | None = None,
                 multi_label: bool | None = None) -> LabelLayout:
    """The layout of ``table``'s labels.

    ``label_cols`` given: those 0/1 columns. Else the label column (found by name unless given) is multi-label
    when ``label_sep`` is given or when some cell holds "|". A file with no label column but two or more 0/1
    columns uses those. A separator given but in no cell, where another one is, is refused: it is a typo.
    ``multi_label`` False reads one class per cell whatever the cells hold (a class name with "|" in it); True
    reads label sets even where no cell holds the separator yet.
    """
    if label_sep is not None:
        check_sep(label_sep)
    if multi_label is False:
        if label_sep is not None or label_cols:
            raise ValueError("One label per text was chosen, with a separator or 0/1 label columns, which give a text "
                             "several labels. Choose one or the other.")
        text, label = guess_columns(table, text_col, label_col)
        return LabelLayout(text_col=text, label_col=label, multi_label=False, format=LabelFormat())
    if multi_label and not label_cols and label_sep is None:
        label_sep = DEFAULT_SEP
    if label_cols:
        if label_col is not None:
            raise ValueError("Give either a label column (--label-col) or 0/1 label columns (--label-cols), not both.")
        cols = tuple(dict.fromkeys(c.strip() for c in label_cols if c and c.strip()))
        text = guess_text_column(table.drop(columns=[c for c in cols if c in table.columns]), text_col)
        if text in cols:
            raise ValueError(f"The text column {text!r} is also listed as a label column. Choose different columns.")
        from_label_columns(table.head(0), cols)  # names checked now, values when read
        return LabelLayout(text_col=text, label_col="", multi_label=True, format=LabelFormat(label_cols=cols))
    try:
        text, label = guess_columns(table, text_col, label_col)
    except ValueError:
        if label_col is not None:
            raise
        cols = zero_one_columns(table, exclude=[text_col] if text_col else [])
        if len(cols) < 2:
            raise
        text = guess_text_column(table.drop(columns=cols), text_col)
        return LabelLayout(text_col=text, label_col="", multi_label=True, format=LabelFormat(label_cols=tuple(cols)))
    cells = table[label].tolist()
    if label_sep is not None:
        if not has_separator(cells, label_sep):
            found = [sep for sep in OTHER_SEPS if sep != label_sep and has_separator(cells, sep)]
            if found:
                raise ValueError(f"No label cell in column {shown(label, 40)!r} holds the separator {label_sep!r}, "
                                 f"but cells hold {found[0]!r}. Use --label-sep {found[0]!r} (or fix the cells).")
        return LabelLayout(text_col=text, label_col=label, multi_label=True, format=LabelFormat(sep=label_sep))
    if has_separator(cells, DEFAULT_SEP):
        return LabelLayout(text_col=text, label_col=label, multi_label=True, format=LabelFormat(sep=DEFAULT_SEP))
    return LabelLayout(text_col=text, label_col=label, multi_label=False, format=LabelFormat())
