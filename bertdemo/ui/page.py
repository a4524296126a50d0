"""What every tab shares: the app-wide objects (workspace, the job runner), who is asking, the per-session states,
the run view that several tabs show, and small formatting helpers.

Tabs are built in two phases (``bertdemo.ui.app``): each tab's ``build`` lays out its components, then each tab's
``wire`` connects its events, when every other tab's components exist. A tab that shows something about the
selected run adds a ``RunListener``; ``Page.show_run`` refreshes all of them at once.
"""
from __future__ import annotations

import functools
import hashlib
import html
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from bertdemo.runs import RunInfo, list_runs, load_run_info, read_json
from bertdemo.limits import Limits
from bertdemo.jobs import JobRunner
from bertdemo.ui.edge import at_edge
from bertdemo.workspace import Workspace, within

PREDICT_QUEUE = dict(concurrency_limit=4, concurrency_id="predict")  # cheap forward passes, several at once
# Starting to label ranks a queue with the model (seconds); it never waits behind a job: jobs run in the runner.
LABEL_QUEUE = dict(concurrency_limit=2, concurrency_id="label")
LOAD_QUEUE = dict(concurrency_limit=2, concurrency_id="load")  # files read at once: each holds a file in memory
# Quick steps that may refuse (Start's place in line, a label answer) still go through the queue, without a
# limit: gradio 6's page shows no error toast for an unqueued event (the server's 500 reply is dropped).
INSTANT = dict(concurrency_limit=None, concurrency_id="instant")
NO_RUN = "**No model loaded yet.** Train one on the *Train* tab, or load a saved run on *Models*."


def esc(value) -> str:
    """HTML-escape a value that came from a user (file contents, names) before it goes into Markdown or HTML."""
    return html.escape(str(value))


def teach(text: str, *, scale: int = 1) -> None:
    """The "How it works" side panel of a tab."""
    with gr.Column(scale=scale, min_width=260, elem_classes="bd-teach"):
        with gr.Accordion("How it works", open=True):
            gr.Markdown(text)


@dataclass(frozen=True)
class RunView:
    """The selected run as the tabs show it: its info and metrics, and every saved run for the lists."""
    info: RunInfo | None  # None: no run selected (or it was deleted)
    metrics: dict
    runs: list[RunInfo]


@dataclass(frozen=True)
class RunListener:
    outputs: list  # the components ``update`` fills
    update: Callable[[RunView], dict]  # RunView -> {component: value}


@dataclass
class Page:
    workspace: Workspace
    data_dir: Path
    runner: JobRunner
    data_state: gr.State  # this session's loaded table and columns (bertdemo.ui.tabs.data.Loaded)
    run_state: gr.State  # the folder of the run this session uses
    header: gr.Markdown
    tabs: gr.Tabs
    listeners: list[RunListener] = field(default_factory=list)
    page_loads: list[tuple[list, Callable[[], dict]]] = field(default_factory=list)  # (outputs, fn): each page load
    unloads: list[Callable] = field(default_factory=list)  # fn(request): when a browser tab closes or reloads
    enforce_ownership: bool = False  # only owners (and admins) delete runs and projects, stop jobs, download zips
    admins: tuple[str, ...] = ()  # users who may delete anything
    model_dirs: tuple[Path, ...] = ()  # folders besides the workspace the Model field may load from
    browser: gr.BrowserState | None = None  # a random key this browser keeps (localStorage) across reloads
    watch: object = None  # bertdemo.ui.jobs.JobWatch: how pages follow jobs
    _browsers: dict = field(default_factory=dict)  # session_hash -> "browser …", for the tabs of this process
    _browsers_lock: threading.Lock = field(default_factory=threading.Lock)

    def user(self, request) -> str:
        """Who is asking: the logged-in user under --auth, else this browser (the same after a reload and in a
        second tab, once the page has said which browser it is), else this tab (API clients)."""
        name = getattr(request, "username", None) if request is not None else None
        if name:
            return str(name)
        session = getattr(request, "session_hash", None) if request is not None else None
        with self._browsers_lock:
            known = self._browsers.get(session)
        # A tab's session id travels with each of its requests: shown to others (the Models table's owners) it
        # could be replayed to act as that tab, so the name is a hash of it, like a browser's.
        return known or "tab " + hashlib.sha256(str(session or "api").encode()).hexdigest()[:12]

    def identify(self, request, key: str | None) -> str:
        """Remember which browser this tab belongs to (``key`` from its localStorage; a new one if it has none);
        returns the key to store. The owner name is a hash of the key: names are shown to others (an admin's Jobs
        view), the key itself never is, so nobody can claim another browser's jobs and runs."""
        key = key if isinstance(key, str) and 16 <= len(key) <= 64 and key.isalnum() else uuid.uuid4().hex
        session = getattr(request, "session_hash", None) if request is not None else None
        if session:
            with self._browsers_lock:
                self._browsers[session] = "browser " + hashlib.sha256(key.encode()).hexdigest()[:12]
        return key

    def forget(self, request) -> None:
        session = getattr(request, "session_hash", None) if request is not None else None
        with self._browsers_lock:
            self._browsers.pop(session, None)

    def may_change(self, owner: str, request) -> bool:
        """May this request delete (or download the data of) something ``owner`` made?"""
        user = self.user(request)
        return not self.enforce_ownership or user == owner or user in self.admins

    def check_model(self, name: str) -> None:
        """The Model field names the embedded default, scratch, a hub id, or a folder of the workspace (or of
        ``model_dirs``): never another folder of the server's."""
        name = (name or "").strip()
        if name in ("", "default", "scratch") or not any(c in name for c in "/\\~") and not name.startswith("."):
            return
        if not within(name, (self.workspace.root, *self.model_dirs)):
            raise ValueError(f"No model at {name[:120]} that this app may use: choose default, scratch, a Hugging "
                             "Face id, or one of this app's saved runs (Models tab).")

    @property
    def limits(self) -> Limits:
        return Limits.current()
    parts: dict = field(default_factory=dict)  # tab name -> the tab object, for cross-tab wiring
    tab_blocks: dict = field(default_factory=dict)  # tab name -> its gr.Tab (for .select)

    def parts_tab(self, key: str):
        return self.tab_blocks[key]

    def run_view(self, run_dir: str | None) -> RunView:
        runs = list_runs(self.workspace)
        if not run_dir or not Path(run_dir).exists():
            return RunView(info=None, metrics={}, runs=runs)
        return RunView(info=load_run_info(run_dir), metrics=read_json(run_dir, "metrics.json") or {}, runs=runs)

    @functools.cached_property
    def show_run(self) -> dict:
        """Event kwargs that refresh everything depending on the selected run: ``.then(**page.show_run)``. Read
        only in the wiring phase, once every tab has added its listener."""
        outputs = [self.header] + [c for listener in self.listeners for c in listener.outputs]

        @at_edge
        def on_show_run(run_dir: str | None) -> dict:
            view = self.run_view(run_dir)
            updates = {self.header: header_markdown(view.info)}
            for listener in self.listeners:
                updates.update(listener.update(view))
            return updates

        return dict(fn=on_show_run, inputs=[self.run_state], outputs=outputs, api_visibility="private")


def header_markdown(info: RunInfo | None) -> str:
    if info is None:
        return NO_RUN
    base = Path(info.base_model).name if "/" in info.base_model else info.base_model  # no server paths
    return (f"Model in use: **{esc(info.name)}** — base `{esc(base)}`, data `{esc(info.data_source)}`, "
            f"labels: {esc(', '.join(info.labels))}"
            + (" (stopped early by the user: best checkpoint kept)" if info.status == "stopped" else ""))
