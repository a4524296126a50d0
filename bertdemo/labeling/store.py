"""The labeling store: one SQLite database in the workspace holding every project, its items, their labels and
the history of every change (the standard library's ``sqlite3``).

Durability: WAL journal with ``synchronous=FULL``, and every change is one transaction, so a label the store
acknowledged survives a closed browser, a restart and ``kill -9``; a transaction cut short leaves no trace.
Concurrency: a connection per call (handlers run in many threads, and the CLI may write beside the app),
``BEGIN IMMEDIATE`` for writes and a busy timeout, so two writers queue instead of losing an update. A check and
the write it decides belong in one ``write()`` block; several reads that must agree (the labels a run trains on
and the last change they include) in one ``read()`` block, which is one snapshot of the database.

Soft locks (``claim``) keep two sessions from being *served* the same item; they do not guard answers. What
guards a label is the answer's check that the item still has the label its annotator was shown
(``labeling.history.set_labels``).

Not in here: importing and exporting files (``labeling.transfer``), labeling and undo (``labeling.history``),
which items to serve (``labeling.queues``).
"""
from __future__ import annotations

import contextlib
import json
import hashlib
import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bertdemo.data.multilabel import LabelFormat, check_label_name
from bertdemo.labeling.schema import migrate
from bertdemo.workspace import Workspace, as_workspace

DATABASE = "labeling.sqlite3"
BUSY_TIMEOUT_MS = 15_000  # a writer waits this long for another before giving up with a message
LOCK_SECONDS = 300  # an item served to one session is not served to another for this long
HOW = ("imported", "human", "suggestion", "bulk")  # how an item's current label was set
MAX_NAME = 80
_NAME = re.compile(r"^[\w][\w .\-]*$")


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    name: str
    created: str
    owner: str
    labels: tuple[str, ...]  # in the order they were added
    items: int
    labeled: int
    multi_label: bool = False  # items carry label sets (stored encoded: bertdemo.labeling.labelsets)
    label_format: dict = field(default_factory=dict)  # multi-label: LabelFormat.to_dict() of the imported file


@dataclass(frozen=True)
class Item:
    id: int
    text: str
    label: str | None
    how: str | None
    annotator: str | None
    updated: str | None
    split: str | None  # "validation" once frozen, else None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def text_key(text: str) -> str:
    """What makes two texts the same item: Unicode NFKC, runs of whitespace as one space, no outer spaces."""
    normalised = " ".join(unicodedata.normalize("NFKC", str(text)).split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:32]


def check_name(name: str, what: str = "project") -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not _NAME.match(name):
        raise ValueError(f"{what.capitalize()} name {name[:MAX_NAME]!r} is not usable: use 1-{MAX_NAME} letters, digits, "
                         "spaces, dots, dashes or underscores, starting with a letter or digit.")
    return name


class LabelStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            migrate(conn)

    @classmethod
    def for_workspace(cls, workspace: Workspace | str | Path | None = None) -> "LabelStore":
        return cls(as_workspace(workspace).root / DATABASE)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        with self._connect() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:  # still locked after the busy timeout
                raise ValueError("The labeling database is busy (another long write is running). Try again in a "
                                 "moment.") from err
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query in the block sees the database as it was at the first one (WAL keeps
        that snapshot while writers go on)."""
        with self._connect() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:  # nothing was written: this only ends the snapshot
                    conn.execute("COMMIT")

    # projects

    def create_project(self, name: str, labels: Sequence[str] = (), *, owner: str = "", multi_label: bool = False,
                       label_format: dict | None = None) -> ProjectInfo:
        """A new project; ``multi_label``: items take label sets, ``label_format`` says how export writes them."""
        name = check_name(name)
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"A project named {name!r} exists already. Choose another name, or import into it.")
            cur = conn.execute("INSERT INTO projects (name, created, owner, multi_label, label_format) "
                               "VALUES (?, ?, ?, ?, ?)", (name, now_iso(), owner, int(bool(multi_label)),
                                                          json.dumps(label_format or {}) if multi_label else ""))
            for label in labels:
                _add_label(conn, cur.lastrowid, label, _sep(multi_label, label_format))
        return self.project(name)

    def projects(self) -> list[ProjectInfo]:
        with self.read() as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM projects ORDER BY created DESC, name")]
        return [self.project(name) for name in names]

    def project(self, name: str) -> ProjectInfo:
        with self.read() as conn:
            row = conn.execute("SELECT id, name, created, owner, multi_label, label_format FROM projects "
                               "WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise ValueError(f"No labeling project named {str(name)[:MAX_NAME]!r}. Create it by importing a file.")
            labels = tuple(r[0] for r in conn.execute(
                "SELECT name FROM labels WHERE project_id = ? ORDER BY added, rowid", (row[0],)))
            items, labeled = conn.execute("SELECT COUNT(*), COUNT(label) FROM items WHERE project_id = ?",
                                          (row[0],)).fetchone()
        return ProjectInfo(id=row[0], name=row[1], created=row[2], owner=row[3], labels=labels, items=items,
                           labeled=labeled, multi_label=bool(row[4]), label_format=json.loads(row[5] or "{}"))

    def add_label(self, project: str, label: str) -> ProjectInfo:
        info = self.project(project)
        with self.write() as conn:
            _add_label(conn, info.id, label, _sep(info.multi_label, info.label_format))
        return self.project(project)

    def delete_project(self, project: str) -> None:
        info = self.project(project)
        with self.write() as conn:
            conn.execute("DELETE FROM projects WHERE id = ?", (info.id,))

    # items

    def item(self, project: str, item_id: int) -> Item:
        info = self.project(project)
        with self.read() as conn:
            row = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE project_id = ? AND id = ?",
                               (info.id, int(item_id))).fetchone()
        if row is None:
            raise ValueError(f"Project {project!r} has no item {item_id}.")
        return Item(*row)

    def items(self, project: str, *, labeled: bool | None = None, split: str | None = "any",
              conn: sqlite3.Connection | None = None) -> list[Item]:
        """Items in import order; ``labeled`` True/False filters, ``split`` "validation"/None filters ("any": all).
        ``conn``: read inside the caller's ``read()`` or ``write()`` block, so that its other queries agree."""
        info = self.project(project)
        where, args = ["project_id = ?"], [info.id]
        if labeled is not None:
            where.append("label IS NOT NULL" if labeled else "label IS NULL")
        if split != "any":
            where.append("split IS NULL" if split is None else "split = ?")
            args += [] if split is None else [split]
        with contextlib.nullcontext(conn) if conn is not None else self.read() as conn:
            rows = conn.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {' AND '.join(where)} ORDER BY id", args)
            return [Item(*row) for row in rows]

    def integrity(self) -> str:
        """SQLite's own ``PRAGMA integrity_check``: "ok" for a sound database."""
        with self.read() as conn:
            return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))

    # soft locks

    def claim(self, project: str, holder: str, candidates: Sequence[int], n: int,
              seconds: float = LOCK_SECONDS) -> list[int]:
        """Lock up to ``n`` of ``candidates`` (in their order) for ``holder``: items no one else holds, still
        unlabeled or not, as the caller chose them. Locks expire after ``seconds``; claiming an item again
        renews its lock."""
        info = self.project(project)
        now = time.time()
        with self.write() as conn:
            conn.execute("DELETE FROM locks WHERE expires < ?", (now,))
            held = {row[0]: row[1] for row in conn.execute(
                "SELECT l.item_id, l.holder FROM locks l JOIN items i ON i.id = l.item_id WHERE i.project_id = ?",
                (info.id,))}
            chosen = [int(i) for i in candidates if held.get(int(i), holder) == holder][:n]
            conn.executemany("INSERT OR REPLACE INTO locks (item_id, holder, expires) VALUES (?, ?, ?)",
                             [(i, holder, now + seconds) for i in chosen])
        return chosen

    def renew(self, project: str, holder: str, item_ids: Sequence[int], seconds: float = LOCK_SECONDS) -> list[int]:
        """``holder`` is still at these items (on screen, or about to be): its claims run ``seconds`` from now.
        A claim that lapsed is taken again unless another session took the item meanwhile; returns the ids
        ``holder`` now holds."""
        return self.claim(project, holder, item_ids, len(item_ids), seconds)

    def release(self, holder: str, item_ids: Sequence[int] | None = None) -> None:
        with self.write() as conn:
            if item_ids is None:
                conn.execute("DELETE FROM locks WHERE holder = ?", (holder,))
            else:
                conn.executemany("DELETE FROM locks WHERE holder = ? AND item_id = ?",
                                 [(holder, int(i)) for i in item_ids])

    def locked_by_others(self, project: str, holder: str) -> set[int]:
        info = self.project(project)
        with self.read() as conn:
            return {row[0] for row in conn.execute(
                "SELECT l.item_id FROM locks l JOIN items i ON i.id = l.item_id "
                "WHERE i.project_id = ? AND l.holder != ? AND l.expires >= ?", (info.id, holder, time.time()))}


