"""The job runner: one queue for every long step, run by worker threads the server owns, never by a page.

``submit`` records a job (refusing it at once when its owner has ``max_jobs_per_user`` queued or running) and
hands its work to the lane's worker; the work is a generator of JSON-ready event dicts that the runner records as
they come (``bertdemo.jobs.store``) and whose return value is the job's result. A page that started it may vanish at
any moment: the job runs to its end, and any page of its owner, the CLI or an API client reads it by id.

Stop is a flag the work reads through ``JobContext.should_stop`` (once a step): pressed from any page, from the
API, or written into the table by ``python -m bertdemo jobs stop ID`` from another process (read at most once a
second). The same check ends a job at ``max_job_minutes``.

Threads, not child processes: bench/RESULTS.md ("Where jobs run") measured a job's start in a worker thread against
a warm child process and a fresh one; the thread shares the server's loaded models and tokenizers, and the engine
already frees a run's memory when it ends. What a thread cannot do is contain a crash or an out-of-memory kill of
the whole server; the restart then marks the job interrupted and keeps its best checkpoint (``recover``).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bertdemo.jobs.checkpoints import JOBS_DIR, checkpoint_space, discard, hold_server_lock, leftover_jobs, promote
from bertdemo.jobs.store import ACTIVE, JobInfo, JobStore
from bertdemo.limits import Limits
from bertdemo.workspace import Workspace, as_workspace

log = logging.getLogger(__name__)

LANES = {"train": 1, "predict": 1}  # workers per lane: one training job at a time; batch predictions beside it
FLUSH_S = 0.25  # step events are written at most this often (evaluations and the end at once)
STOP_POLL_S = 1.0  # how often a running job reads the stop flag another process may have written
QUICK = ("StepEvent", "FoldProgress")  # events written in batches


@dataclass
class JobContext:
    """What a job's work gets: its row, the workspace, and the Stop check."""
    job: JobInfo
    workspace: Workspace
    should_stop: Callable[[], bool]
    stop_reason: list = field(default_factory=list)  # why should_stop said yes (first entry)

    @property
    def checkpoints(self) -> Workspace:
        return checkpoint_space(self.workspace, self.job.id)


Work = Callable[[JobContext], Iterator[dict]]  # yields event records; returns the result dict


