"""The active-learning curve panel of the Label tab: simulate the labeling loop on a fully labeled file and draw
accuracy against labels, one line per strategy, as the rounds finish. It trains many small models, so it runs in
the training queue, one job at a time, and Stop ends it after the current round."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.config import TrainConfig
from bertdemo.data import clean_rows, guess_columns, read_table
from bertdemo.labeling.simulate import CURVE_CONFIG, CURVE_STRATEGIES, al_curve, curve_table
from bertdemo.ui.edge import at_edge
from bertdemo.ui.page import INSTANT, TRAIN_QUEUE, Page, esc
from bertdemo.ui.upload import upload_file

TEST_SHARE = 0.2  # without a test file, this share of the file is held out as the test set


class CurvePanel:
    def __init__(self, page: Page):
        self.page = page
        with gr.Accordion("Active-learning curve: does the queue beat random labels? (a simulation)", open=False):
            gr.Markdown("Pick a **fully labeled** file. The simulation starts from a few random labels, trains, "
                        "reveals more labels chosen by each strategy, trains again… and draws test accuracy "
                        "against the number of labels. Each point trains a model: expect minutes.")
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
                self.stop_btn = gr.Button("Stop after this round", variant="stop")
            self.status = gr.Markdown()
            self.plot = gr.Plot(label="Accuracy against labels", elem_id="curve-plot")
            self.table = gr.Dataframe(label="Accuracy per strategy (mean over seeds)", interactive=False)

    def wire(self, model: gr.Dropdown) -> None:
        inputs = [self.train_file, self.test_file, self.strategies, self.start, self.step, self.rounds, self.seeds,
                  model]
        self.run_btn.click(self.on_arm, None, None, api_visibility="private", **INSTANT).success(
            self.on_run, inputs, [self.status, self.plot, self.table], api_name="al_curve", show_progress="hidden",
            **TRAIN_QUEUE)
        self.stop_btn.click(self.on_stop, None, [self.status], queue=False, api_visibility="private")

    @at_edge
    def on_arm(self, request: gr.Request) -> None:
        self.page.jobs.enqueue(request.session_hash, self.page.user(request), "curve",
                               limit=self.page.limits.max_jobs_per_user)

    def on_stop(self, request: gr.Request) -> str:
        pressed = self.page.jobs.stop(request.session_hash, "curve", self.page.user(request),
                                      enforce=self.page.enforce_ownership)
        return "Stopping after the current round…" if pressed else "No simulation of yours is running."

    @at_edge
    def on_run(self, train_path, test_path, strategies, start, step, rounds, seeds, model, request: gr.Request):
        if not train_path:
            raise ValueError("Choose a fully labeled CSV/TSV first.")
        if not strategies:
            raise ValueError("Tick at least one strategy.")
        texts, labels = _rows(train_path)
        if test_path:
            test_texts, test_labels = _rows(test_path)
        else:
            texts, labels, test_texts, test_labels = _hold_out(texts, labels)
        self.page.check_model(model)
        session = request.session_hash if request is not None else "api"
        job = self.page.jobs.current(session, "curve", self.page.user(request),
                                     limit=self.page.limits.max_jobs_per_user)
        self.page.jobs.start(job)
        config = TrainConfig(model=model or "default", **CURVE_CONFIG)
        points = []
        yield {self.status: f"Simulating on {len(texts)} rows, testing on {len(test_texts)}…",
               self.plot: plots.al_curve_figure({}), self.table: pd.DataFrame()}
        try:
            for point in al_curve(texts, labels, test_texts, test_labels, strategies=strategies, start=int(start),
                                  step=int(step), rounds=int(rounds), seeds=range(max(1, int(seeds))),
                                  config=config, should_stop=job.switch.is_set):
                points.append(point)
                table = curve_table(points)
                yield {self.status: f"{esc(point.strategy)}, seed {point.seed}: {point.labels} labels → accuracy "
                                    f"{point.accuracy:.3f} ({point.seconds:.0f} s for this round)",
                       self.plot: plots.al_curve_figure(table), self.table: _frame(table)}
        finally:
            self.page.jobs.finish(job)


def _rows(path: str) -> tuple[list[str], list[str]]:
    table = read_table(path)
    text_col, label_col = guess_columns(table)
    rows = clean_rows(table[text_col], table[label_col]).rows
    return rows["text"].tolist(), rows["label"].tolist()


def _hold_out(texts: list[str], labels: list[str]):
    from sklearn.model_selection import train_test_split

    try:
        a, b, c, d = train_test_split(texts, labels, test_size=TEST_SHARE, random_state=0, stratify=labels)
    except ValueError:  # a class too small to stratify
        a, b, c, d = train_test_split(texts, labels, test_size=TEST_SHARE, random_state=0)
    return a, c, b, d


def _frame(table: dict) -> pd.DataFrame:
    strategies = [k for k in table if k not in ("budgets", "spread", "macro_f1", "seconds_per_round")]
    return pd.DataFrame({"labels": table["budgets"], **{s: table[s] for s in strategies}})
