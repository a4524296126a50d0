"""The Jobs tab: your jobs (an admin's: everyone's) with their state, progress, times and result; Stop by id; and
the API endpoints a ``gradio_client`` script uses to follow a job it started (``/job_status``, ``/stop_job``,
``/list_jobs``)."""
from __future__ import annotations

import time
from datetime import datetime

import gradio as gr
import pandas as pd

from bertdemo.jobs import JobInfo
from bertdemo.ui.edge import at_edge
from bertdemo.ui.jobs import state_line
from bertdemo.ui.page import INSTANT, Page

JOB_COLUMNS = ["id", "kind", "what", "state", "progress", "queued", "started", "ended", "result", "owner"]
JOB_WIDTHS = ["9%", "6%", "17%", "9%", "9%", "9%", "9%", "9%", "15%", "8%"]  # of the table's box: every column in
# sight at 1,280 px, no header word broken (gradio's own widths follow the cells and overflow the box)
EVENTS_PER_CALL = 5000  # /job_status returns at most this many events; ask again with since= for the rest


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


def job_row(job: JobInfo, ahead: int) -> list:
    result = job.result.get("run") or job.result.get("name") or job.result.get("model") or ""  # model: pretraining
    progress = f"{job.progress:.0%}" + (f" · {state_line(job, ahead)}" if job.active else "")
    return [job.id, job.kind, job.title, job.state + (f" ({job.reason})" if job.reason else ""), progress,
            _when(job.created), _when(job.started), _when(job.ended), result, job.owner]


def job_status(job: JobInfo, ahead: int, events: list[dict]) -> dict:
    """What ``/job_status`` returns: the job (no server paths) and its events after ``since``."""
    info = job.to_dict()
    info["result"] = {k: v for k, v in job.result.items() if k != "file"}
    return {**info, "ahead": ahead, "line": state_line(job, ahead), "events": events}


class JobsTab:
    def __init__(self, page: Page):
        self.page = page
        gr.Markdown("Long work — training, pretraining, retraining, suspicious-label scoring, the active-learning simulation, "
                    "the pretraining lesson, "
                    "batch predictions — runs as a **job** on the server: it goes on when you reload or close the "
                    "page, and any page of yours (or the API, with the job id) follows it and can stop it.")
        self.table = gr.Dataframe(label="Your jobs (newest first)", interactive=False, wrap=True, elem_id="jobs-table",
                                  column_widths=JOB_WIDTHS)
        with gr.Row():
            self.refresh_btn = gr.Button("Refresh", scale=0, elem_id="jobs-refresh")
            self.job_id = gr.Textbox(label="Job id", max_lines=1, scale=2, elem_id="jobs-id")
            self.since = gr.Number(value=0, precision=0, label="Events after number", scale=1)
            self.status_btn = gr.Button("Status", scale=0)
            self.stop_btn = gr.Button("Stop this job", variant="stop", scale=0, elem_id="jobs-stop")
        self.note = gr.Markdown(elem_id="jobs-note")
        with gr.Accordion("Status as JSON (what /job_status returns)", open=False):
            self.status = gr.JSON()
        self.list_json = gr.JSON(visible=False)
        self.list_btn = gr.Button(visible=False)  # API-only: the jobs as JSON

    def wire(self) -> None:
        self.refresh_btn.click(self.on_refresh, None, [self.table], api_visibility="private", **INSTANT)
        self.page.parts_tab("jobs").select(self.on_refresh, None, [self.table], api_visibility="private", **INSTANT)
        self.status_btn.click(self.on_status, [self.job_id, self.since], [self.status], api_name="job_status",
                              **INSTANT)
        self.stop_btn.click(self.on_stop, [self.job_id], [self.note], api_name="stop_job", **INSTANT).then(
            self.on_refresh, None, [self.table], api_visibility="private", **INSTANT)
        self.list_btn.click(self.on_list, None, [self.list_json], api_name="list_jobs", **INSTANT)

    def _visible(self, request) -> list[JobInfo]:
        user = self.page.user(request)
        everyone = user in self.page.admins
        return self.page.runner.store.find(owner=None if everyone else user, limit=200)

    @at_edge
    def on_refresh(self, request: gr.Request) -> pd.DataFrame:
        jobs = self._visible(request)
        return pd.DataFrame([job_row(j, self.page.runner.ahead(j)) for j in jobs],
                            columns=JOB_COLUMNS)

    @at_edge
    def on_list(self, request: gr.Request) -> list[dict]:
        return [job_status(j, self.page.runner.ahead(j), []) for j in
                self._visible(request)]

    def own(self, job_id: str, request) -> JobInfo:
        """The job ``job_id`` if it is the asker's (or the asker is an admin); else the unknown-job message."""
        job_id = (job_id or "").strip()
        if not job_id:
            raise ValueError("Enter a job id (the Jobs table and the Train tab show it).")
        unknown = ValueError(f"There is no job {job_id[:40]!r} of yours on this server; the Jobs tab lists them.")
        try:
            job = self.page.runner.store.get(job_id)
        except ValueError:
            raise unknown from None
        user = self.page.user(request)
        if job.owner != user and user not in self.page.admins:
            raise unknown  # the same answer as for an unknown id: nobody learns which ids exist
        return job

    @at_edge
    def on_status(self, job_id: str, since, request: gr.Request) -> dict:
        job = self.own(job_id, request)
        since = max(0, int(since or 0))
        events = self.page.runner.store.events(job.id, since)[:EVENTS_PER_CALL]
        return job_status(job, self.page.runner.ahead(job), events)

    @at_edge
    def on_stop(self, job_id: str, request: gr.Request) -> str:
        job = self.own(job_id, request)
        if not job.active:
            return f"Job `{job.id}` has already ended ({job.state})."
        job = self.page.runner.stop(job.id, self.page.user(request))
        if job.state == "stopped":
            return f"Job `{job.id}` was still waiting: it is cancelled."
        return f"Stopping job `{job.id}` after its current step (a training keeps its best checkpoint)…"
