"""The batch panel of the Predict & Explain tab: a whole CSV/TSV through the loaded run, as a job in the runner's
prediction lane (beside training, not behind it), drawn from its progress; the file to download once it is done,
also on a page that was reloaded meanwhile."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from bertdemo.jobs.kinds import batch_predict_work
from bertdemo.runs import run_in
from bertdemo.ui.edge import at_edge
from bertdemo.ui.jobs import JobView, state_line
from bertdemo.ui.page import INSTANT, Page, esc
from bertdemo.ui.upload import upload_file

PREVIEW_ROWS = 50


class BatchPanel:
    def __init__(self, page: Page):
        self.page = page
        with gr.Accordion("Batch: predict a whole CSV", open=False):
            self.batch_file = upload_file(label="CSV/TSV with a text column", file_types=[".csv", ".tsv"],
                                          type="filepath")
            with gr.Row():
                self.batch_btn = gr.Button("Predict all rows", elem_id="batch-run")
                self.stop_btn = gr.Button("Stop", variant="stop", scale=0)
            self.status = gr.Markdown(elem_id="batch-status")
            self.batch_out = gr.File(label="Download predictions", height=90)
            self.batch_preview = gr.Dataframe(label="First rows", interactive=False, wrap=True)
            self.job_id = gr.Textbox(visible=False)  # API-only: /batch_result takes the job id
            self.result_btn = gr.Button(visible=False)
        page.watch.add(JobView("batch", ("batch_predict",), outputs=[self.status, self.batch_out,
                                                                     self.batch_preview], draw=self.draw))

    def wire(self) -> None:
        self.batch_btn.click(self.on_batch, [self.page.run_state, self.batch_file], [self.status],
                             api_name="batch_predict", **INSTANT).success(**self.page.watch.follow())
        self.stop_btn.click(self.on_stop, None, [self.status], api_visibility="private", **INSTANT)
        self.result_btn.click(self.on_result, [self.job_id], [self.batch_out, self.batch_preview],
                              api_name="batch_result", **INSTANT)

    @at_edge
    def on_batch(self, run_dir: str | None, path: str | None, request: gr.Request) -> str:
        """Queue the prediction of every row; the panel follows the job."""
        if not run_dir:
            raise ValueError("No model loaded: train one on the Train tab, or load a saved run on the Models tab.")
        if not path:
            raise ValueError("Upload a CSV/TSV with a text column first.")
        run = run_in(self.page.workspace, run_dir)
        dest = self.page.workspace.download_dir() / f"{Path(path).stem}_predictions.csv"
        job = self.page.runner.submit("batch_predict", self.page.user(request), batch_predict_work(run, path, dest),
                                      lane="predict", title=f"predict {Path(path).name} with {run.name}",
                                      params={"file": Path(path).name, "run": run.name})
        return esc(state_line(job, self.page.runner.ahead(job)))

    @at_edge
    def on_stop(self, request: gr.Request) -> str:
        if self.page.watch.stop_newest(request, ("batch_predict",)) is None:
            return "No batch prediction of yours is running."
        return "Stopping…"

    @at_edge
    def on_result(self, job_id: str, request: gr.Request) -> dict:
        """The finished job's file and its first rows (for API clients; a page gets them drawn)."""
        job = self.page.parts["jobs"].own(job_id, request)
        if job.kind != "batch_predict":
            raise ValueError(f"Job {job.id} is a {job.kind} job, not a batch prediction.")
        if job.active:
            raise ValueError(f"Job {job.id} is still {job.state}: ask again when /job_status says done.")
        drawn = self.draw(job, [], 0, request, {})
        if self.batch_out not in drawn:
            raise ValueError(drawn[self.status].replace("**", ""))
        return {self.batch_out: drawn[self.batch_out], self.batch_preview: drawn[self.batch_preview]}

    def draw(self, job, events: list[dict], ahead: int, request, page_memo: dict) -> dict:
        what = esc(job.params.get("file", "the file"))
        if job.active:
            return {self.status: f"Predicting **{what}**: {esc(state_line(job, ahead))}"}
        file = job.result.get("file")
        if job.state != "done" or not file:
            return {self.status: f"Batch prediction of **{what}** {esc(state_line(job, 0))}"}
        if not Path(file).exists():  # download files are pruned after a while
            return {self.status: f"The predictions of **{what}** are no longer on the server: predict again."}
        return {self.status: f"Predicted **{job.result.get('rows', 0)} rows** of {what} (job `{job.id}`).",
                self.batch_out: file, self.batch_preview: pd.read_csv(file, nrows=PREVIEW_ROWS, dtype=str,
                                                                      keep_default_na=False)}
