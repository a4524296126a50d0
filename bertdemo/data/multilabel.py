"""Multi-label cells: a text with several labels at once ("billing|bug"), or one 0/1 column per label.

What is here: reading label cells and 0/1 columns into label sets, telling a multi-label file from a single-label
one, the multi-hot matrix training and metrics use, an iteratively stratified split, and the report's multi-label
figures (per-label counts, co-occurrence, labels per text, labels too rare to learn). Turning rows into a
``LabeledData`` lives in ``bertdemo.data.multilabeled``.

A label set is a tuple of label names in sorted label order. ``None`` is "not labeled yet" (an empty cell); the
empty tuple is "no label applies", written ``none`` in a cell (or a row of zeros in 0/1 columns).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_SEP = "|"  # between the labels of one cell: "billing|bug"
NONE_VALUE = "none"  # a cell that says no label applies (case-insensitive); an empty cell is "not labeled"
RARE_POSITIVES = 5  # a label with fewer texts than this cannot be learned; the report names it
BAD_SEPS = {'"', "'", "\n", "\r", "\t", ","}  # a separator CSV quoting or the file's delimiter would eat
ONES = {"1", "1.0", "true", "yes"}
ZEROS = {"0", "0.0", "false", "no"}

LabelSet = tuple[str, ...]


@dataclass(frozen=True)
class LabelFormat:
    """How a file wrote its label sets, so an export writes them the same way."""
    sep: str = DEFAULT_SEP  # between labels in one cell
    label_cols: tuple[str, ...] = ()  # one 0/1 column per label instead of one cell; () when cells are used

    def to_dict(self) -> dict:
        return {"sep": self.sep, "label_cols": list(self.label_cols)}

    @classmethod
    def from_dict(cls, values: dict | None) -> "LabelFormat":
        values = values or {}
        return cls(sep=str(values.get("sep", DEFAULT_SEP)), label_cols=tuple(values.get("label_cols", ())))


def check_sep(sep: str) -> str:
    """The separator, refused when a CSV cell could not carry it."""
    if not isinstance(sep, str) or not sep.strip():
        raise ValueError(f"The label separator {sep!r} is empty or blank: use a character such as '|' or ';' "
                         "(--label-sep).")
    if sep in BAD_SEPS or len(sep) > 3:
        raise ValueError(f"The label separator {sep!r} cannot be used: quotes, commas, tabs and newlines belong to "
                         "the CSV itself. Use '|' (the default) or ';'.")
    return sep


def has_separator(cells: Iterable, sep: str = DEFAULT_SEP) -> bool:
    """True when some label cell holds ``sep``: the file gives texts several labels."""
    return any(sep in str(cell) for cell in cells if not _blank(cell))


def parse_cell(cell, sep: str = DEFAULT_SEP) -> LabelSet | None:
    """A cell's label set: None for an empty cell, () for ``none``; labels stripped, repeats dropped."""
    if _blank(cell):
        return None
    parts = [p.strip() for p in str(cell).split(sep)]
    parts = list(dict.fromkeys(p for p in parts if p))
    if not parts:
        return None
    if any(p.lower() == NONE_VALUE for p in parts):
        if len(parts) > 1:
            raise ValueError(f"The cell {str(cell)[:80]!r} says {NONE_VALUE!r} and names labels too. Write "
                             f"{NONE_VALUE!r} alone when no label applies, or only the labels that do.")
        return ()
    return tuple(sorted(parts))


def parse_cells(cells: Sequence, sep: str = DEFAULT_SEP, *, first_row: int = 2) -> list[LabelSet | None]:
    """``parse_cell`` for each cell; an error names the row a user would look at."""
    sep = check_sep(sep)
    out = []
    for i, cell in enumerate(cells):
        try:
            out.append(parse_cell(cell, sep))
        except ValueError as err:
            raise ValueError(f"Row {i + first_row}: {err}") from err
    return out


