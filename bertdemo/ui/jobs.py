"""How a page follows jobs it does not own the running of: one ``gr.Timer`` per page and a view per kind of job.

Each ``JobView`` names the kinds of job it shows (the Train tab: train and retrain) and how to draw one from its
recorded events. On every tick, on page load and when a tab that shows jobs opens, ``JobWatch.on_tick`` finds
the owner's newest job of each view's kinds — running, queued, or ended in the last ``JUST_FINISHED_S`` — and
redraws that view when something changed (new events, another state, another place in the queue). So a reloaded
page, a second tab and a new tab all draw the same job from its whole history and follow it live; a page that goes
away changes nothing. The timer runs only while one of the owner's jobs is queued or running.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from bertdemo.jobs import ACTIVE, JobInfo
from bertdemo.ui.edge import at_edge, ordinal

log = logging.getLogger(__name__)

POLL_S = 1.0  # the bound: a page learns of new events within a second
JUST_FINISHED_S = 30 * 60  # a job that ended this recently is still shown when a page opens
CACHED_JOBS = 8  # jobs whose events are kept in memory for the pages that follow them
TICK = dict(concurrency_limit=None, concurrency_id="jobs-tick", show_progress="hidden", api_visibility="private")


@dataclass(frozen=True)
class JobView:
    name: str
    kinds: tuple[str, ...]
    outputs: list  # the components ``draw`` fills
    draw: Callable  # (job, events, ahead, request, page_memo, *inputs) -> {component: value}; page_memo: what this
    # view keeps per page between draws (e.g. which plots the page has already), in the page's state
    inputs: tuple = ()  # components whose values ``draw`` gets after page_memo (the Label tab's session, say)


def state_line(job: JobInfo, ahead: int) -> str:
    """One line for a job's state: its place in the queue, its progress, or how it ended."""
    if job.state == "queued":
        return (f"{ordinal(ahead + 1)} in the queue: waiting for the {ahead} job(s) ahead of yours…" if ahead
                else "starting…")
    if job.state == "running":
        return ("stopping after the current step…" if job.stop_requested else job.note or "running…")
    return {"done": "done", "stopped": "stopped", "failed": "failed", "interrupted": "interrupted"}[job.state] + \
        (f": {job.reason}" if job.reason else "")


class JobWatch:
    """Made before the tabs (its timer and state live outside the Tabs container); each tab adds its views while
    it is built, so that every event that follows jobs (``follow()``, wired afterwards) has every view's
    outputs."""

    def __init__(self):
        self.page = None  # set by the page frame once the Page exists
        self.timer = gr.Timer(POLL_S, active=False)
        self.seen = gr.State({})  # view name -> what was drawn last (job id, events, state, place in line)
        self.views: list[JobView] = []
        self._wired = False
        self._events: OrderedDict[str, list[dict]] = OrderedDict()  # job id -> its events so far, for every page
        self._events_lock = threading.Lock()

    def add(self, view: JobView) -> None:
        if self._wired:
            raise RuntimeError("add job views while the tabs are built, before any event is wired")
        self.views.append(view)

    @property
    def outputs(self) -> list:
        both = [self.seen, self.timer] + [c for v in self.views for c in v.outputs]
        return list({id(c): c for c in both}.values())  # two views may fill one component (the Label tab's)

    def follow(self) -> dict:
        """Event kwargs that refresh every view now: ``.then(**watch.follow())`` after a Start."""
        self._wired = True
        return dict(fn=self._tick, inputs=[self.seen] + [c for v in self.views for c in v.inputs],
                    outputs=self.outputs, **TICK)

    def _tick(self, request: gr.Request, seen: dict | None, *values):
        return self.on_tick(seen, request, *values)  # gradio passes the request by position before a *values

    def wire(self) -> None:
        self.timer.tick(**self.follow())

    def stop_newest(self, request, kinds: tuple[str, ...]) -> JobInfo | None:
        """Stop (one of) the asker's queued or running jobs of ``kinds``, from any of their pages: the job as it
        is after the stop (a queued one has ended), or None when they have none."""
        owner = self.page.user(request)
        jobs = self.page.runner.store.find(owner=owner, kinds=kinds, states=ACTIVE, limit=1)
        return self.page.runner.stop(jobs[0].id, owner) if jobs else None

    def latest(self, owner: str, kinds: tuple[str, ...]) -> JobInfo | None:
        jobs = self.page.runner.store.find(owner=owner, kinds=kinds, limit=1)
        job = jobs[0] if jobs else None
        if job is not None and not job.active and (job.ended or 0) < time.time() - JUST_FINISHED_S:
            return None
        return job

    @at_edge
    def on_tick(self, seen: dict | None, request: gr.Request, *values) -> dict:
        """Redraw each view whose job changed; ``values`` are the views' inputs in order (missing ones: None)."""
        seen = dict(seen or {})
        values = list(values)
        owner = self.page.user(request)
        updates: dict = {}
        active = False
        for view in self.views:
            mine, values = values[:len(view.inputs)], values[len(view.inputs):]
            mine += [None] * (len(view.inputs) - len(mine))
            job = self.latest(owner, view.kinds)
            if job is None:
                continue
            active = active or job.active
            ahead = self.page.runner.ahead(job)
            mark = [job.id, job.seq, job.state, ahead, job.stop_requested]
            if seen.get(view.name) == mark:
                continue
            seen[view.name] = mark
            memo = seen.setdefault(view.name + "/memo", {})
            try:
                updates.update(view.draw(job, self.events(job), ahead, request, memo, *mine))
            except Exception:  # noqa: BLE001 - one view's failure must not stop the others or repeat each second
                log.exception("drawing job %s in the %s view failed", job.id, view.name)
        return {self.seen: seen, self.timer: gr.Timer(active=active), **updates}

    def events(self, job: JobInfo) -> list[dict]:
        """The job's events up to ``job.seq``, read from the table once for all pages (each tick reads only the
        new ones). Callers must not change the list."""
        with self._events_lock:
            known = self._events.get(job.id, [])
            if len(known) < job.seq:
                known = known + self.page.runner.store.events(job.id, len(known))
                self._events[job.id] = known
            self._events.move_to_end(job.id, last=True) if job.id in self._events else None
            while len(self._events) > CACHED_JOBS:
                self._events.popitem(last=False)
            return known[:job.seq]
