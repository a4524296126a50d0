"""Into and out of a labeling project: importing a CSV/TSV (or rows) and exporting the current labels.

Import reads files through the engine's intake (``bertdemo.data.tables``: the same encodings, delimiters, column
detection and messages). A row with an empty label cell is an unlabeled item; a text over the ``max_cell_chars``
limit is cut to it, as training data's texts are (``bertdemo.data.clean.cut_texts``), and counted. Items are keyed
by their normalised text (``store.text_key``), so importing the same file again adds nothing; a file whose label
differs from the stored one is reported as a conflict and never overwrites it. One import is one transaction:
killed half-way, it leaves nothing, and running it again does the whole of it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bertdemo.data.clean import cut_texts, sort_labels
from bertdemo.data.tables import guess_columns, guess_text_column, read_table
from bertdemo.labeling.history import IMPORTER, annotator_name
from bertdemo.labeling.store import LabelStore, check_name, now_iso, text_key
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
                label_col: str | None = None, annotator: str = IMPORTER, owner: str = "") -> ImportReport:
    """Import a CSV/TSV into ``project`` (created when missing). Without a label column every row is unlabeled.
    The file's labels are credited to ``annotator`` (default ``IMPORTER``, "import"), never to a person's name."""
    table = read_table(path)
    text_col, label_col = _columns(table, text_col, label_col)
    labels = table[label_col] if label_col is not None else None
    return import_rows(store, project, table[text_col], labels, annotator=annotator, owner=owner,
                       source=table.attrs.get("source", Path(path).name))


def import_rows(store: LabelStore, project: str, texts: Sequence, labels: Sequence | None = None, *,
                annotator: str = IMPORTER, owner: str = "", source: str = "rows") -> ImportReport:
    annotator = annotator_name(annotator, how="imported")
    limit = Limits.current().max_cell_chars
    rows, long_labels = _clean(texts, labels, limit)
    name = check_name(project)
    with store.write() as conn:
        found = conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        project_id = found[0] if found else conn.execute(
            "INSERT INTO projects (name, created, owner) VALUES (?, ?, ?)", (name, now_iso(), owner)).lastrowid
        known = {r[0] for r in conn.execute("SELECT name FROM labels WHERE project_id = ?", (project_id,))}
        new_labels = [label for label in sort_labels(rows["label"].dropna()) if label not in known]
        conn.executemany("INSERT INTO labels (project_id, name, added) VALUES (?, ?, ?)",
                         [(project_id, label, now_iso()) for label in new_labels])
        stored = {key: (item_id, label) for item_id, key, label in conn.execute(
            "SELECT id, key, label FROM items WHERE project_id = ?", (project_id,))}
        report = _merge(conn, project_id, rows, stored, annotator, source)
    return ImportReport(project=name, source=source, rows=len(texts), empty=len(texts) - len(rows) - long_labels,
                        new_labels=new_labels, cut=int(rows["cut"].sum()),
                        cut_rows=rows.loc[rows["cut"], "row"].head(5).tolist(), long_labels=long_labels, limit=limit,
                        **report)


def export_frame(store: LabelStore, project: str, *, provenance: bool = False) -> pd.DataFrame:
    """The labeled items as ``text,label`` (plus how, annotator, updated and split with ``provenance``)."""
    items = store.items(project, labeled=True)
    frame = pd.DataFrame({"text": [i.text for i in items], "label": [i.label for i in items]})
    if provenance:
        frame["how"] = [i.how for i in items]
        frame["annotator"] = [i.annotator for i in items]
        frame["updated"] = [i.updated for i in items]
        frame["split"] = [i.split or "" for i in items]
    return frame


def export_csv(store: LabelStore, project: str, dest: str | Path, *, provenance: bool = False) -> Path:
    """Write the current labels as a training-ready, spreadsheet-safe CSV."""
    return write_csv(export_frame(store, project, provenance=provenance), dest)


def _columns(table: pd.DataFrame, text_col: str | None, label_col: str | None) -> tuple[str, str | None]:
    if label_col is not None:
        return guess_columns(table, text_col, label_col)
    try:
        return guess_columns(table, text_col, None)
    except ValueError:  # no label column: an unlabeled file
        return guess_text_column(table, text_col), None


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