def from_label_columns(table: pd.DataFrame, columns: Sequence[str], *, first_row: int = 2) -> list[LabelSet | None]:
    """Label sets from one 0/1 column per label (1, 1.0, true and yes count as 1). A row whose cells are all empty
    is not labeled yet; a row of zeros has no label."""
    columns = list(dict.fromkeys(columns))
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"No column named {', '.join(map(repr, missing[:5]))} for the labels. Columns found: "
                         f"{', '.join(map(repr, list(table.columns)[:20]))}. List the 0/1 label columns with "
                         "--label-cols a,b,c.")
    if len(columns) < 2:
        raise ValueError("--label-cols needs at least two 0/1 columns (one per label). For one label column "
                         "holding class names use --label-col.")
    for col in columns:
        check_label_name(col)
    cells = table[columns].astype("string").fillna("").apply(lambda col: col.str.strip().str.lower())
    for col in columns:
        bad = ~cells[col].isin(ONES | ZEROS | {""})
        if bad.any():
            rows = (np.flatnonzero(bad.to_numpy())[:5] + first_row).tolist()
            values = ", ".join(repr(v[:20]) for v in cells.loc[bad, col].unique()[:5])
            raise ValueError(f"Label column {col!r} is not 0/1: it holds {values} (rows {', '.join(map(str, rows))}). "
                             "Each label column must say 1 where the label applies and 0 where it does not.")
    empty = cells == ""
    partial = empty.any(axis=1) & ~empty.all(axis=1)
    if partial.any():
        rows = (np.flatnonzero(partial.to_numpy())[:5] + first_row).tolist()
        raise ValueError(f"Rows {', '.join(map(str, rows))} fill some label columns and leave others empty. Write 0 "
                         "where a label does not apply; leave every label column empty for a text not labeled yet.")
    out: list[LabelSet | None] = []
    for row, unlabeled in zip(cells.itertuples(index=False), empty.all(axis=1)):
        out.append(None if unlabeled else tuple(sorted(c for c, v in zip(columns, row) if v in ONES)))
    return out