_ITEM_COLUMNS = "id, text, label, how, annotator, updated, split"


def check_label(label: str, sep: str | None = None) -> str:
    """A label name, stripped; refused when blank or over 200 characters. ``sep`` (a multi-label project's
    separator) also refuses what a label set cannot carry (``check_label_name``): ``none``, NA/null/nan, or a name
    holding the separator, which would read back as no label, an empty cell or two labels."""
    label = str(label).strip()
    if not label:
        raise ValueError("A label needs a name: type one.")
    if len(label) > 200:
        raise ValueError(f"Label {label[:40]!r}… is longer than 200 characters; use a shorter name.")
    return check_label_name(label, sep) if sep is not None else label


def _add_label(conn: sqlite3.Connection, project_id: int, label: str, sep: str | None = None) -> None:
    conn.execute("INSERT OR IGNORE INTO labels (project_id, name, added) VALUES (?, ?, ?)",
                 (project_id, check_label(label, sep), now_iso()))


def _sep(multi_label: bool, label_format: dict | None) -> str | None:
    """The separator a multi-label project's label names must not hold; None for a single-label project."""
    return LabelFormat.from_dict(label_format).sep if multi_label else None


def label_counts(store: LabelStore, name: str) -> dict:
    """Items, labeled items, per label (the label set's order) and per annotator, counted by the database. In a
    multi-label project "per label" is the texts carrying each label, and "no_label" those with none."""
    info = store.project(name)
    with store.read() as conn:
        per_label = dict(conn.execute("SELECT label, COUNT(*) FROM items WHERE project_id = ? AND label IS NOT NULL "
                                      "GROUP BY label", (info.id,)).fetchall())
        raw = dict(per_label)
        per_annotator = dict(conn.execute(
            "SELECT COALESCE(annotator, '?'), COUNT(*) FROM items WHERE project_id = ? AND label IS NOT NULL "
            "GROUP BY annotator ORDER BY COUNT(*) DESC", (info.id,)).fetchall())
        frozen = conn.execute("SELECT COUNT(*) FROM items WHERE project_id = ? AND split = 'validation'",
                              (info.id,)).fetchone()[0]
    if info.multi_label:  # stored sets, counted per label: the texts that carry it ("[]": no label applies)
        per_label = {}
        for stored, n in raw.items():
            for label in json.loads(stored):
                per_label[label] = per_label.get(label, 0) + n
    return {"project": info.name, "items": info.items, "labeled": info.labeled, "unlabeled": info.items - info.labeled,
            "labels": list(info.labels), "per_label": {label: per_label.get(label, 0) for label in info.labels},
            "per_annotator": per_annotator, "validation_items": frozen,
            **({"no_label": sum(n for stored, n in raw.items() if stored == "[]")} if info.multi_label else {})}


def project_status(store: LabelStore, name: str) -> dict:
    """``label_counts`` and the database's integrity (``PRAGMA integrity_check``: it reads every page)."""
    return {**label_counts(store, name), "integrity": store.integrity()}