class JobRunner:
    def __init__(self, workspace: Workspace | str | None = None, *, lanes: dict[str, int] | None = None):
        self.workspace = as_workspace(workspace)
        self.store = JobStore.for_workspace(self.workspace)
        self.lanes = dict(lanes or LANES)
        self._cv = threading.Condition()
        self._work: dict[str, Work] = {}  # queued jobs' work, by id
        self._switches: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False
        # One server per workspace recovers and runs jobs: a second one (another app.py on the same folder) would
        # mark the first one's live jobs interrupted and move its checkpoints away.
        self._lock = hold_server_lock(self.workspace)
        if self._lock is None:
            log.warning("another bertdemo server holds %s: its jobs are left alone (not recovered here)",
                        self.workspace.root)
        self.recovered = recover(self.store, self.workspace) if self._lock is not None else []

    # asking

    def submit(self, kind: str, owner: str, work: Work, *, lane: str = "train", title: str = "",
               params: dict | None = None) -> JobInfo:
        """Queue a job; refused with a ValueError when ``owner`` has the most jobs one user may have."""
        if lane not in self.lanes:
            raise ValueError(f"Unknown job lane {lane!r}; one of {', '.join(self.lanes)}.")
        limit = Limits.current().max_jobs_per_user
        with self._cv:  # the count and the insert together: two quick Starts cannot both slip under the limit
            mine = self.store.find(owner=owner, states=ACTIVE, lane=lane)  # a batch prediction beside a training
            if len(mine) >= limit:
                raise ValueError(f"You have {len(mine)} job(s) queued or running already ({mine[0].title}); at most "
                                 f"{limit} per user at a time on this server. Wait for it to finish, or stop it "
                                 f"{Limits.current().hint('max_jobs_per_user')}.")
            job = self.store.create(owner=owner, kind=kind, lane=lane, title=title, params=params or {})
            self._work[job.id] = work
            self._switches[job.id] = threading.Event()
            self._start_workers()
            self._cv.notify_all()
        return job

    def stop(self, job_id: str, user: str, *, enforce: bool = False, admins: tuple[str, ...] = ()) -> JobInfo:
        """Ask a job to stop (a queued one ends at once); only its owner or an admin may when ``enforce``."""
        job = self.store.get(job_id)
        if enforce and job.owner != user and user not in admins:
            raise ValueError(f"Job {job.id} is someone else's: only they (or an admin) can stop it.")
        if not job.active:
            return job
        self.store.request_stop(job.id)
        with self._cv:
            switch = self._switches.get(job.id)
            if switch is not None:
                switch.set()
            if self._work.pop(job.id, None) is not None:  # still waiting: nothing to wind down
                self._switches.pop(job.id, None)
                self.store.finish(job.id, "stopped", reason=f"stopped by {user} before it started")
        return self.store.get(job.id)

    def ahead(self, job: JobInfo) -> int:
        return self.store.ahead(job)

    def wait(self, job_id: str, timeout: float = 600.0) -> JobInfo:
        """Block until the job has ended (tests, scripts); the job as it ended, or as it is at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            if not job.active or time.monotonic() > deadline:
                return job
            time.sleep(0.1)

    def close(self) -> None:
        """Let the workers end once their current job is done, and let go of the workspace (tests; the server
        just exits, and the kernel drops its lock)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # working

    def _start_workers(self) -> None:
        if self._threads:
            return
        for lane, count in self.lanes.items():
            for n in range(count):
                thread = threading.Thread(target=self._worker, args=(lane,), name=f"bertdemo-job-{lane}-{n}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pick(self, lane: str) -> tuple[JobInfo, Work] | None:
        """``_next``, surviving a database error (busy past its timeout): the worker must outlive it."""
        try:
            return self._next(lane)
        except Exception:  # noqa: BLE001 - logged; the job stays queued and is picked on the next try
            log.exception("could not pick the next job of lane %s", lane)
            return None

    def _next(self, lane: str) -> tuple[JobInfo, Work] | None:
        """The oldest queued job of ``lane`` that this process holds the work of (under the lock)."""
        for job in reversed(self.store.find(lane=lane, states=("queued",))):
            work = self._work.pop(job.id, None)
            if work is not None and job.stop_requested:  # stopped from the CLI while it waited
                self._switches.pop(job.id, None)
                self.store.finish(job.id, "stopped", reason="stopped before it started")
            elif work is not None:
                try:
                    self.store.set_running(job.id)
                except Exception:
                    self._work[job.id] = work  # still queued: tried again
                    raise
                return self.store.get(job.id), work
        return None

    def _worker(self, lane: str) -> None:
        while True:
            with self._cv:
                picked = self._pick(lane)
                while picked is None:  # new work only comes through submit(), which notifies
                    if self._closed:
                        return
                    self._cv.wait(timeout=None if not self._work else 5.0)  # retry a pick the database refused
                    picked = self._pick(lane)
            job, work = picked
            try:
                self._run(job, work)
            except Exception:  # noqa: BLE001 - the worker must outlive any job; the log has the traceback
                log.exception("job %s could not be recorded", job.id)
            finally:
                with self._cv:
                    self._switches.pop(job.id, None)

    def _run(self, job: JobInfo, work: Work) -> None:
        ctx = JobContext(job=job, workspace=self.workspace, should_stop=lambda: False)
        ctx.should_stop = self._stop_check(job, ctx.stop_reason)
        pending: list[dict] = []
        flushed = time.monotonic()
        progress, note = None, None

        def flush() -> None:
            nonlocal flushed
            if pending:
                self.store.append(job.id, pending, progress=progress, note=note)
                pending.clear()
            flushed = time.monotonic()

        state, reason, result = "failed", "the job ended unexpectedly; the details are in the server log", {}
        try:
            events = work(ctx)
            while True:
                try:
                    record = next(events)
                except StopIteration as end:
                    result = dict(end.value or {})
                    break
                pending.append(record)
                progress, note = record.get("fraction", progress), record.get("note", note)
                if record.get("event") not in QUICK or time.monotonic() - flushed >= FLUSH_S:
                    flush()
            state = result.pop("state", None) or ("stopped" if ctx.stop_reason else "done")
            reason = ctx.stop_reason[0] if state == "stopped" and ctx.stop_reason else ""
        except ValueError as err:  # the engine saying what is wrong and how to fix it
            state, reason = "failed", str(err)
        except Exception:  # noqa: BLE001 - a bug: a reference for the user, the traceback for the log
            reference = uuid.uuid4().hex[:8]
            log.exception("job %s (%s) failed (reference %s)", job.id, job.kind, reference)
            state, reason = "failed", (f"Something went wrong on the server (reference {reference}); the details "
                                       "are in the server log.")
        finally:
            try:
                flush()
            except Exception:  # noqa: BLE001 - the job must still get its end state
                log.exception("the last events of job %s could not be recorded", job.id)
            self._finish(job.id, state, reason=reason, result=result)
            discard(self.workspace, job.id)

    def _finish(self, job_id: str, state: str, **kwargs) -> None:
        """Record how a job ended, retrying a busy database for a while: a job must never stay "running"."""
        for attempt in range(10):
            try:
                self.store.finish(job_id, state, **kwargs)
                return
            except Exception:  # noqa: BLE001 - logged; tried again
                log.exception("job %s: its end could not be recorded (attempt %d)", job_id, attempt + 1)
                time.sleep(2.0)

    def _stop_check(self, job: JobInfo, why: list) -> Callable[[], bool]:
        switch = self._switches.get(job.id) or threading.Event()
        deadline = time.monotonic() + 60 * Limits.current().max_job_minutes
        polled = [time.monotonic()]

        def should_stop() -> bool:
            if not why:
                if switch.is_set():
                    why.append("stopped on request")
                elif time.monotonic() > deadline:
                    why.append(f"stopped at this server's time limit of {Limits.current().max_job_minutes:g} min per "
                               "job (best checkpoint kept)")
                elif time.monotonic() - polled[0] >= STOP_POLL_S:
                    polled[0] = time.monotonic()
                    if self.store.stop_requested(job.id):
                        why.append("stopped on request")
            return bool(why)

        return should_stop


def recover(store: JobStore, workspace: Workspace) -> list[JobInfo]:
    """At start-up: jobs the table still calls running or queued belonged to a server that is gone. Each is marked
    interrupted with the reason; a training job's best checkpoint becomes a run. Returns the jobs it changed."""
    changed, kept = [], set()
    for job in store.find(states=("running",), limit=10_000):
        last = store.events(job.id, max(0, job.seq - 50))
        ended = next((e for e in reversed(last) if e.get("event") in ("DoneEvent", "CancelledEvent")), None)
        if ended is not None and ended.get("run") and (workspace.root / ended["run"]).exists():
            # it had saved its run when the server died: that run is the result, the checkpoint is not needed
            store.finish(job.id, "done" if ended["event"] == "DoneEvent" else "stopped",
                         reason="the server stopped just after the run was saved", result={"run": ended["run"]})
            changed.append(store.get(job.id))
            continue
        steps = [e["step"] for e in last if e.get("event") == "StepEvent"]
        at_step = steps[-1] if steps else None
        where = f" at step {at_step}" if at_step else ""
        try:
            run = promote(workspace, job.id, at_step=at_step)
            kept_as = (f"its best checkpoint is kept as the run {run.name}, marked interrupted" if run else
                       "no checkpoint had been saved yet, so there is no run")
        except (OSError, ValueError):
            log.exception("the checkpoint of interrupted job %s could not be made a run", job.id)
            run, kept_as = None, f"its checkpoint could not be made a run and stays in {JOBS_DIR}/{job.id}"
            kept.add(job.id)
        store.finish(job.id, "interrupted", reason=f"the server stopped while this job ran{where} (a restart or a "
                     f"crash); {kept_as}", result={"run": run.name} if run else {})
        changed.append(store.get(job.id))
    for job in store.find(states=("queued",), limit=10_000):
        store.finish(job.id, "interrupted", reason="cancelled by a server restart before it started: start it again")
        changed.append(store.get(job.id))
    for job_id in leftover_jobs(workspace):  # ended jobs whose folder a crash left behind
        if job_id not in kept:
            discard(workspace, job_id)
    store.prune()
    if changed:
        log.info("marked %d job(s) of the previous server interrupted", len(changed))
    return changed
