"""The UI edge: one wrapper that turns engine errors into clean messages, and per-session Stop switches.

A ``ValueError`` is the engine saying what is wrong and how to fix it: the user sees its message (HTML-escaped:
gradio renders error text as HTML, and messages quote file names, columns and labels from user files). Anything
else is a bug: the user sees a plain message with a reference, and the exception with its traceback goes to the
server log only (exception texts carry paths and internals).

Queueing itself is gradio's job: the training event has ``concurrency_limit=1`` under one ``concurrency_id``,
so a second Start (another tab, another user) waits in the queue instead of colliding. What gradio cannot do is
stop a running generator *gracefully*: ``cancels=[...]`` abandons it mid-step and the best checkpoint is never
saved. So Stop sets a ``threading.Event`` that ``train(..., should_stop=...)`` polls once per step; the engine then
saves and yields ``CancelledEvent``. Jobs are keyed by gradio's per-tab ``session_hash``, record their owner
(the logged-in user) so that nobody else can stop them, and live in a ``Jobs`` object owned by the app.
"""
from __future__ import annotations

import errno
import functools
import html
import inspect
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

import gradio as gr

log = logging.getLogger(__name__)


def user_error(err: Exception, where: str) -> gr.Error:
    """The ``gr.Error`` a user sees for ``err`` raised in the handler ``where``."""
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, ValueError):
        return gr.Error(html.escape(str(err), quote=False), print_exception=False)
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        log.error("disk full in %s: %s", where, err)
        return gr.Error("The server's disk is full, so this could not be saved (nothing half-saved was kept). Tell "
                        "whoever runs this app; try again once there is space.", print_exception=False)
    reference = uuid.uuid4().hex[:8]
    log.exception("unexpected error in %s (reference %s)", where, reference)
    return gr.Error(f"Something went wrong on the server (reference {reference}). Try again; if it keeps happening, "
                    "tell whoever runs this app: the details are in the server log.", print_exception=False)


def at_edge(fn):
    """Run a handler with ``user_error`` for whatever it raises. Works for plain functions and for generators
    (streaming handlers)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise user_error(err, fn.__qualname__) from err
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise user_error(err, fn.__qualname__) from err
    return wrapper


@dataclass
class Job:
    session: str  # the browser tab (gradio's session_hash) that started it
    owner: str  # who: the logged-in user, else the tab
    kind: str  # "train", "curve": one of each per tab
    switch: threading.Event = field(default_factory=threading.Event)  # Stop
    queued: float = field(default_factory=time.monotonic)
    started: float | None = None


class Jobs:
    """The long jobs (training, simulations) of every tab: their Stop switches, who owns them, their order in the
    queue, and the per-user limit. Thread-safe; owned by the app (no module-level state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], Job] = {}

    def enqueue(self, session: str, owner: str, kind: str, *, limit: int) -> tuple[Job, int]:
        """A fresh job for this tab, refused when ``owner`` has ``limit`` jobs already; returns it and how many
        jobs are ahead of it."""
        with self._lock:
            key = (session, kind)
            mine = [j for k, j in self._jobs.items() if j.owner == owner and k != key]
            if len(mine) >= limit:
                raise ValueError(f"You have {len(mine)} job(s) queued or running already; at most {limit} per user "
                                 "at a time on this server. Wait for it to finish, or stop it.")
            job = self._jobs[key] = Job(session=session, owner=owner, kind=kind)
            ahead = sum(1 for j in self._jobs.values() if j is not job and j.queued <= job.queued)
            return job, ahead

    def current(self, session: str, kind: str, owner: str, *, limit: int) -> Job:
        """The job this tab queued (Stop may be pressed already), or a new one for a call that skipped the queue
        step (the HTTP API)."""
        with self._lock:
            job = self._jobs.get((session, kind))
        return job if job is not None else self.enqueue(session, owner, kind, limit=limit)[0]

    def start(self, job: Job) -> None:
        job.started = time.monotonic()

    def finish(self, job: Job) -> None:
        with self._lock:
            if self._jobs.get((job.session, job.kind)) is job:
                del self._jobs[(job.session, job.kind)]

    def stop(self, session: str, kind: str, user: str, *, enforce: bool) -> bool:
        """Press the Stop switch of this tab's job; False if it has none, or (``enforce``) it is not ``user``'s."""
        with self._lock:
            job = self._jobs.get((session, kind))
        if job is None or (enforce and job.owner != user):
            return False
        job.switch.set()
        return True

    def drop_session(self, session: str) -> None:
        """A tab closed: its queued jobs go, its running ones stop (the engine saves the best checkpoint)."""
        with self._lock:
            gone = [k for k in self._jobs if k[0] == session]
            jobs = [self._jobs.pop(k) for k in gone]
        for job in jobs:
            job.switch.set()

    def waiting(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.started is None)


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
