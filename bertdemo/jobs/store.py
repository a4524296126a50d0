"""The job table: every long step the server runs (training, retrain, suspicious-label scoring, the active-learning
curve, batch prediction) as a row with an id, an owner, a kind, a state, and the events it recorded.

States: ``queued`` → ``running`` → ``done`` | ``stopped`` | ``failed`` | ``interrupted`` (the server stopped
while it ran, or before a queued job started). Events are appended as they happen, each with a sequence number,
so any page, the CLI or an API client can replay a job's whole history and follow it from where it left off.

One SQLite database in the workspace (``jobs.sqlite3``, WAL), a connection per call: the app's worker threads and
page handlers write and read at once, and ``python -m bertdemo jobs stop ID`` writes the stop flag from another
process. It is a file of its own rather than a table of ``labeling.sqlite3``: jobs outlive and outnumber projects,
and a long training's per-step appends should never make a labeler's answer wait for the write lock.

Not in here: running jobs (``bertdemo.jobs.runner``), what each kind does (``bertdemo.jobs.kinds``).
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bertdemo.workspace import Workspace, as_workspace

DATABASE = "jobs.sqlite3"
BUSY_TIMEOUT_MS = 15_000
STATES = ("queued", "running", "done", "stopped", "failed", "interrupted")
ACTIVE = ("queued", "running")
KEEP_DAYS = 30  # ended jobs (and their events) older than this are dropped at start-up

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    lane TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    params TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT '{}',
    reason TEXT NOT NULL DEFAULT '',
    stop_requested INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, lane, created);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""


@dataclass(frozen=True)
class JobInfo:
    id: str
    owner: str  # the logged-in user, else the browser ("browser 3fa4…"), "cli:<user>" from the command line
    kind: str  # "train", "retrain", "suspicious", "curve", "batch_predict", "pretrain", "lesson"
    lane: str  # jobs of one lane run one at a time, in order ("train": every kind that trains; "predict")
    title: str  # what the Jobs view shows: "train news_topics_en.csv on default"
    state: str  # one of STATES
    created: float  # epoch seconds
    started: float | None
    ended: float | None
    params: dict  # what it was started with (JSON-ready: names, settings; never server paths)
    result: dict  # what it produced ({"run": name}, {"file": …}); {} until it ends
    reason: str  # why it ended as it did ("stopped by kim", "the server restarted while it ran", the error)
    stop_requested: bool
    seq: int  # events recorded so far
    progress: float  # 0…1
    note: str  # a one-line progress text ("step 40/300", "fold 2 of 3")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


class JobStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    @classmethod
    def for_workspace(cls, workspace: Workspace | str | Path | None = None) -> "JobStore":
        return cls(as_workspace(workspace).root / DATABASE)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            # NORMAL in WAL mode: a commit survives a killed process (not a power cut) without an fsync per
            # event, which a GPU run appending every 10 ms would feel.
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # jobs

    def create(self, *, owner: str, kind: str, lane: str, title: str, params: dict) -> JobInfo:
        job_id = new_job_id()
        with self._write() as conn:
            conn.execute("INSERT INTO jobs (id, owner, kind, lane, title, state, created, params) "
                         "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                         (job_id, owner, kind, lane, title, time.time(), _dumps(params)))
        return self.get(job_id)

    def get(self, job_id: str) -> JobInfo:
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (str(job_id),)).fetchone()
        if row is None:
            raise ValueError(f"There is no job {str(job_id)[:40]!r} on this server; `python -m bertdemo jobs` (or the "
                             "Jobs tab) lists them.")
        return _info(row)

    def find(self, *, owner: str | None = None, kinds: Sequence[str] = (), states: Sequence[str] = (),
             lane: str | None = None, limit: int = 200) -> list[JobInfo]:
        """Jobs, newest first, filtered by owner, kinds, states and lane."""
        where, args = [], []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        for column, values in (("kind", kinds), ("state", states)):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args += list(values)
        if lane is not None:
            where.append("lane = ?")
            args.append(lane)
        sql = f"SELECT {_COLUMNS} FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        with self._connect() as conn:
            rows = conn.execute(sql + " ORDER BY created DESC, rowid DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [_info(r) for r in rows]

    def ahead(self, job: JobInfo) -> int:
        """How many jobs of its lane run or wait before ``job`` (0: it is next, or no longer waiting)."""
        if job.state != "queued":
            return 0
        with self._connect() as conn:
            running, queued = conn.execute(
                "SELECT SUM(state = 'running'), SUM(state = 'queued' AND (created < ? OR (created = ? AND id < ?))) "
                "FROM jobs WHERE lane = ? AND id != ?",
                (job.created, job.created, job.id, job.lane, job.id)).fetchone()
        return int(queued or 0) + int(running or 0)

    def set_running(self, job_id: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE jobs SET state = 'running', started = ? WHERE id = ?", (time.time(), job_id))

    def finish(self, job_id: str, state: str, *, reason: str = "", result: dict | None = None) -> None:
        assert state in STATES and state not in ACTIVE, state
        with self._write() as conn:
            conn.execute("UPDATE jobs SET state = ?, ended = ?, reason = ?, result = ? WHERE id = ?",
                         (state, time.time(), reason, _dumps(result or {}), job_id))

    def request_stop(self, job_id: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))

    def stop_requested(self, job_id: str) -> bool:
        with self._connect() as conn:
            row = conn.execute("SELECT stop_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    # events

    def append(self, job_id: str, records: Sequence[dict], *, progress: float | None = None,
               note: str | None = None) -> int:
        """Record events (in order) and the job's progress line; return the job's event count."""
        with self._write() as conn:
            (seq,) = conn.execute("SELECT seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
            now = time.time()
            conn.executemany("INSERT INTO job_events (job_id, seq, at, record) VALUES (?, ?, ?, ?)",
                             [(job_id, seq + i + 1, now, _dumps(r)) for i, r in enumerate(records)])
            seq += len(records)
            conn.execute("UPDATE jobs SET seq = ?, progress = COALESCE(?, progress), note = COALESCE(?, note) "
                         "WHERE id = ?", (seq, progress, note, job_id))
        return seq

    def events(self, job_id: str, since: int = 0) -> list[dict]:
        """The job's events after the first ``since``, oldest first; each with its "seq"."""
        with self._connect() as conn:
            rows = conn.execute("SELECT seq, record FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
                                (job_id, int(since))).fetchall()
        return [{**json.loads(record), "seq": seq} for seq, record in rows]

    def prune(self, keep_days: float = KEEP_DAYS) -> int:
        cutoff = time.time() - keep_days * 86400
        with self._write() as conn:
            return conn.execute("DELETE FROM jobs WHERE ended IS NOT NULL AND ended < ?", (cutoff,)).rowcount


_COLUMNS = ("id, owner, kind, lane, title, state, created, started, ended, params, result, reason, stop_requested, "
            "seq, progress, note")


def _info(row) -> JobInfo:
    (id_, owner, kind, lane, title, state, created, started, ended, params, result, reason, stop, seq, progress,
     note) = row
    return JobInfo(id=id_, owner=owner, kind=kind, lane=lane, title=title, state=state, created=created,
                   started=started, ended=ended, params=json.loads(params), result=json.loads(result), reason=reason,
                   stop_requested=bool(stop), seq=seq, progress=progress, note=note)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, allow_nan=True)
