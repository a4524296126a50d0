"""The active-learning curve panel of the Label tab: simulate the labeling loop on a fully labeled file and draw
accuracy against labels, one line per strategy, as the rounds finish. It trains many small models, so it is a job
in the runner's training lane (one at a time), drawn from its recorded rounds; while it runs, the status says which
seed, strategy, round and training step it is on, and Stop ends it within a training step (the round under way is
dropped, the finished ones stay on the plot)."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.config import TrainConfig
from bertdemo.jobs.kinds import curve_work, public_model
from bertdemo.labeling.simulate import (CURVE_CONFIG, CURVE_FIELDS, CURVE_STRATEGIES, CurvePoint, check_curve,
                                        curve_table, hold_out, labeled_rows)
from bertdemo.ui.edge import at_edge
from bertdemo.ui.jobs import JobView, state_line
from bertdemo.ui.page import INSTANT, Page, esc
from bertdemo.ui.upload import upload_file

TEST_SHARE = 0.2  # without a test file, this share of the file is held out as the test set


class CurvePanel:
    def __init__(self, page: Page):
        self.page = page
        with gr.Accordion("Active-learning curve: does the queue beat random labels? (a simulation)", open=False):
            gr.Markdown("Pick a **fully labeled** file. The simulation starts from a few random labels, trains, "
                        "reveals more labels chosen by each strategy, trains again… and draws test accuracy "
                        "against the number of labels. Each point trains a model, each later round from the "
                        "round before's weights: about 5–15 minutes for the defaults on a 2-core CPU.")
            with gr.Row():
                self.train_file = upload_file(label="Labeled CSV/TSV", file_types=[".csv", ".tsv", ".txt"],
                                          type="filepath", elem_id="curve-train")
                self.test_file = upload_file(label=f"Test file (optional: else {TEST_SHARE:.0%} of the file)",
                                         file_types=[".csv", ".tsv", ".txt"], type="filepath")
            with gr.Row():
                self.strategies = gr.CheckboxGroup(list(CURVE_STRATEGIES), value=["random", "margin"],
                                                   label="Strategies")
                self.start = gr.Number(value=50, precision=0, label="Start labels")
                self.step = gr.Number(value=50, precision=0, label="Labels per round")
                self.rounds = gr.Number(value=3, precision=0, label="Rounds")
                self.seeds = gr.Number(value=1, precision=0, label="Seeds")
            with gr.Row():
                self.run_btn = gr.Button("Run the simulation", variant="primary", elem_id="curve-run")
                self.stop_btn = gr.Button("Stop the simulation", variant="stop")
            self.status = gr.Markdown()
            self.plot = gr.Plot(label="Accuracy against labels", elem_id="curve-plot")
            self.table = gr.Dataframe(label="Accuracy per strategy (mean over seeds)", interactive=False)
        page.watch.add(JobView("curve", ("curve",), outputs=[self.status, self.plot, self.table], draw=self.draw))

    def wire(self, model: gr.Dropdown) -> None:
        inputs = [self.train_file, self.test_file, self.strategies, self.start, self.step, self.rounds, self.seeds,
                  model]
        self.run_btn.click(self.on_run, inputs, [self.status], api_name="al_curve", **INSTANT).success(
            **self.page.watch.follow())
        self.stop_btn.click(self.on_stop, None, [self.status], api_visibility="private", **INSTANT)

    @at_edge
    def on_stop(self, request: gr.Request) -> str:
        if self.page.watch.stop_newest(request, ("curve",)) is None:
            return "No simulation of yours is running."
        return "Stopping: the rounds finished so far stay on the plot."

    @at_edge
    def on_run(self, train_path, test_path, strategies, start, step, rounds, seeds, model,
               request: gr.Request) -> str:
        """Check the files and settings, then queue the simulation as a job; the panel follows it."""
        if not train_path:
            raise ValueError("Choose a fully labeled CSV/TSV first.")
        if not strategies:
            raise ValueError("Tick at least one strategy.")
        self.page.check_model(model)
        texts, labels = labeled_rows(train_path)
        if test_path:
            test_texts, test_labels = labeled_rows(test_path)
        else:
            texts, labels, test_texts, test_labels = hold_out(texts, labels, TEST_SHARE)
        start, step, rounds, seeds = (int(v or 0) for v in (start, step, rounds, seeds))
        check_curve(len(texts), strategies, start=start, step=step, rounds=rounds)  # refused now, not in the job
        config = TrainConfig(model=model or "default", **CURVE_CONFIG)
        job = self.page.runner.submit(
            "curve", self.page.user(request),
            curve_work(texts, labels, test_texts, test_labels, strategies=list(strategies), start=start, step=step,
                       rounds=rounds, seeds=seeds, config=config),
            title=f"active-learning curve: {', '.join(strategies)}, {len(texts)} rows",
            params={"strategies": list(strategies), "start": start, "step": step, "rounds": rounds, "seeds": seeds,
                    "model": public_model(config.model)})
        return state_line(job, self.page.runner.ahead(job))

    def draw(self, job, events: list[dict], ahead: int, request, page_memo: dict) -> dict:
        points = [CurvePoint(**{k: e[k] for k in CURVE_FIELDS}) for e in events if e["event"] == "CurvePoint"]
        table = curve_table(points)
        if job.active:
            status = state_line(job, ahead)
        else:
            status = f"Simulation {esc(state_line(job, 0))} — {len(points)} rounds"
        return {self.status: esc(status) if job.active else status, self.plot: plots.al_curve_figure(table),
                self.table: _frame(table) if points else pd.DataFrame()}


def _frame(table: dict) -> pd.DataFrame:
    strategies = [k for k in table if k not in ("budgets", "spread", "macro_f1", "seconds_per_round")]
    return pd.DataFrame({"labels": table["budgets"], **{s: table[s] for s in strategies}})