def zero_one_columns(table: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Columns that hold only 0/1 values (and some of each across the table's rows): a multi-label file's label
    columns when no label column is named (the layout of toxic-comment sets)."""
    found = []
    for col in table.columns:
        if col in set(exclude):
            continue
        values = set(table[col].astype("string").fillna("").str.strip().str.lower().unique()) - {""}
        if values and values <= ONES | ZEROS and len(table) > 1:
            found.append(col)
    return found


def check_label_name(name: str, sep: str = DEFAULT_SEP) -> str:
    """A label name a set can carry: not "none" (that means no label), not a word for an empty cell, without the
    separator (a saved run and an export write sets as "a|b" cells)."""
    text = str(name).strip()
    if text.lower() == NONE_VALUE or text.lower() in MISSING:
        raise ValueError(f"A label may not be called {text!r}: in a multi-label file {NONE_VALUE!r} means that no "
                         "label applies, and NA/null/nan mean an empty cell. Rename that label (or column).")
    if sep in text:
        raise ValueError(f"The label {text!r} holds the separator {sep!r}, so it would read as several labels. "
                         "Rename it (or its column) without that character.")
    return text


def separator_hint(labels: Iterable[str]) -> str:
    """A warning for a single-label file whose class names look like label sets written with a separator other
    than "|" ("billing;bug" beside "billing" and "bug"): "" when they do not."""
    labels = set(labels)
    for sep in (";", "/", "+", ","):
        combos = [label for label in labels if sep in label]
        parts = {p.strip() for label in combos for p in label.split(sep) if p.strip()}
        if len(combos) >= 2 and parts & labels:  # a part that is a class of its own too: sets, not names
            example = sorted(combos)[0]
            return (f"{len(combos)} classes look like several labels written with {sep!r} ({example!r}, …), so each "
                    f"combination trains as a class of its own. If texts carry several labels, set the separator "
                    f"to {sep!r} (--label-sep {sep!r}).")
    return ""


def format_cell(labels: LabelSet | None, sep: str = DEFAULT_SEP) -> str:
    """A label set as a cell: the labels joined by ``sep``, ``none`` for the empty set, "" when not labeled."""
    if labels is None:
        return ""
    return sep.join(labels) if labels else NONE_VALUE


def multi_hot(label_sets: Sequence[LabelSet], labels: Sequence[str]) -> np.ndarray:
    """(N, L) float32: 1 where text n carries label l."""
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(label_sets), len(labels)), dtype=np.float32)
    for n, names in enumerate(label_sets):
        for name in names:
            out[n, index[name]] = 1.0
    return out


def label_sets_of(matrix: np.ndarray, labels: Sequence[str]) -> list[LabelSet]:
    """The label sets of a (N, L) 0/1 matrix (the inverse of ``multi_hot``)."""
    return [tuple(labels[i] for i in np.flatnonzero(row)) for row in np.asarray(matrix) > 0]


def iterative_split(y: np.ndarray, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of a (N, L) 0/1 matrix, ``n_val`` rows held out, each label's share kept
    as near as can be in both parts: iterative stratification (Sechidis, Tsoumakas & Vlahavas, 2011).

    Written here because the libraries that implement it (scikit-multilearn, iterative-stratification) are
    barely maintained and only do k folds; this is the algorithm's 30 lines for one split. Rarest labels are
    placed first, each of their rows into the part that still wants most of that label.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(y) > 0
    n = len(y)
    wanted_rows = np.array([n_val, n - n_val], dtype=float)  # part 0 is validation
    wanted = np.outer(wanted_rows / max(n, 1), y.sum(axis=0))  # (2, L) label counts each part wants
    part = np.full(n, -1)
    left = np.ones(n, dtype=bool)
    while left.any():
        remaining = y[left].sum(axis=0)
        if not remaining.any():
            break
        positive = np.flatnonzero(remaining)
        label = positive[np.argmin(remaining[positive])]
        rows = np.flatnonzero(left & y[:, label])
        for row in rng.permutation(rows):
            best = np.flatnonzero(wanted[:, label] == wanted[:, label].max())
            if len(best) > 1:
                best = best[wanted_rows[best] == wanted_rows[best].max()]
            chosen = int(rng.choice(best))
            part[row] = chosen
            left[row] = False
            wanted[chosen] -= y[row]
            wanted_rows[chosen] -= 1
    for row in rng.permutation(np.flatnonzero(left)):  # rows with no label: wherever rows are still wanted
        chosen = int(np.argmax(wanted_rows))
        part[row] = chosen
        wanted_rows[chosen] -= 1
    return np.flatnonzero(part == 1), np.flatnonzero(part == 0)


def label_figures(label_sets: Sequence[LabelSet], labels: Sequence[str]) -> dict:
    """The report's multi-label figures: per-label counts, co-occurrence (L×L, the diagonal is the count),
    texts per number of labels, the labels too rare to learn, and how many texts carry every label."""
    y = multi_hot(label_sets, labels)
    counts = y.sum(axis=0).astype(int)
    per_text = y.sum(axis=1).astype(int)
    histogram = {int(k): int(v) for k, v in zip(*np.unique(per_text, return_counts=True))}
    return {
        "label_counts": {label: int(c) for label, c in zip(labels, counts)},
        "cooccurrence": (y.T @ y).astype(int).tolist(),
        "labels_per_text": histogram,
        "rare_labels": [label for label, c in zip(labels, counts) if c < RARE_POSITIVES],
        "every_label": int((per_text == len(labels)).sum()) if len(labels) else 0,
        "no_label": int((per_text == 0).sum()),
    }


MISSING = {"", "nan", "null", "n/a", "#n/a", "na", "<na>"}  # what spreadsheets and pandas write for an empty cell
# ("none" is not among them here: in a multi-label cell it says that no label applies)


def _blank(cell) -> bool:
    if cell is None or cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)):
        return True
    return str(cell).strip().lower() in MISSING
