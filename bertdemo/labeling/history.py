"""Changing labels, and taking changes back. Every change is a row in ``changes`` (old and new label, how, who,
when); one user action — a key press, or a bulk accept of hundreds of items — is one *step*, written in one
transaction and undone as one.

A label written over someone else's is a change like any other: the history keeps both, but it is never written
unknowingly. An answer carries the label its annotator was shown (``expected``); when the item's label is no
longer that one (another tab or the CLI labeled it meanwhile), nothing is written and ``LabelChanged`` says what
the label is now. Answering again with that knowledge replaces it.

Locks (``LabelStore.claim``) are soft: an answer is saved whoever holds the item's lock now, because the label
check above is what protects labels (a lock that lapsed while its item was on screen, then taken by another
tab, does not throw away a correct answer). An answer releases only its own tab's lock on the item; the other
tab keeps its claim, and its answer, if it comes, meets the changed label and is refused.

In a multi-label project a label is a label set, stored encoded (``labeling.labelsets``): ``set_labels`` takes
sets (tuples of names) or their stored form, ``set_label_set`` one item's set; the history records sets and undo
restores them.

Undo is keyed by *owner*, the person's identity (the UI's logged-in or per-browser user, the CLI's owner), not
by the tab: a reload or a second tab can take back one's own last step. Undo restores what a step replaced,
except where someone changed the item since: that newer label stays, and the undo says so.
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from bertdemo.labeling.labelsets import decode_set, encode_set, shown_set
from bertdemo.labeling.store import HOW, LabelStore, ProjectInfo, check_name, now_iso

MAX_ANNOTATOR = 40
IMPORTER = "import"  # who the history credits with the labels a file brought; no person may label under it
MAX_OWNER = 200  # an owner is an identity the UI or the CLI gives (a login, a browser's id), not a typed name


ANY = object()  # set_label(expected=ANY): no check of the label the writer saw (imports, scripts)


@dataclass(frozen=True)
class Changed:
    item: int
    shown: str | None  # the label the writer was shown (None: unlabeled)
    now: str | None  # the label the item has now
    annotator: str | None  # who set the label it has now


class LabelChanged(ValueError):
    """An answer to items whose labels changed after they were shown: nothing of the step was written."""

    def __init__(self, changed: list[Changed], answered: int):
        self.changed = changed
        first = changed[0]
        now = "unlabeled" if first.now is None else \
            f"labeled {_readable(first.now)!r}" + (f" by {first.annotator}" if first.annotator else "")
        shown = "unlabeled" if first.shown is None else repr(_readable(first.shown))
        if answered == 1:
            again = f"replaces {_readable(first.now)!r}" if first.now is not None else "labels it"
            message = (f"Not saved: item {first.item} is now {now}; it was {shown} when it was shown to you. Look at "
                       f"it again: answering once more {again}, or skip it.")
        else:
            message = (f"Nothing saved: {len(changed)} of the {answered} items changed after they were shown to you "
                       f"(item {first.item} is now {now}; it was {shown}). Look at them again, then answer for the "
                       "labels they have now.")
        super().__init__(message)


@dataclass(frozen=True)
class Undone:
    step: int | None  # the step taken back; None when there was nothing to undo
    restored: list[int]  # items back at their earlier label
    kept: list[int]  # items someone else changed since: their newer label stays


def annotator_name(name: str | None, *, how: str = "human") -> str:
    """The name a change is credited to. A person must give one (an empty name is refused with a message, so that
    their labels are never mixed with everyone else's under a default), and never ``IMPORTER``: an import's labels
    and a person's stay apart in the history and the per-annotator counts."""
    name = (name or "").strip()[:MAX_ANNOTATOR]
    if how == "imported":
        return check_name(name or IMPORTER, "annotator")
    if not name:
        raise ValueError("Type your name in the \"Your name\" box first: your labels are credited to it in the "
                         "history and the per-annotator counts.")
    if name.lower() == IMPORTER:
        raise ValueError(f"{IMPORTER!r} is the name the history gives labels that came from a file: type your own "
                         "name to label.")
    return check_name(name, "annotator")


def set_labels(store: LabelStore, project: str, labels: Sequence[tuple[int, str | None]], *, annotator: str,
               session: str = "", owner: str | None = None, how: str = "human",
               expected: Mapping[int, str | None] | None = None) -> int | None:
    """Set each (item id, label) — None removes a label — as one step; return the step's id (None if nothing
    changed). Labels not yet in the project's label set are refused, so a typo cannot create a class. In a
    multi-label project each label is a set: a tuple of names (() = no label applies) or its stored form
    (``labelsets.encode_set``), every name in the label set; ``expected`` takes sets the same way.

    ``session`` is the tab writing (its locks on these items are released), ``owner`` who may undo the step
    (default: the annotator's name). ``expected`` maps item ids to the label the writer was shown (None:
    unlabeled): if any of them has another label now, and not the one being written, ``LabelChanged`` is raised
    and nothing is written. Items not in ``expected`` are written whatever their label."""
    if how not in HOW:
        raise ValueError(f"how must be one of {', '.join(HOW)} (got {how!r}).")
    annotator = annotator_name(annotator, how=how)
    owner = str(owner)[:MAX_OWNER] if owner else annotator
    info = store.project(project)
    labels = [(int(i), stored_label(info, label)) for i, label in labels]
    expected = {int(i): stored_label(info, label) for i, label in (expected or {}).items()}
    known = set(info.labels)
    named = {n for _, label in labels if label is not None
             for n in (decode_set(label) if info.multi_label else [label])}
    unknown = sorted(named - known)
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown[:5]))} is not a label of {project!r}. Add it to the label set "
                         f"first (labels now: {', '.join(info.labels) or 'none'}).")
    with store.write() as conn:  # the check and the writes in one transaction: no one writes in between
        current = {}  # item id → (label, how, annotator) now
        for item_id, _ in labels:
            current[item_id] = conn.execute("SELECT label, how, annotator FROM items WHERE project_id = ? AND id = ?",
                                            (info.id, item_id)).fetchone()
            if current[item_id] is None:
                raise ValueError(f"Project {project!r} has no item {item_id}.")
        changed = [Changed(item=i, shown=expected[i], now=current[i][0], annotator=current[i][2])
                   for i, label in labels if i in expected and current[i][0] not in (expected[i], label)]
        if changed:
            raise LabelChanged(changed, len(labels))
        step = None
        for item_id, label in labels:
            row = current[item_id]
            theirs = item_id in expected and expected[item_id] != row[0]  # set since it was shown, to this label
            if row[0] == label and (label is None or row[1] == how or theirs):
                continue  # nothing to change, or someone else gave it this very label meanwhile: theirs stands
            step = _record(conn, info.id, item_id, row[:2], label, how if label is not None else None, annotator,
                           session, owner, step)
        conn.executemany("DELETE FROM locks WHERE item_id = ? AND holder = ?",  # answered: this tab's claim goes
                         [(i, session) for i, _ in labels])
    return step


