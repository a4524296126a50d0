"""Into and out of a labeling project: importing a CSV/TSV (or rows) and exporting the current labels.

Import reads files through the engine's intake (``bertdemo.data.tables``: the same encodings, delimiters, column
detection and messages). A row with an empty label cell is an unlabeled item; a text over the ``max_cell_chars``
limit is cut to it, as training data's texts are (``bertdemo.data.clean.cut_texts``), and counted. Items are keyed
by their normalised text (``store.text_key``), so importing the same file again adds nothing; a file whose label
differs from the stored one is reported as a conflict and never overwrites it. One import is one transaction:
killed half-way, it leaves nothing, and running it again does the whole of it.

Multi-label files (``bertdemo.data.layout.label_layout``: label cells such as ``billing|bug``, or one 0/1 column
per label) make multi-label projects: an item's label is its label set (stored encoded,
``labeling.labelsets``), ``none`` (or a row of zeros) is "no label applies", an empty cell (or empty 0/1 cells) is
unlabeled; "several labels per text" makes one even from unlabeled texts or single labels. The project keeps the
file's format, export writes it back the same way, and a re-import into the project reads it with that format, so
an export re-imports unchanged. A project is single- or multi-label for good: rows of the other kind are refused.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bertdemo.data.clean import cut_texts, sort_labels
from bertdemo.data.label_choice import multi_label_of
from bertdemo.data.layout import LabelLayout, label_layout
from bertdemo.data.multilabel import (DEFAULT_SEP, LabelFormat, check_sep, format_cell, has_separator,
                                      parse_cell, zero_one_columns)
from bertdemo.data.tables import guess_columns, guess_text_column, read_table
from bertdemo.labeling.history import IMPORTER, annotator_name
from bertdemo.labeling.labelsets import decode_set, encode_set
from bertdemo.labeling.store import LabelStore, check_label, check_name, now_iso, text_key
from bertdemo.limits import Limits
from bertdemo.spreadsheet import write_csv

MAX_CONFLICTS_LISTED = 50


@dataclass(frozen=True)
class ImportReport:
    project: str
    source: str
    rows: int  # data rows read
    added: int  # new items
    unlabeled: int  # of the new items, those without a label
    already: int  # rows whose text the project holds already, with the same label or none
    labeled_now: int  # items the project held unlabeled that the file labels
    empty: int  # rows with an empty text, skipped
    conflicts: list[dict] = field(default_factory=list)  # {"item", "text", "stored", "file"}: stored label kept
    conflict_count: int = 0
    new_labels: list[str] = field(default_factory=list)
    cut: int = 0  # texts longer than max_cell_chars, imported cut to their first max_cell_chars characters
    cut_rows: list[int] = field(default_factory=list)  # the first few of their row numbers (header = row 1)
    long_labels: int = 0  # rows skipped: a label cell over max_cell_chars is no class name
    limit: int = 0  # max_cell_chars at import

    def summary(self) -> str:
        parts = [f"{self.added} new items ({self.unlabeled} unlabeled)", f"{self.already} already there"]
        if self.labeled_now:
            parts.append(f"{self.labeled_now} unlabeled items labeled by the file")
        if self.empty:
            parts.append(f"{self.empty} empty texts skipped")
        if self.cut:
            rows = ", ".join(map(str, self.cut_rows)) + (", …" if self.cut > len(self.cut_rows) else "")
            parts.append(f"{self.cut} {'text' if self.cut == 1 else 'texts'} longer than {self.limit:,} characters "
                         f"cut to the first {self.limit:,} (row{'s' if self.cut > 1 else ''} {rows})")
        if self.long_labels:
            parts.append(f"{self.long_labels} rows skipped for a label over {self.limit:,} characters")
        if self.conflict_count:
            parts.append(f"{self.conflict_count} conflicting labels kept as they were (see the list)")
        return f"{self.source} → {self.project}: " + ", ".join(parts) + "."


def import_file(store: LabelStore, project: str, path: str | Path, *, text_col: str | None = None,
                label_col: str | None = None, annotator: str = IMPORTER, owner: str = "",
                label_sep: str | None = None, label_cols: Sequence[str] | None = None, per_text: str = "auto",
                label_names: Sequence[str] = ()) -> ImportReport:
    """Import a CSV/TSV into ``project`` (created when missing). Without a label column every row is unlabeled.
    The file's labels are credited to ``annotator`` (default ``IMPORTER``, "import"), never to a person's name.

    ``per_text`` is the Data tab's "labels per text" (``bertdemo.data.label_choice``): "auto" — 0/1
    ``label_cols``, or label cells holding ``label_sep`` ("|" unless given), make a multi-label file; "one" — one
    class per cell, whatever it holds; "several" — label sets, even where every cell holds one label or ``none``
    (and a new project is multi-label even when the file has no labels yet). Into an existing multi-label project
    a file is always read with the project's own format — its separator, or its 0/1 columns plus the columns of
    labels added since — unless "several" comes with 0/1 columns or another separator of its own. A file of the
    other kind than the project is refused with what to do instead. ``label_names``: labels the project takes
    besides those the file names (a new project's labels, in the order given)."""
    multi = multi_label_of(per_text)
    cols = tuple(label_cols or ())
    if multi is False:
        if cols:
            raise ValueError("0/1 label columns give a text several labels. Choose 'several labels' (or "
                             "auto-detect), or clear the 0/1 label columns.")
        label_sep = None  # one class per cell: a separator has nothing to split
    table = read_table(path)
    source = table.attrs.get("source", Path(path).name)
    existing = _existing(store, project)
    if existing is not None and existing.multi_label and multi is not False and not cols and (
            multi is None or label_sep is None or label_sep == existing.label_format.get("sep", DEFAULT_SEP)):
        label_sep, cols = _project_format(existing, table, label_col)
        multi = True
    layout = _layout(table, text_col, label_col, label_sep, cols, multi)
    kind = layout.multi_label if layout is not None else multi  # None: an unlabeled file, either kind
    if existing is not None and kind is not None and existing.multi_label != kind:
        raise ValueError(_mixing(existing.name, existing.multi_label, source, layout))
    if layout is None:  # no label column: an unlabeled file
        text_col = guess_text_column(table, text_col)
        return import_rows(store, project, table[text_col], None, annotator=annotator, owner=owner, source=source,
                           multi_label=multi, label_names=label_names,
                           label_format=LabelFormat(sep=label_sep) if multi and label_sep else None)
    if not layout.multi_label:
        return import_rows(store, project, table[layout.text_col], table[layout.label_col], annotator=annotator,
                           owner=owner, source=source, multi_label=False, label_names=label_names)
    return import_rows(store, project, table[layout.text_col], layout.label_sets(table), annotator=annotator,
                       owner=owner, source=source, multi_label=True, label_format=layout.format,
                       label_names=label_names)


def import_rows(store: LabelStore, project: str, texts: Sequence, labels: Sequence | None = None, *,
                annotator: str = IMPORTER, owner: str = "", source: str = "rows", multi_label: bool | None = None,
                label_format: LabelFormat | None = None, label_names: Sequence[str] = ()) -> ImportReport:
    """Import rows into ``project`` (created when missing); ``labels`` None: every row unlabeled.

    ``multi_label``: each label is a label set — a tuple of names, None (unlabeled), () (no label applies), or a
    cell such as "billing|bug" / "none" read with ``label_format``'s separator. None (the default) means the
    existing project's kind, or single-label for a new project. ``label_format`` is kept by a new (or not yet
    formatted) multi-label project so that export writes its sets the same way. ``label_names``: labels the project
    takes besides those the rows name, first and in the order given. In a multi-label project a new label may not
    be called ``none``, NA, null or nan, nor hold the separator (``store.check_label``): the whole import is
    refused, with the name to change."""
    annotator = annotator_name(annotator, how="imported")
    limit = Limits.current().max_cell_chars
    name = check_name(project)
    existing = _existing(store, name)
    if multi_label is None:
        multi_label = bool(existing and existing.multi_label)
    elif existing is not None and labels is not None and existing.multi_label != multi_label:
        raise ValueError(f"Project {name!r} is {'multi' if existing.multi_label else 'single'}-label, and these rows "
                         f"are {'multi' if multi_label else 'single'}-label. Import them into a new project.")
    label_format = label_format or LabelFormat.from_dict(existing.label_format if existing else None)
    if multi_label and labels is not None:
        labels = [encode_set(_as_set(value, label_format.sep)) for value in labels]
    rows, long_labels = _clean(texts, labels, limit)
    with store.write() as conn:
        found = conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        project_id = found[0] if found else conn.execute(
            "INSERT INTO projects (name, created, owner, multi_label, label_format) VALUES (?, ?, ?, ?, ?)",
            (name, now_iso(), owner, int(multi_label),
             json.dumps(label_format.to_dict()) if multi_label else "")).lastrowid
        if found and multi_label and labels is not None:  # a multi-label project made empty takes the first format
            conn.execute("UPDATE projects SET label_format = ? WHERE id = ? AND label_format IN ('', '{}')",
                         (json.dumps(label_format.to_dict()), project_id))
        known = {r[0] for r in conn.execute("SELECT name FROM labels WHERE project_id = ?", (project_id,))}
        # a 0/1 column is a label even where no row has it yet
        named = [n for stored in rows["label"].dropna() for n in decode_set(stored)] + list(label_format.label_cols) \
            if multi_label and labels is not None else rows["label"].dropna()
        given = [check_label(n) for n in label_names]  # stripped, not blank; multi-label names below
        new_labels = [label for label in dict.fromkeys([*given, *sort_labels(named)]) if label not in known]
        if multi_label:  # a name that reads back as no label, an empty cell or two labels would corrupt the sets
            for label in new_labels:
                check_label(label, label_format.sep)
        conn.executemany("INSERT INTO labels (project_id, name, added) VALUES (?, ?, ?)",
                         [(project_id, label, now_iso()) for label in new_labels])
        stored = {key: (item_id, label) for item_id, key, label in conn.execute(
            "SELECT id, key, label FROM items WHERE project_id = ?", (project_id,))}
        report = _merge(conn, project_id, rows, stored, annotator, source)
    if multi_label:  # conflicts as a person reads them in the file: "billing|bug", "none"
        report["conflicts"] = [{**c, "stored": format_cell(decode_set(c["stored"]), label_format.sep),
                                "file": format_cell(decode_set(c["file"]), label_format.sep)}
                               for c in report["conflicts"]]
    return ImportReport(project=name, source=source, rows=len(texts), empty=len(texts) - len(rows) - long_labels,
                        new_labels=new_labels, cut=int(rows["cut"].sum()),
                        cut_rows=rows.loc[rows["cut"], "row"].head(5).tolist(), long_labels=long_labels, limit=limit,
                        **report)


def export_frame(store: LabelStore, project: str, *, provenance: bool = False, unlabeled: bool = False
                 ) -> pd.DataFrame:
    """The labeled items as ``text,label`` (plus how, annotator, updated and split with ``provenance``;
    ``unlabeled``: every item, an unlabeled one with an empty label cell, so that a re-import gives the same
    items).

    A multi-label project writes the format its file had: label cells joined by its separator ("billing|bug",
    "none" for no label applies, "" unlabeled), or one 0/1 column per label (the file's columns, then labels
    added since; empty cells for an unlabeled item)."""
    info = store.project(project)
    items = store.items(project, labeled=None if unlabeled else True)
    if not info.multi_label:
        frame = pd.DataFrame({"text": [i.text for i in items], "label": [i.label for i in items]})
    else:
        label_format = LabelFormat.from_dict(info.label_format)
        sets = [decode_set(i.label) for i in items]
        frame = pd.DataFrame({"text": [i.text for i in items]})
        if label_format.label_cols:
            columns = list(label_format.label_cols) + [label for label in info.labels
                                                       if label not in label_format.label_cols]
            for column in columns:
                frame[column] = ["" if s is None else ("1" if column in s else "0") for s in sets]
        else:
            frame["label"] = [format_cell(s, label_format.sep) for s in sets]
    if provenance:
        frame["how"] = [i.how for i in items]
        frame["annotator"] = [i.annotator for i in items]
        frame["updated"] = [i.updated for i in items]
        frame["split"] = [i.split or "" for i in items]
    return frame


def export_csv(store: LabelStore, project: str, dest: str | Path, *, provenance: bool = False,
               unlabeled: bool = False) -> Path:
    """Write the current labels as a training-ready, spreadsheet-safe CSV (``export_frame``)."""
    return write_csv(export_frame(store, project, provenance=provenance, unlabeled=unlabeled), dest)


def _existing(store: LabelStore, project: str):
    """The project's ``ProjectInfo``, or None when there is none of that name yet."""
    try:
        return store.project(project)
    except ValueError:
        return None


def _project_format(project, table: pd.DataFrame, label_col: str | None) -> tuple[str | None, tuple[str, ...]]:
    """(label_sep, label_cols) to read ``table`` into the multi-label ``project`` (a ``ProjectInfo``): its 0/1
    columns where the file has them all, with the columns of labels added since (export writes those too), else
    its separator, whether or not a cell holds it: an export where every item has one label or ``none`` holds no
    separator, and is still label sets."""
    fmt = LabelFormat.from_dict(project.label_format)
    if fmt.label_cols and label_col is None and all(c in table.columns for c in fmt.label_cols):
        added = [label for label in project.labels if label in table.columns and label not in fmt.label_cols]
        return None, fmt.label_cols + tuple(added)
    return fmt.sep, ()


def _layout(table: pd.DataFrame, text_col: str | None, label_col: str | None, label_sep: str | None,
            label_cols: tuple[str, ...], multi: bool | None) -> LabelLayout | None:
    """The file's label layout (``label_layout``; ``multi`` None: the file says), or None when it has no labels at
    all (no label column, no 0/1 columns, none named)."""
    if label_col is None and not label_cols and not _has_labels(table, text_col):
        guess_text_column(table, text_col)  # a text column must still be found (its message, if not)
        return None
    if multi is None and not label_cols and label_sep is not None and label_sep != DEFAULT_SEP:
        # auto-detect with a separator of one's own (the tab's box): as in the Data tab, cells holding it make the
        # file multi-label; "|" label_layout looks for itself
        found = label_layout(table, text_col, label_col)
        if found.format.label_cols or not has_separator(table[found.label_col].tolist(), check_sep(label_sep)):
            return found
    elif multi is None and label_sep == DEFAULT_SEP and not label_cols:
        label_sep = None
    return label_layout(table, text_col, label_col, label_sep, label_cols or None, multi_label=multi)


def _has_labels(table: pd.DataFrame, text_col: str | None) -> bool:
    """Whether ``table`` has a label column (found by name, or the other of two columns) or 0/1 label columns."""
    try:
        guess_columns(table, text_col, None)
        return True
    except ValueError:
        return len(zero_one_columns(table, exclude=[text_col] if text_col else [])) >= 2


def _mixing(project: str, multi: bool, source: str, layout: LabelLayout | None) -> str:
    if multi:
        what = (f"one label per row in column {layout.label_col!r}" if layout is not None else
                "texts to import as single-label")
        return (f"Project {project!r} is multi-label, but 'one label per text' (--labels-per-text one) was chosen "
                f"for {source} ({what}). Choose auto-detect to read its cells as label sets, or import it into a new "
                "project.")
    if layout is None:
        return (f"Project {project!r} is single-label, and 'several labels' (--labels-per-text several) was chosen "
                f"for {source}. Import it into a new project to make a multi-label one, or choose auto-detect.")
    what = f"0/1 label columns ({', '.join(layout.format.label_cols)})" if layout.format.label_cols else \
        f"label sets in column {layout.label_col!r} (separated by {layout.format.sep!r})"
    return (f"Project {project!r} is single-label, but {source} has {what}. Import it into a new project: it will be "
            "multi-label.")


def _as_set(value, sep: str):
    """One row's label set from what ``import_rows`` accepts: a set of names, None, or a cell."""
    if value is None or isinstance(value, (tuple, list, set, frozenset)):
        return value
    return parse_cell(value, sep)


def _clean(texts: Sequence, labels: Sequence | None, limit: int) -> tuple[pd.DataFrame, int]:
    """(rows, long labels): the rows with a text, stripped, cut at ``limit`` (column "cut" says which) and keyed, "row"
    being the file's row number; and how many rows were left out for a label cell over ``limit``."""
    rows = pd.DataFrame({"text": list(texts)})
    rows["row"] = range(2, len(rows) + 2)
    rows["text"] = rows["text"].fillna("").astype(str).str.strip()
    values = pd.Series(list(labels) if labels is not None else [None] * len(rows), dtype=object)
    rows["label"] = values.map(lambda v: None if v is None or pd.isna(v) or not str(v).strip() else str(v).strip())
    rows = rows[rows["text"] != ""]
    # a missing label is NaN here; astype(bool): on no rows at all the map is an object Series, which would
    # select columns rather than rows
    long_labels = rows["label"].map(lambda v: isinstance(v, str) and len(v) > limit).astype(bool)
    rows = rows.loc[~long_labels].copy()
    rows["text"], rows["cut"] = cut_texts(rows["text"], limit)
    rows["key"] = rows["text"].map(text_key)
    return rows, int(long_labels.sum())


def _merge(conn, project_id: int, rows: pd.DataFrame, stored: dict, annotator: str, source: str) -> dict:
    """Insert new items, label unlabeled ones, report conflicts; the labels set here are one step of history."""
    at = now_iso()
    session = f"import:{source}"[:120]
    added = unlabeled = already = labeled_now = 0
    conflicts: list[dict] = []
    count = 0
    changes: list[tuple] = []
    for text, label, key in rows[["text", "label", "key"]].itertuples(index=False):
        label = label if isinstance(label, str) else None  # pandas keeps a missing label as NaN, not None
        if key in stored:
            item_id, current = stored[key]
            if label is None or label == current:
                already += 1
            elif current is None:
                conn.execute("UPDATE items SET label = ?, how = 'imported', annotator = ?, updated = ? WHERE id = ?",
                             (label, annotator, at, item_id))
                changes.append((item_id, None, label))
                stored[key] = (item_id, label)
                labeled_now += 1
            else:
                count += 1
                if len(conflicts) < MAX_CONFLICTS_LISTED:
                    conflicts.append({"item": item_id, "text": text, "stored": current, "file": label})
            continue
        item_id = conn.execute(
            "INSERT INTO items (project_id, key, text, label, how, annotator, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (project_id, key, text, label, "imported" if label else None, annotator if label else None,
             at if label else None)).lastrowid
        stored[key] = (item_id, label)
        added += 1
        unlabeled += label is None
        if label is not None:
            changes.append((item_id, None, label))
    if changes:
        first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM changes").fetchone()[0]
        conn.executemany("INSERT INTO changes (project_id, item_id, old_label, new_label, old_how, new_how, "
                         "annotator, session, at, step) VALUES (?, ?, ?, ?, NULL, 'imported', ?, ?, ?, ?)",
                         [(project_id, item_id, old, new, annotator, session, at, first) for item_id, old, new in changes])
    return {"added": added, "unlabeled": unlabeled, "already": already, "labeled_now": labeled_now,
            "conflicts": conflicts, "conflict_count": count}
