"""The page frame: the title, the header that names the run in use, and one tab per step of the loop.

``build_app(workspace)`` returns the Blocks without launching (tests launch it on a free port); ``launch_app``
adds the theme, CSS and server settings. Each tab lives in ``bertdemo.ui.tabs``: it lays out its components, then,
once every tab exists, wires its own events. Every endpoint has an explicit ``api_name`` so ``gradio_client`` can
drive it. Long work (training, scoring, simulations, batch predictions) runs as jobs in the server's runner
(``bertdemo.jobs``), created once per app: pages start jobs and follow them (``bertdemo.ui.jobs``), and at
start-up the runner marks what a killed server left running as interrupted.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from bertdemo.limits import Limits
from bertdemo.runs import list_runs
import bertdemo.ui.teaching as teaching
from bertdemo.jobs import JobRunner
from bertdemo.ui.edge import at_edge
from bertdemo.ui.jobs import JobWatch
from bertdemo.ui.page import NO_RUN, Page
from bertdemo.ui.tabs.data import DataTab
from bertdemo.ui.tabs.evaluate import EvaluateTab
from bertdemo.ui.label_view import KEYBOARD_JS, LABEL_CSS
from bertdemo.ui.tabs.explain import ExplainTab
from bertdemo.ui.tabs.jobs import JobsTab
from bertdemo.ui.tabs.label import LabelTab
from bertdemo.ui.tabs.models import ModelsTab
from bertdemo.ui.tabs.train import TrainTab
from bertdemo.workspace import Workspace, as_workspace, prune_downloads

DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # the bundled samples
GRADIO_CACHE = (1800, 3600)  # every 30 min, gradio deletes its copies of uploads and downloads older than 1 h
TABS = (("data", "1 · Data", DataTab), ("train", "2 · Train", TrainTab), ("evaluate", "3 · Evaluate", EvaluateTab),
        ("explain", "4 · Predict & Explain", ExplainTab), ("label", "5 · Label", LabelTab),
        ("models", "6 · Models", ModelsTab), ("jobs", "7 · Jobs", JobsTab))

CSS = """
.bd-progress {height: 18px; background: #e5e7eb; border-radius: 9px; overflow: hidden;}
.bd-bar {height: 100%; background: linear-gradient(90deg, #2563eb, #60a5fa); transition: width .4s;}
.bd-progress-text {font-size: 0.95em; margin-top: 4px; font-variant-numeric: tabular-nums;}
.bd-teach {background: #f8fafc; border-left: 4px solid #93c5fd; padding: 0 10px; font-size: 0.95em;}
.bd-teach pre, .bd-teach pre code {white-space: pre-wrap; overflow-wrap: anywhere;}
.bd-item {font-size: 1.45em; line-height: 1.6; padding: 14px 18px; border: 1px solid #e5e7eb; border-radius: 8px;
          min-height: 5em; background: #fff; white-space: pre-wrap;}
.bd-item-note {color: #6b7280; font-size: 0.85em; margin-top: 4px;}
.bd-hidden {display: none !important;}
"""

log = logging.getLogger(__name__)


def build_app(workspace: Workspace | str | Path | None = None, *, data_dir: str | Path = DATA_DIR,
              enforce_ownership: bool = False, admins: tuple[str, ...] = (), model_dirs=(),
              runner: JobRunner | None = None) -> gr.Blocks:
    """The whole app, per-session state included; nothing is loaded or trained until someone uses it.

    ``enforce_ownership`` (a shared server: ``app.py`` sets it under --auth or off loopback) lets only a run's or a
    project's owner, or one of ``admins``, delete it, download its data or stop its job. ``model_dirs``: folders
    besides the workspace that the Model field may load local models from."""
    workspace = as_workspace(workspace)
    swept = workspace.sweep()  # what a crash or kill -9 left behind, before anyone lists the runs
    if swept:
        log.info("swept %d leftover folders from %s: %s", len(swept), workspace.root, ", ".join(swept))
    prune_downloads()
    runner = runner or JobRunner(workspace)
    with gr.Blocks(title="bertdemo — fine-tune and explain a small BERT", delete_cache=GRADIO_CACHE) as demo:
        gr.Markdown(teaching.INTRO)
        header = gr.Markdown(NO_RUN, elem_id="run-header")
        data_state, run_state = gr.State(None), gr.State(None)  # this session's data and run (outside the Tabs:
        # a Tabs container holds only Tab children)
        browser = gr.BrowserState(None, storage_key="bertdemo-browser")
        watch = JobWatch()
        with gr.Tabs() as tabs:
            page = Page(workspace=workspace, data_dir=Path(data_dir), runner=runner, data_state=data_state,
                        run_state=run_state, header=header, tabs=tabs, enforce_ownership=enforce_ownership,
                        admins=tuple(admins), model_dirs=tuple(Path(d) for d in model_dirs), browser=browser,
                        watch=watch)
            watch.page = page
            for key, title, tab in TABS:
                with gr.Tab(title, id=key) as page.tab_blocks[key]:
                    page.parts[key] = tab(page)
        for part in page.parts.values():
            part.wire()
        page.watch.wire()
        run_state.change(**page.show_run)  # a job that ended with a run, a load on the Models tab…
        outputs = [page.browser, page.run_state] + [c for outs, _ in page.page_loads for c in outs]
        demo.load(_on_app_start(page), [page.browser], outputs, api_visibility="private").then(
            **page.show_run).then(**page.watch.follow())
        demo.unload(_on_app_end(page))
    demo.bertdemo_page = page  # for tests that act as a page would (a reload is on_tick with nothing seen)
    return demo


def _on_app_start(page: Page):
    @at_edge
    def on_app_start(browser: str | None, request: gr.Request) -> dict:
        """Per page load: which browser this is (its jobs and runs are found again after a reload), the newest
        run (if any), and what each tab refreshes (samples, projects). The jobs view follows in ``.then``."""
        runs = list_runs(page.workspace)
        updates = {page.browser: page.identify(request, browser), page.run_state: runs[0].path if runs else None}
        for _, fn in page.page_loads:
            updates.update(fn())
        return updates
    return on_app_start


def _on_app_end(page: Page):
    def on_app_end(request: gr.Request) -> None:
        """A browser tab closed or reloaded: each tab lets go of what it held for it. Its jobs run on: they are
        the server's, and the owner's next page finds them."""
        for fn in page.unloads + [page.forget]:
            try:
                fn(request)
            except Exception:  # noqa: BLE001 - a cleanup must not stop the others; the log says why
                log.exception("cleanup after a closed tab failed")
    return on_app_end


def launch_app(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
               auth: list[tuple[str, str]] | tuple[str, str] | None = None, **kwargs):
    """Queue and launch with the house theme; returns what ``Blocks.launch`` returns."""
    demo.queue(default_concurrency_limit=4)
    kwargs.setdefault("max_file_size", int(Limits.current().max_file_mb * 2**20))  # refused as it arrives
    return demo.launch(server_name=host, server_port=port, share=share, auth=auth, theme=gr.themes.Soft(),
                       css=CSS + LABEL_CSS, js=KEYBOARD_JS, footer_links=["api"], **kwargs)