def set_label(store: LabelStore, project: str, item_id: int, label: str | None, *, annotator: str,
              session: str = "", owner: str | None = None, how: str = "human", expected: object = ANY) -> int | None:
    """``set_labels`` for one item; ``expected`` is the label the writer was shown (None: unlabeled; ``ANY``:
    no check)."""
    return set_labels(store, project, [(item_id, label)], annotator=annotator, session=session, owner=owner,
                      how=how, expected=None if expected is ANY else {int(item_id): expected})


def set_label_set(store: LabelStore, project: str, item_id: int, labels: Collection[str] | None, *, annotator: str,
                  session: str = "", owner: str | None = None, how: str = "human",
                  expected: object = ANY) -> int | None:
    """A multi-label project's ``set_label``: give the item the label set ``labels`` (() = no label applies, None =
    unlabeled); ``expected`` is the set the writer was shown (a tuple, None for unlabeled, ``ANY``: no check)."""
    if not store.project(project).multi_label:
        raise ValueError(f"Project {project!r} is single-label: give each item one label (set_label), not a set.")
    return set_label(store, project, item_id, None if labels is None else tuple(labels), annotator=annotator,
                     session=session, owner=owner, how=how,
                     expected=expected if expected is ANY or expected is None else tuple(expected))


def stored_label(info: ProjectInfo, label) -> str | None:
    """A label as the store keeps it. Single-label: the name. Multi-label: the encoded set, from a set of names (a
    tuple, list or set) or an encoded set; a bare name is the set of that one label."""
    if label is None:
        return None
    if info.multi_label:
        return encode_set(label if isinstance(label, (tuple, list, set, frozenset)) else decode_set(str(label)))
    if isinstance(label, (tuple, list, set, frozenset)):
        raise ValueError(f"Project {info.name!r} is single-label: give each item one label, not a set of them.")
    return label


def _readable(stored: str) -> str:
    """A stored label as a person reads it: a multi-label set as "billing + bug" / "no label"."""
    return shown_set(decode_set(stored)) if stored.startswith("[") else stored


