"""The Train tab's lesson panel, "what pretraining buys" (``bertdemo.lesson``): the Data tab's labeled file is
pretrained on, then a random twin of that model, the pretrained model and the embedded default are fine-tuned the
same way at a few label counts, and test accuracy is drawn against labels, one line per starting point. It trains
many models, so it is a job in the runner's training lane, drawn from its recorded points; Stop ends it after the
current fine-tune (or ends its pretraining)."""
from __future__ import annotations

import dataclasses

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.data import clean_rows
from bertdemo.jobs.kinds import lesson_work
from bertdemo.labeling.simulate import hold_out, labeled_rows
from bertdemo.lesson import LessonConfig, LessonPoint, lesson_table, parse_counts
from bertdemo.pretraining import PretrainConfig
from bertdemo.ui.edge import at_edge
from bertdemo.ui.jobs import JobView, state_line
from bertdemo.ui.page import INSTANT, Page, esc
from bertdemo.ui.tabs.data import Loaded
from bertdemo.ui.upload import upload_file

KINDS = ("lesson",)
TEST_SHARE = 0.2  # without a test file, this share of the Data tab's file is held out as the test set
POINT_FIELDS = tuple(f.name for f in dataclasses.fields(LessonPoint))
INTRO = ("**What does pretraining buy?** Three starting points, each fine-tuned the same way on the same labeled "
         "rows: a BERT with **random** weights; the same BERT **pretrained here** for a few minutes on this file's "
         "texts (labels unused: masked-language modelling, as above); and the **embedded default**, pretrained on "
         "a billion sentences. Each is trained on a small random sample of labels, then a larger one, and scored "
         "on test rows. Watch where the lines part: pretraining matters most when labels are few. The default "
         "lesson takes about 13 minutes on a 2-core CPU (README).")


class LessonPanel:
    def __init__(self, page: Page):
        self.page = page
        with gr.Accordion("Lesson: what pretraining buys (random weights vs pretrained here vs pretrained)",
                          open=False, elem_id="lesson-panel"):
            gr.Markdown(INTRO)
            with gr.Row():
                self.test_file = upload_file(label=f"Test file (optional: else {TEST_SHARE:.0%} of the Data tab's "
                                                   "file)", file_types=[".csv", ".tsv", ".txt"], type="filepath")
                with gr.Column():
                    self.counts = gr.Textbox(value="100,500,2000", label='Label counts ("all" = every row)',
                                             elem_id="lesson-counts")
                    self.minutes = gr.Number(value=LessonConfig.pretrain_minutes, label="Pretraining minutes")
                    self.seeds = gr.Number(value=1, precision=0, label="Seeds (label samples)")
            with gr.Row():
                self.run_btn = gr.Button("Run the lesson on the Data tab's file", variant="primary",
                                         elem_id="lesson-run")
                self.stop_btn = gr.Button("Stop the lesson", variant="stop")
            self.status = gr.Markdown(elem_id="lesson-status")
            self.plot = gr.Plot(label="Test accuracy against labels", elem_id="lesson-plot")
            self.table = gr.Dataframe(label="Test accuracy (mean over seeds)", interactive=False)
        page.watch.add(JobView("lesson", KINDS, outputs=[self.status, self.plot, self.table], draw=self.draw))

    def wire(self) -> None:
        self.run_btn.click(self.on_run, [self.page.data_state, self.test_file, self.counts, self.minutes,
                                         self.seeds], [self.status], api_name="pretraining_lesson", **INSTANT
                           ).success(**self.page.watch.follow())
        self.stop_btn.click(self.on_stop, None, [self.status], api_name="stop_lesson", **INSTANT)

    @at_edge
    def on_stop(self, request: gr.Request) -> str:
        if self.page.watch.stop_newest(request, KINDS) is None:
            return "No lesson of yours is running."
        return "Stopping after the current step…"

    @at_edge
    def on_run(self, loaded, test_path, counts, minutes, seeds, request: gr.Request) -> str:
        """Check the data and settings, then queue the lesson as a job; the panel follows it."""
        if not isinstance(loaded, Loaded):
            raise ValueError("Load a labeled file on the Data tab first: the lesson pretrains on its texts and "
                             "fine-tunes on samples of its labels.")
        if loaded.multi_label:
            raise ValueError(f"{loaded.source} gives texts several labels; the lesson compares single-label "
                             "classifiers (one class per text). Load a file with one label per text on the Data tab, "
                             "or choose 'one label' under Labels per text there.")
        rows = clean_rows(loaded.table[loaded.text_col], loaded.table[loaded.label_col]).rows
        texts, labels = rows["text"].tolist(), rows["label"].tolist()
        if test_path:
            test_texts, test_labels = labeled_rows(test_path)
        else:
            texts, labels, test_texts, test_labels = hold_out(texts, labels, TEST_SHARE)
        try:
            minutes = float(minutes)
        except (TypeError, ValueError):
            raise ValueError("Pretraining minutes must be a number (5, say).") from None
        config = LessonConfig(labels=parse_counts(str(counts or "")), pretrain_minutes=minutes,
                              seeds=tuple(range(max(1, int(seeds or 1)))))
        self.page.limits.check_pretraining(PretrainConfig(minutes=minutes))  # one job may not run that long
        job = self.page.runner.submit(
            "lesson", self.page.user(request), lesson_work(texts, labels, test_texts, test_labels, config),
            title=f"lesson: what pretraining buys, {loaded.source} ({len(texts):,} rows)",
            params={"source": loaded.source, "labels": [n or "all" for n in config.labels],
                    "pretrain_minutes": minutes, "seeds": len(config.seeds)})
        return esc(state_line(job, self.page.runner.ahead(job)))

    def draw(self, job, events: list[dict], ahead: int, request, page_memo: dict) -> dict:
        points = [LessonPoint(**{k: e[k] for k in POINT_FIELDS}) for e in events if e["event"] == "LessonPoint"]
        table = lesson_table(points)
        notes = [e["note"] for e in events if e["event"] == "LessonProgress"]
        if job.active:
            status = esc(state_line(job, ahead)) + (f" — {esc(notes[-1])}" if notes else "")
        else:
            status = f"Lesson {esc(state_line(job, 0))} — {len(points)} fine-tunes"
        return {self.status: status, self.plot: plots.lesson_figure(table),
                self.table: _frame(table) if points else pd.DataFrame()}


def _frame(table: dict) -> pd.DataFrame:
    return pd.DataFrame({"labels": table["labels"], **table["arms"]})

