"""The Train tab's pretraining panel: settings, the texts (the Data tab's file or an uploaded file of unlabeled
text), Start and Stop, the live plot of a pretraining job, and the saved pretrained models with "fine-tune from
this model". The fill-the-mask box and the masking lesson below it are ``bertdemo.ui.tabs.fill_mask``.

Like training, pretraining is a job of the server (``bertdemo.jobs.kinds.pretraining_work``): Start checks the
settings and the texts, queues the job and answers at once; the view is drawn from the job's recorded events
(``bertdemo.ui.jobs``), so a reload or a second tab shows the same job with its whole history.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.data import read_table
from bertdemo.data.tables import guess_text_column
from bertdemo.jobs.kinds import public_model, pretraining_work
from bertdemo.pretraining import OBJECTIVES, SCRATCH, SIZES, PretrainConfig
from bertdemo.pretraining.corpus import check_texts, read_texts
from bertdemo.pretraining.saved import find_pretrained, list_pretrained
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge
from bertdemo.ui.jobs import JobView, state_line
from bertdemo.ui.page import INSTANT, LOAD_QUEUE, Page, esc, teach
from bertdemo.ui.tabs.data import Loaded
from bertdemo.ui.tabs.fill_mask import FillMaskBox, MaskingLesson
from bertdemo.ui.upload import upload_file

KINDS = ("pretrain",)
FROM_DATA_TAB = "the Data tab's file"
FROM_UPLOAD = "a file of unlabeled text (below)"
PLOT_EVERY_S = 2.0  # a running job's plot is rebuilt at most this often (and at every evaluation), for all pages
SAVED_COLUMNS = ["name", "created", "model", "texts", "steps", "held-out loss", "masked-token accuracy"]
SETTINGS = ("start", "size", "layers", "hidden", "heads", "objective", "whole_word_mask", "minutes", "epochs",
            "max_steps", "batch_size", "learning_rate", "max_length", "evals", "seed")


@dataclass(frozen=True)
class UnlabeledFile:
    """An uploaded file of text, as the session keeps it: the table as read (its columns for the picker)."""
    path: str
    table: pd.DataFrame
    source: str


def typed_pretrain_settings(settings: dict) -> dict:
    """The UI's values cast to PretrainConfig's field types (sliders send 3.0 for 3; an emptied box sends None)."""
    defaults = {f.name: f.default for f in dataclasses.fields(PretrainConfig)}
    out = {}
    for name, value in settings.items():
        kind = type(defaults[name])
        if value is None or value == "":
            raise ValueError(f"Pretraining setting {name!r} is empty; enter a value (default {defaults[name]}).")
        if kind is bool:
            out[name] = bool(value)
        elif kind is int:
            if float(value) != int(float(value)):
                raise ValueError(f"Pretraining setting {name!r} must be a whole number (got {value}).")
            out[name] = int(float(value))
        else:
            out[name] = kind(value)
    return out


def saved_table(workspace) -> pd.DataFrame:
    rows = []
    for info in list_pretrained(workspace):
        held = info.get("held_out") or {}
        rows.append([info["name"], str(info.get("created", ""))[:19].replace("T", " "),
                     public_model(str(info.get("shape", ""))), info.get("texts"), info.get("steps"),
                     round(held["loss"], 3) if held.get("loss") is not None else None,
                     f"{held['accuracy']:.1%}" if held.get("accuracy") is not None else ""])
    return pd.DataFrame(rows, columns=SAVED_COLUMNS)


def progress_line(job, events: list[dict], ahead: int) -> str:
    """The progress bar and line of a pretraining job (numbers only; notes escaped)."""
    steps = [e for e in events if e["event"] == "StepEvent"]
    evals = [e for e in events if e["event"] == "EvalEvent"]
    last = steps[-1] if steps else {}
    pct = 100.0 * (job.progress or 0.0)
    if job.active:
        line = state_line(job, ahead)
        if evals and job.state == "running":
            line += f" · last evaluation: {evals[-1].get('note', '')}"
    elif job.state == "done":
        line = f"done: saved as {job.result.get('model')} — fine-tune from it below, or ask it to fill a mask"
    elif job.state == "stopped" and job.result.get("model"):
        line = f"stopped: the best weights so far are saved as {job.result['model']}"
    else:
        line = f"{job.state}: {job.reason}" if job.reason else job.state
    eta = int(last.get("eta_s", 0)) if job.active else 0
    return (f'<div class="bd-progress"><div class="bd-bar" style="width:{pct:.1f}%"></div></div>'
            f'<div class="bd-progress-text">step {last.get("step", 0)} · {pct:.0f}% · ETA {eta // 60}:{eta % 60:02d}'
            f' · {esc(line)}</div>')


class PretrainPanel:
    def __init__(self, page: Page, train):
        self.page, self.train = page, train  # train: the Train tab, whose Model box "fine-tune from" fills
        self._figures: dict[str, tuple] = {}  # job id -> (built at, seq, evaluations, figure)
        self._figures_lock = threading.Lock()
        d = {f.name: f.default for f in dataclasses.fields(PretrainConfig)}
        with gr.Accordion("First pretrain on these texts (or another file of unlabeled text)", open=False,
                          elem_id="pretrain"):
            with gr.Row():
                with gr.Column(scale=3):
                    self._settings_layout(d)
                    self._texts_layout()
                    with gr.Row():
                        self.start_btn = gr.Button("Start pretraining", variant="primary", elem_id="start-pretrain")
                        self.stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-pretrain")
                    self.progress = gr.HTML(elem_id="pretrain-progress")
                    with gr.Row():
                        self.note = gr.Markdown(elem_id="pretrain-job")
                        self.job_id = gr.Textbox(label="Job id", interactive=False, max_lines=1, scale=0,
                                                 min_width=160, elem_id="pretrain-job-id")
                    self.plot = gr.Plot(label="Masked-LM loss and accuracy", elem_id="pretrain-plot")
                    self._saved_layout()
                    self.fill = FillMaskBox(page, self)
                    self.lesson = MaskingLesson(page)
                teach(teaching.PRETRAIN)
        page.watch.add(JobView("pretrain", KINDS, outputs=self.view_outputs, draw=self.draw))
        page.page_loads.append(([self.saved, self.saved_list, self.start], self.refresh_saved))

    def _settings_layout(self, d: dict) -> None:
        with gr.Row():
            self.start = gr.Dropdown(label="Start from", choices=[SCRATCH, "default"], value=d["start"],
                                     allow_custom_value=True, elem_id="pretrain-start",
                                     info='"scratch": a new BERT with a vocabulary learned from the texts. '
                                          '"default": go on pretraining the embedded MiniLM. Or a saved '
                                          'pretrained model, a hub id or a folder.')
            self.size = gr.Radio(list(SIZES), value=d["size"], label="Size (from scratch)", elem_id="pretrain-size",
                                 info=", ".join(f"{k}: {n[0]} layers × {n[1]}" for k, n in SIZES.items()))
            self.minutes = gr.Slider(0, 30, value=d["minutes"], step=0.1, label="Minutes",
                                     elem_id="pretrain-minutes", info="The time budget: the schedule ends with it.")
        with gr.Row():
            self.objective = gr.Radio(list(OBJECTIVES), value=d["objective"], label="Objective",
                                      info="mlm+nsp adds next-sentence prediction (texts of 2+ sentences).")
            self.whole_word_mask = gr.Checkbox(value=d["whole_word_mask"], label="Whole-word masking")
        with gr.Accordion("Model shape, steps, batch size, seed", open=False):  # not "Advanced settings": the
            # fine-tuning one below is found by that name (tests/test_browser.py, docs/screenshots.py)
            with gr.Row():
                self.layers = gr.Number(value=d["layers"], precision=0, label="Layers (0: the size's)")
                self.hidden = gr.Number(value=d["hidden"], precision=0, label="Hidden (0: the size's)")
                self.heads = gr.Number(value=d["heads"], precision=0, label="Heads (0: the size's)")
            with gr.Row():
                self.epochs = gr.Number(value=d["epochs"], precision=0, label="At most this many epochs")
                self.max_steps = gr.Number(value=d["max_steps"], precision=0, label="At most this many steps (0: no limit)")
                self.evals = gr.Number(value=d["evals"], precision=0, label="Evaluations over the run")
            with gr.Row():
                self.batch_size = gr.Number(value=d["batch_size"], precision=0, label="Batch size")
                self.learning_rate = gr.Number(value=d["learning_rate"], label="Learning rate (0: automatic)")
                self.max_length = gr.Number(value=d["max_length"], precision=0, label="Max length")
                self.seed = gr.Number(value=d["seed"], precision=0, label="Seed")

    def _texts_layout(self) -> None:
        with gr.Row():
            self.text_source = gr.Radio([FROM_DATA_TAB, FROM_UPLOAD], value=FROM_DATA_TAB, label="Texts",
                                        elem_id="pretrain-source", info="Labels, if the file has any, are ignored.")
            self.upload = upload_file(label="A file of unlabeled text (CSV/TSV, any column names)",
                                      file_types=[".csv", ".tsv", ".txt"], type="filepath", elem_id="pretrain-upload")
            self.text_col = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True,
                                        elem_id="pretrain-text-col")
        self.texts_note = gr.Markdown(elem_id="pretrain-texts")
        self.unlabeled = gr.State(None)

    def _saved_layout(self) -> None:
        with gr.Row():
            self.saved = gr.Dropdown(label="Saved pretrained models (newest first)", choices=[], scale=3,
                                     allow_custom_value=True,  # API clients name one; find_pretrained guards it
                                     elem_id="pretrained-saved")
            self.finetune_btn = gr.Button("Fine-tune from this model", scale=1, elem_id="finetune-from")
        self.finetune_note = gr.Markdown(elem_id="finetune-note")
        with gr.Accordion("All saved pretrained models", open=False):
            self.saved_list = gr.Dataframe(headers=SAVED_COLUMNS, interactive=False, wrap=True,
                                           elem_id="pretrained-list")

    @property
    def settings(self) -> dict:
        return {name: getattr(self, name) for name in SETTINGS}

    @property
    def view_outputs(self) -> list:
        return [self.progress, self.plot, self.note, self.job_id, self.saved, self.saved_list, self.start,
                self.fill.ask]

    def wire(self) -> None:
        self.upload.upload(self.on_upload, [self.upload], [self.unlabeled, self.text_col, self.texts_note,
                                                          self.text_source], api_name="pretrain_upload", **LOAD_QUEUE)
        self.text_col.input(self.on_column, [self.unlabeled, self.text_col], [self.texts_note],
                            api_visibility="private", **LOAD_QUEUE)
        self.start_btn.click(self.on_start, [self.page.data_state, self.unlabeled, self.text_source, self.text_col],
                             [self.progress, self.job_id, self.note], inputs_kwargs=self.settings,
                             api_name="start_pretraining", show_progress="hidden", **INSTANT
                             ).success(**self.page.watch.follow())
        self.stop_btn.click(self.on_stop, None, [self.note], api_name="stop_pretraining", **INSTANT)
        self.finetune_btn.click(self.on_finetune, [self.saved], [self.train.model, self.finetune_note],
                                api_name="finetune_from_pretrained", **INSTANT)
        self.fill.wire()
        self.lesson.wire()

    # texts

    @at_edge
    def on_upload(self, path: str | None) -> dict:
        if not path:
            raise ValueError("Choose a file of text to upload (CSV or TSV; one text per row).")
        table = read_table(path)
        try:
            column = guess_text_column(table)
        except ValueError:
            column = str(table.columns[0])  # the picker shows every column; the note says what this one holds
        file = UnlabeledFile(path=str(path), table=table, source=Path(path).name)
        return {self.unlabeled: file, self.text_col: gr.Dropdown(choices=[str(c) for c in table.columns],
                                                                value=str(column)),
                self.texts_note: self._texts_line(file, str(column)), self.text_source: FROM_UPLOAD}

    @at_edge
    def on_column(self, file: UnlabeledFile | None, column: str | None) -> str:
        return self._texts_line(file, column) if file is not None else ""

    @staticmethod
    def _texts_line(file: UnlabeledFile, column: str) -> str:
        texts = read_texts(file.table, column)
        return (f"**{esc(file.source)}**: {len(texts):,} different texts in column **{esc(column)}**"
                + (f" — {esc(texts[0][:120])}…" if texts else ""))

    def texts(self, loaded, file: UnlabeledFile | None, source: str, column: str | None) -> tuple[list[str], str]:
        """(texts, source name) that Start pretrains on; a ValueError says how to give some."""
        if source == FROM_UPLOAD:
            if file is None:
                raise ValueError("Upload a file of text first (the box under Texts), or choose the Data tab's file.")
            texts, name = read_texts(file.table, column or ""), file.source
        else:
            if not isinstance(loaded, Loaded):
                raise ValueError("No file is loaded on the Data tab (a Retrain's labels do not count): load one "
                                 "there, or upload a file of unlabeled text here and choose it under Texts.")
            texts, name = read_texts(loaded.table, loaded.text_col), loaded.source
        check_texts(texts)
        return texts, name

    # the job

    def start_model(self, start: str) -> str:
        """What "Start from" names: scratch, default, a saved pretrained model (by name), or a model the Train tab
        may use (a hub id, a folder of the app's)."""
        start = (start or "").strip() or SCRATCH
        if start in (SCRATCH, "default"):
            return start
        if any(info["name"] == start for info in list_pretrained(self.page.workspace)):
            return str(find_pretrained(start, self.page.workspace))
        self.page.check_model(start)
        return start

    @at_edge
    def on_start(self, loaded, file, source, column, request: gr.Request, **settings) -> dict:
        """Queue a pretraining job; every refusal (settings, limits, too few texts) comes here, before a job."""
        values = typed_pretrain_settings(settings)
        values["start"] = self.start_model(values["start"])
        config = PretrainConfig(**values)
        self.page.limits.check_pretraining(config)
        texts, name = self.texts(loaded, file, source, column)
        owner = self.page.user(request)
        start = public_model(config.start)
        job = self.page.runner.submit("pretrain", owner, pretraining_work(config, owner=owner, texts=texts,
                                                                          source=name),
                                      title=f"pretrain {name} ({start if start != SCRATCH else config.size})",
                                      params={"source": name, "texts": len(texts),
                                              "config": {**config.to_dict(), "start": start}})
        line = state_line(job, self.page.runner.ahead(job))
        return {self.progress: f'<div class="bd-progress-text">{esc(line)}</div>', self.job_id: job.id,
                self.note: ""}

    @at_edge
    def on_stop(self, request: gr.Request) -> str:
        job = self.page.watch.stop_newest(request, KINDS)
        if job is None:
            return "No pretraining job of yours is running."
        if job.state == "stopped":
            return "Stopped before it started: nothing was pretrained."
        return "Stopping after the current step; the best weights so far will be saved…"

    def draw(self, job, events: list[dict], ahead: int, request, page_memo: dict) -> dict:
        """The panel's view of a pretraining job, from its recorded events."""
        update = {self.progress: progress_line(job, events, ahead), self.job_id: job.id,
                  self.note: f"Job `{job.id}` · {esc(job.title)} · {job.state}", **self.figure(job, events, page_memo)}
        # the fill box asks the running job while it runs, and the model it saved once it ends (once per job and
        # state, so a choice the user makes afterwards stands)
        asked = [job.id, job.active]
        if page_memo.get("asked") != asked:
            page_memo["asked"] = asked
            update[self.fill.ask] = self.fill.LIVE if job.active else self.fill.SAVED
            if not job.active:
                update.update(self.refresh_saved(job.result.get("model")))
        return update

    def figure(self, job, events: list[dict], page_memo: dict) -> dict:
        """The job's plot, rebuilt at most every ``PLOT_EVERY_S`` (and at each evaluation) for every page, and
        sent to a page only when it does not have that build yet."""
        evals = [e for e in events if e["event"] == "EvalEvent"]
        with self._figures_lock:
            hit = self._figures.get(job.id)
            fresh = hit and (hit[1] == job.seq or job.active and hit[2] == len(evals)
                             and time.monotonic() - hit[0] < PLOT_EVERY_S)
            if not fresh:
                steps = [e for e in events if e["event"] == "StepEvent"]
                hit = (time.monotonic(), job.seq, len(evals), plots.pretraining_figure(steps, evals))
                if job.id not in self._figures and len(self._figures) >= 8:
                    self._figures.pop(next(iter(self._figures)))
                self._figures[job.id] = hit
        if page_memo.get("figure") == [job.id, hit[0]]:
            return {}
        page_memo["figure"] = [job.id, hit[0]]
        return {self.plot: hit[3]}

    # saved models

    def refresh_saved(self, newest: str | None = None) -> dict:
        """The saved models' dropdown (``newest`` chosen, else the newest), their table, and "Start from"."""
        names = [info["name"] for info in list_pretrained(self.page.workspace)]
        value = newest if newest in names else (names[0] if names else None)
        return {self.saved: gr.Dropdown(choices=names, value=value), self.saved_list: saved_table(self.page.workspace),
                self.start: gr.Dropdown(choices=[SCRATCH, "default", *names])}

    @at_edge
    def on_finetune(self, name: str | None) -> dict:
        """Put the saved model into the Train tab's Model box (shown by its name; the value is its folder)."""
        if not name:
            raise ValueError("No pretrained model is saved yet: start a pretraining above and let it finish (or "
                             "stop it after its first evaluation).")
        path = str(find_pretrained(name, self.page.workspace))
        return {self.train.model: gr.Dropdown(choices=["default", "scratch", (f"pretrained: {name}", path)], value=path),
                self.finetune_note: f"The Model box below now holds **{esc(name)}**: choose the settings and press "
                                    "**Start training** to fine-tune it on the Data tab's labeled file."}