def undo(store: LabelStore, project: str, *, owner: str, session: str = "") -> Undone:
    """Take back the latest step of ``owner`` that is neither undone nor itself an undo (``session``: the tab
    asking, kept in the history)."""
    if not owner:
        raise ValueError("Undo needs to know whose step to take back: pass the owner's identity.")
    owner = str(owner)[:MAX_OWNER]
    info = store.project(project)
    with store.write() as conn:
        row = conn.execute(
            "SELECT step FROM changes c WHERE project_id = ? AND owner = ? AND undoes IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM changes u WHERE u.undoes = c.step) ORDER BY id DESC LIMIT 1",
            (info.id, owner)).fetchone()
        if row is None:
            return Undone(step=None, restored=[], kept=[])
        step = row[0]
        restored, kept, new_step = [], [], None
        for item_id, old_label, new_label, old_how, annotator in conn.execute(
                "SELECT item_id, old_label, new_label, old_how, annotator FROM changes WHERE step = ? ORDER BY id DESC",
                (step,)).fetchall():
            current = conn.execute("SELECT label, how FROM items WHERE id = ?", (item_id,)).fetchone()
            if current[0] != new_label:
                kept.append(item_id)
                continue
            new_step = _record(conn, info.id, item_id, current, old_label, old_how, annotator, session, owner,
                               new_step, undoes=step)
            restored.append(item_id)
        if new_step is None:  # nothing could be restored: a no-op change still marks the step as taken back
            item_id = kept[0]
            current = conn.execute("SELECT label, how, annotator FROM items WHERE id = ?", (item_id,)).fetchone()
            _record(conn, info.id, item_id, current[:2], current[0], current[1], current[2] or "anonymous", session,
                    owner, None, undoes=step)
    return Undone(step=step, restored=restored, kept=kept)


def last_change(store: LabelStore, project: str, *, conn: sqlite3.Connection | None = None) -> int:
    """The id of the project's latest change: a label snapshot is everything up to it. ``conn``: read inside the
    caller's ``store.read()`` block, so that the snapshot is the one its other reads saw."""
    info = store.project(project)
    with contextlib.nullcontext(conn) if conn is not None else store.read() as conn:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM changes WHERE project_id = ?",
                                (info.id,)).fetchone()[0])


def changes_since(store: LabelStore, project: str, snapshot: int) -> dict:
    """What moved after ``snapshot``: the number of changes and of items changed, and per class how many items
    came in and went out (net, item by item: an item relabeled twice counts once). In a multi-label project per
    label: the items that gained it and those that lost it."""
    info = store.project(project)
    with store.read() as conn:
        rows = conn.execute("SELECT item_id, old_label, new_label FROM changes WHERE project_id = ? AND id > ? "
                            "ORDER BY id", (info.id, snapshot)).fetchall()
    first: dict[int, str | None] = {}
    last: dict[int, str | None] = {}
    for item_id, old, new in rows:
        first.setdefault(item_id, old)
        last[item_id] = new
    came, went = Counter(), Counter()
    moved = 0
    for item_id, before in first.items():
        after = last[item_id]
        if before == after:
            continue
        moved += 1
        if info.multi_label:  # per label: the labels the item gained and lost
            now, then = set(decode_set(after) or ()), set(decode_set(before) or ())
            came.update(now - then)
            went.update(then - now)
            continue
        if after is not None:
            came[after] += 1
        if before is not None:
            went[before] += 1
    classes = sorted(set(came) | set(went))
    return {"changes": len(rows), "items_changed": moved,
            "per_class": {c: {"in": came[c], "out": went[c], "net": came[c] - went[c]} for c in classes}}


def _record(conn: sqlite3.Connection, project_id: int, item_id: int, current: tuple, label: str | None,
            how: str | None, annotator: str, session: str, owner: str, step: int | None,
            undoes: int | None = None) -> int:
    """Write one change and apply it; return the step (the first change's id when ``step`` is None)."""
    at = now_iso()
    cur = conn.execute("INSERT INTO changes (project_id, item_id, old_label, new_label, old_how, new_how, annotator, "
                       "session, owner, at, step, undoes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (project_id, item_id, current[0], label, current[1], how, annotator, session, owner, at,
                        step or 0, undoes))
    if step is None:
        step = cur.lastrowid
        conn.execute("UPDATE changes SET step = ? WHERE id = ?", (step, step))
    conn.execute("UPDATE items SET label = ?, how = ?, annotator = ?, updated = ? WHERE id = ?",
                 (label, how, annotator if label is not None else None, at if label is not None else None, item_id))
    return step
