"""The Models tab: the saved runs of the workspace — load one into the app, download it as a zip, delete it (with
a confirmation step). Every run named by a request goes through the workspace's path guard."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from bertdemo.inference.predict import forget_predictor
from bertdemo.runs import delete_run, list_runs, load_run_info, run_in, zip_run
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge
from bertdemo.ui.page import Page, RunListener, RunView, esc, header_markdown, teach

RUN_COLUMNS = ["name", "created", "base model", "data", "accuracy", "macro-F1", "status", "owner"]
RUN_WIDTHS = ["23%", "13%", "10%", "15%", "10%", "10%", "11%", "8%"]  # of the table's box: every column in sight at
# 1,280 px and a header word never broken (gradio's own widths follow the cells and overflow the box)


def runs_table(runs) -> pd.DataFrame:
    rows = [[r.name, r.created.replace("T", " ")[:19], Path(r.base_model).name if "/" in r.base_model else r.base_model,
             # a multi-label run's "accuracy" is its subset accuracy (every label of a text right): said beside it
             r.data_source + (" · multi-label (subset accuracy)" if r.multi_label else ""), r.metrics.get("accuracy"), r.metrics.get("macro_f1"), r.status, r.owner or "—"]
            for r in runs]
    return pd.DataFrame(rows, columns=RUN_COLUMNS).round({"accuracy": 3, "macro-F1": 3})


class ModelsTab:
    def __init__(self, page: Page):
        self.page = page
        with gr.Row():
            with gr.Column(scale=3):
                self.table = gr.Dataframe(label="Saved runs (newest first)", interactive=False, wrap=True,
                                          column_widths=RUN_WIDTHS, elem_id="runs-table")
                self.pick = gr.Dropdown(label="Run", choices=[], allow_custom_value=True)
                with gr.Row():
                    self.load_btn = gr.Button("Load into the app", variant="primary")
                    self.zip_btn = gr.Button("Download as zip")
                    self.delete_btn = gr.Button("Delete…", variant="stop")
                with gr.Row(visible=False) as self.confirm_row:
                    self.confirm_text = gr.Markdown()
                    self.confirm_btn = gr.Button("Yes, delete it", variant="stop")
                    self.cancel_btn = gr.Button("Cancel")
                self.zip_file = gr.File(label="Zip", height=90)
                self.runs_json = gr.JSON(visible=False)
                self.list_btn = gr.Button(visible=False)  # API-only: the saved runs as JSON
            teach(teaching.MODELS)
        page.listeners.append(RunListener([self.table, self.pick], self.show_run))

    def wire(self) -> None:
        page = self.page
        self.list_btn.click(self.on_list_runs, None, [self.runs_json], api_name="list_runs")
        self.load_btn.click(self.on_load_run, [self.pick], [page.run_state, page.header],
                            api_name="load_run").then(**page.show_run)
        self.zip_btn.click(self.on_zip_run, [self.pick], [self.zip_file], api_name="zip_run")
        self.delete_btn.click(self.on_ask_delete, [self.pick], [self.confirm_row, self.confirm_text],
                              api_visibility="private")
        self.cancel_btn.click(lambda: gr.Row(visible=False), None, [self.confirm_row], api_visibility="private")
        self.confirm_btn.click(self.on_delete_run, [self.pick, page.run_state], [page.run_state, self.confirm_row],
                               api_name="delete_run").then(**page.show_run)

    def show_run(self, view: RunView) -> dict:
        choices = [(r.name, r.name) for r in view.runs]  # names: the server's folders stay its own
        return {self.table: runs_table(view.runs),
                self.pick: gr.Dropdown(choices=choices, value=view.info.name if view.info else None)}

    @at_edge
    def on_list_runs(self) -> list[dict]:
        """Saved runs as plain dicts (the API view of the table).

        The folder is under "run_dir", not RunInfo's "path": gradio's client would take a dict with a
        "path" key for a file to download.
        """
        return [{"run_dir": r.name, **{k: v for k, v in r.to_dict().items() if k != "path"}}
                for r in list_runs(self.page.workspace)]

    @at_edge
    def on_load_run(self, run_dir: str | None) -> dict:
        """Select a run for this session; the header says which (and is the API's answer)."""
        info = load_run_info(run_in(self.page.workspace, run_dir))
        return {self.page.run_state: info.path, self.page.header: header_markdown(info)}

    @at_edge
    def on_zip_run(self, run_dir: str | None, request: gr.Request) -> str:
        """A zip of the run for its owner (it holds the training data), or for an admin."""
        run = run_in(self.page.workspace, run_dir)
        if not self.page.may_change(load_run_info(run).owner, request):
            raise ValueError(f"{run.name} was trained by someone else: only they (or an admin) can download it, "
                             "because the zip holds their training data. You can load it and use it.")
        return str(zip_run(run, self.page.workspace.download_dir()))

    @at_edge
    def on_ask_delete(self, run_dir: str | None) -> dict:
        run = run_in(self.page.workspace, run_dir)
        return {self.confirm_row: gr.Row(visible=True),
                self.confirm_text: f"Delete **{esc(run.name)}** for good? This cannot be undone."}

    @at_edge
    def on_delete_run(self, run_dir: str | None, selected: str | None, request: gr.Request) -> dict:
        """Delete the run (its owner, or an admin); if it was the one in use, switch to the newest remaining run."""
        run = run_in(self.page.workspace, run_dir)
        if not self.page.may_change(load_run_info(run).owner, request):
            raise ValueError(f"{run.name} was trained by someone else: only they (or an admin) can delete it. "
                             "You can load it and use it.")
        delete_run(run, self.page.workspace)
        forget_predictor(run)
        gr.Info(f"Deleted {esc(run.name)}.")
        if selected and Path(selected).resolve() != run and Path(selected).exists():
            keep = selected
        else:
            remaining = list_runs(self.page.workspace)
            keep = remaining[0].path if remaining else None
        return {self.page.run_state: keep, self.confirm_row: gr.Row(visible=False)}
