"""The labeling database's schema, as a list of migrations: version N is ``MIGRATIONS[:N]`` applied in order.

``PRAGMA user_version`` holds the version a database is at; ``migrate`` brings it to the latest in one
transaction per step, so a database killed mid-migration is still at the version before. Never edit a migration
that has shipped: add the next one.
"""
from __future__ import annotations

import sqlite3

MIGRATIONS = [
    # 1: projects, their label sets, items with their current label, and every change to a label
    """
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        owner TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE labels (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        added TEXT NOT NULL,
        PRIMARY KEY (project_id, name)
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        text TEXT NOT NULL,
        label TEXT,
        how TEXT,
        annotator TEXT,
        updated TEXT,
        UNIQUE (project_id, key)
    );
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        old_label TEXT,
        new_label TEXT,
        old_how TEXT,
        new_how TEXT,
        annotator TEXT NOT NULL,
        session TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL,
        step INTEGER NOT NULL,
        undoes INTEGER
    );
    CREATE INDEX changes_by_project ON changes (project_id, id);
    CREATE INDEX changes_by_step ON changes (step);
    CREATE INDEX items_by_label ON items (project_id, label);
    """,
    # 2: a frozen validation split, soft locks on served items, and the runs trained on a project's labels
    """
    ALTER TABLE items ADD COLUMN split TEXT;
    CREATE TABLE locks (
        item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        holder TEXT NOT NULL,
        expires REAL NOT NULL
    );
    CREATE TABLE project_runs (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        run TEXT NOT NULL,
        snapshot INTEGER NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (project_id, run)
    );
    """,
    # 3: who may undo a change (the UI's user identity, the CLI's owner): undo follows a person across tabs and
    # reloads, where ``session`` (the tab that wrote it) does not. Changes written before have no owner ('').
    """
    ALTER TABLE changes ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    CREATE INDEX changes_by_owner ON changes (project_id, owner, id);
    """,
    # 4: multi-label projects: an item's label is then a label set, stored as a JSON list (bertdemo.labeling.
    # labelsets); ``label_format`` is how the imported file wrote its sets (separator or 0/1 columns), for export
    """
    ALTER TABLE projects ADD COLUMN multi_label INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE projects ADD COLUMN label_format TEXT NOT NULL DEFAULT '';
    """,
]
LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to ``LATEST``; return the version it was at. ``conn`` must be in autocommit mode."""
    start = version(conn)
    if start > LATEST:
        raise ValueError(f"The labeling database is at schema version {start}, newer than this bertdemo "
                         f"({LATEST}). Upgrade bertdemo, or use another workspace.")
    for number in range(start + 1, LATEST + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version(conn) >= number:  # another process migrated meanwhile
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start


def _statements(script: str) -> list[str]:
    # executescript() would commit on its own; splitting keeps each migration inside one transaction
    return [part.strip() for part in script.split(";") if part.strip()]
