"""The Train tab: the model and settings, Start and Stop, and the live view of a training job; above them, closed
at first, the pretraining panel (``bertdemo.ui.tabs.pretrain``) and the lesson "what pretraining buys"
(``bertdemo.ui.tabs.lesson``).

Settings arrive as the fields of ``TrainConfig`` (the sliders are named after them), so the config the app trains
with is built exactly like the CLI's. Start queues a job in the server's runner and returns at once; the view is
drawn from the job's recorded events (``bertdemo.ui.jobs``), so a reload, a second tab or a new tab shows the same
run with its whole history. Stop is a flag the job reads, from any page of its owner.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import gradio as gr

from bertdemo import plots
from bertdemo.config import TrainConfig, chosen_settings
from bertdemo.jobs.kinds import public_model, training_work
from bertdemo.training.freezing import check_layer_count
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge
from bertdemo.ui.jobs import JobView, state_line
from bertdemo.ui.page import INSTANT, Page, esc, teach
from bertdemo.ui.tabs.data import ProjectSource
from bertdemo.ui.tabs.lesson import LessonPanel
from bertdemo.ui.tabs.pretrain import PretrainPanel



PLOT_EVERY_S = 2.0  # a running job's plots are rebuilt at most this often (and at every evaluation); all pages
# that follow the job share one build, so thirty tabs cost what one does


def config_defaults() -> dict:
    """TrainConfig's defaults, for the Train tab's initial values."""
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_html(step: int, total: int, *, epoch: float = 0.0, eta_s: float = 0.0, examples_per_s: float = 0.0,
                  learning_rate: float = 0.0, note: str = "") -> str:
    """A progress bar with ETA and speed (numbers only; ``note`` is escaped)."""
    pct = 100.0 * step / total if total else 0.0
    return (f'<div class="bd-progress"><div class="bd-bar" style="width:{pct:.1f}%"></div></div>'
            f'<div class="bd-progress-text">step {step}/{total} · epoch {epoch:.2f} · {pct:.0f}% · '
            f'ETA {_fmt_duration(eta_s)} · {examples_per_s:.1f} examples/s · lr {learning_rate:.2e}'
            f'{" · " + esc(note) if note else ""}</div>')


def typed_settings(settings: dict) -> dict:
    """Sliders and number boxes send floats (3.0 epochs); cast each value to its TrainConfig field's type."""
    defaults = config_defaults()
    out = {}
    for name, value in settings.items():
        kind = type(defaults[name])
        if value is None or value == "":
            raise ValueError(f"Training setting {name!r} is empty; enter a value (default {defaults[name]}).")
        if kind is int and float(value) != int(float(value)):
            raise ValueError(f"Training setting {name!r} must be a whole number (got {value}).")
        out[name] = int(float(value)) if kind is int else kind(value)
    return out


class TrainTab:
    def __init__(self, page: Page):
        self.page = page
        self._figures: dict[str, tuple] = {}  # job id -> (built at, seq, evaluations, figures)
        self._figures_lock = threading.Lock()
        d = config_defaults()
        self.pretrain = PretrainPanel(page, self)  # closed at first: fine-tuning the default model is the main path
        self.lesson = LessonPanel(page)
        with gr.Row():
            with gr.Column(scale=3):
                self._settings_layout(d)
                with gr.Row():
                    self.start_btn = gr.Button("Start training", variant="primary", elem_id="start-train")
                    self.stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-train")
                self.progress = gr.HTML(elem_id="train-progress")
                with gr.Row():
                    self.stop_note = gr.Markdown(elem_id="train-job")
                    self.job_id = gr.Textbox(label="Job id (for the API and the Jobs tab)", interactive=False,
                                             max_lines=1, elem_id="train-job-id", scale=0, min_width=160)
                with gr.Row():
                    self.loss_plot = gr.Plot(label="Loss", elem_id="loss-plot")
                    self.scores_plot = gr.Plot(label="Validation scores", elem_id="scores-plot")
                self.lr_plot = gr.Plot(label="Learning rate")
                with gr.Accordion("Last training event (raw)", open=False):
                    self.last_event = gr.JSON(label="event")
            teach(teaching.TRAIN)
        page.watch.add(JobView("train", ("train", "retrain"), outputs=self.view_outputs, draw=self.draw))

    def _settings_layout(self, d: dict) -> None:
        with gr.Row():
            self.model = gr.Dropdown(
                label="Model", choices=["default", "scratch"], value=d["model"], allow_custom_value=True,
                info='"default": the embedded MiniLM (pre-trained, offline). "scratch": a tiny BERT learned from '
                     'zero. Or type a Hugging Face id / a local folder.')
            self.epochs = gr.Slider(1, 20, value=d["epochs"], step=1, label="Epochs", elem_id="epochs",
                                    info="Passes over the training rows.")
            self.batch_size = gr.Slider(4, 128, value=d["batch_size"], step=4, label="Batch size", elem_id="batch-size",
                                        info="Examples per update step.")
        with gr.Row():
            self.learning_rate = gr.Number(value=d["learning_rate"], label="Learning rate",
                                           info="Size of each update; 1e-4 suits MiniLM, 2e-5 BERT-base.")
            self.max_length = gr.Slider(16, 512, value=d["max_length"], step=8, label="Max length",
                                        elem_id="max-length", info="Word-pieces per text; longer texts are cut.")
            self.max_train_rows = gr.Number(value=d["max_train_rows"], precision=0, label="Max training rows",
                                            info="0 = all; fewer = faster.", elem_id="max-rows")
        with gr.Accordion("Advanced settings", open=False):
            with gr.Row():
                self.warmup_ratio = gr.Slider(0, 0.5, value=d["warmup_ratio"], step=0.01, label="Warm-up share")
                self.weight_decay = gr.Number(value=d["weight_decay"], label="Weight decay")
                self.seed = gr.Number(value=d["seed"], precision=0, label="Seed")
            with gr.Row():
                self.validation_split = gr.Slider(0.05, 0.5, value=d["validation_split"], step=0.05,
                                                  label="Validation share")
                self.evals_per_epoch = gr.Slider(1, 10, value=d["evals_per_epoch"], step=1,
                                                 label="Evaluations per epoch")
                self.patience = gr.Slider(0, 10, value=d["patience"], step=1, label="Early-stopping patience (0 = off)")
            with gr.Row():
                self.min_steps = gr.Number(value=d["min_steps"], precision=0, label="At least this many steps",
                                           info="Small data sets: epochs are raised until training takes this many "
                                                "steps (0 = off).")
                self.class_weights = gr.Radio(["none", "auto", "balanced"], value=d["class_weights"],
                                              label="Class weights",
                                              info="auto: weight the loss by class for a small data set whose classes are 3:1 apart.")
            with gr.Row():
                self.dropout = gr.Slider(0, 0.5, value=d["dropout"], step=0.05, label="Dropout",
                                         info="0 = off: faster, and the same accuracy on our benchmarks; 0.1 is "
                                              "what BERT was pretrained with.")
                self.freeze = gr.Checkbox(value=d["freeze_word_embeddings"],
                                          label="Freeze the word embeddings (faster; untick for the last bit of "
                                                "accuracy)")
                self.freeze_layers = gr.Number(value=d["freeze_layers"], precision=0, minimum=0,
                                               label="Freeze the lowest layers",
                                               info="These encoder layers stay as pretrained: faster steps. Left "
                                                    "at 2, at most a third of the model's layers; 0 trains all.")

    @property
    def settings(self) -> dict:
        """The setting components by TrainConfig field name."""
        names = ("model", "epochs", "batch_size", "learning_rate", "max_length", "max_train_rows", "warmup_ratio",
                 "weight_decay", "seed", "validation_split", "evals_per_epoch", "patience", "dropout", "min_steps",
                 "class_weights")
        return {**{name: getattr(self, name) for name in names}, "freeze_word_embeddings": self.freeze,
                "freeze_layers": self.freeze_layers}

    def wire(self) -> None:
        page = self.page
        self.start_btn.click(**self.start_event(api_name="start_training")).success(**page.watch.follow())
        self.stop_btn.click(self.on_stop, None, [self.stop_note], api_name="stop", **INSTANT)
        page.parts_tab("train").select(**page.watch.follow())  # a job started elsewhere (another tab, the API)
        self.pretrain.wire()
        self.lesson.wire()

    @property
    def view_outputs(self) -> list:
        return [self.progress, self.loss_plot, self.scores_plot, self.lr_plot, self.last_event, self.stop_note,
                self.job_id, self.page.run_state]

    def start_event(self, api_name: str | None = None) -> dict:
        """Event kwargs of Start (and of Retrain on the Label tab): checks the settings, then queues a job and
        answers at once with its id; the page follows it from there (``bertdemo.ui.jobs``). API clients call
        ``/start_training`` and then ``/job_status`` with the id."""
        visibility = dict(api_name=api_name) if api_name else dict(api_visibility="private")
        return dict(fn=self.on_start, inputs=[self.page.data_state], inputs_kwargs=self.settings,
                    outputs=[self.progress, self.job_id, self.stop_note], show_progress="hidden", **INSTANT,
                    **visibility)

    @at_edge
    def on_start(self, loaded, request: gr.Request, **settings) -> dict:
        """Queue a training job of this data with these settings; everything that can be refused is refused
        here, before a job exists."""
        if not loaded:
            raise ValueError("Load a data file first (Data tab), then start training.")
        values = typed_settings(settings)
        config = TrainConfig(**values, given=chosen_settings(values))
        self.page.limits.check_training(config)
        self.page.check_model(config.model)
        if "freeze_layers" in config.given:
            check_layer_count(config.model, config.freeze_layers)
        owner = self.page.user(request)
        project = isinstance(loaded, ProjectSource)
        if project:
            work = training_work(config, owner=owner, store_path=loaded.store_path, project=loaded.project,
                                 from_run=loaded.from_run)
        else:
            work = training_work(config, owner=owner, table=loaded.table, text_col=loaded.text_col,
                                 label_col=loaded.label_col, labels=loaded.choice)
        model = "its last run" if project and loaded.from_run else config.model
        job = self.page.runner.submit(
            "retrain" if project else "train", owner, work, title=f"{'retrain' if project else 'train'} "
            f"{loaded.source} on {Path(model).name if '/' in model else model}",
            params={"source": loaded.source, "project": loaded.project if project else None,
                    "config": {**config.to_dict(), "model": public_model(config.model)},
                    **({} if project else {"labels": loaded.choice.to_dict(), "multi_label": loaded.multi_label})})
        ahead = self.page.runner.ahead(job)
        return {self.progress: progress_html(0, 0, note=state_line(job, ahead)), self.job_id: job.id,
                self.stop_note: ""}

    def draw(self, job, events: list[dict], ahead: int, request, page_memo: dict) -> dict:
        """The Train tab's view of a training job, from its recorded events."""
        steps = [e for e in events if e["event"] == "StepEvent"]
        evals = [e for e in events if e["event"] == "EvalEvent"]
        start = next((e for e in events if e["event"] == "StartEvent"), None)
        last = steps[-1] if steps else {}
        total = start["total_steps"] if start else 0
        if job.active:
            note = state_line(job, ahead)
            if start and job.state == "running":
                note = (f"training {start['train_rows']} rows on {start['device']} ({start['precision']})"
                        + "".join(f" · {n}" for n in start.get("notes", ())))
                if evals:
                    note += " · " + final_note_record(evals[-1], multi_label=bool(job.params.get("multi_label")))
                if job.stop_requested:
                    note += " · stopping after the current step…"
        else:
            note = ended_note(job, events[-1] if events else {})
        update = {self.progress: progress_html(last.get("step", 0), total, epoch=last.get("epoch", 0.0),
                                               eta_s=last.get("eta_s", 0.0) if job.active else 0.0,
                                               examples_per_s=last.get("examples_per_s", 0.0),
                                               learning_rate=last.get("learning_rate", 0.0), note=note),
                  **self.figures(job, steps, evals, page_memo), self.last_event: events[-1] if events else {},
                  self.stop_note: f"Job `{job.id}` · {esc(job.title)} · {job.state}", self.job_id: job.id}
        run = job.result.get("run")
        if not job.active and run and (self.page.workspace.root / run).exists():
            update[self.page.run_state] = str(self.page.workspace.root / run)
        return update

    def figures(self, job, steps: list[dict], evals: list[dict], page_memo: dict) -> dict:
        """The three plots of a job, rebuilt only when it is worth it (plotly's figure building is ~0.2 s for a
        long run, and holds the GIL that the training thread needs), and sent to a page only when it does not
        have them yet (``page_memo``: which build it has)."""
        with self._figures_lock:
            hit = self._figures.get(job.id)
            fresh = hit and (hit[1] == job.seq or job.active and hit[2] == len(evals)
                             and time.monotonic() - hit[0] < PLOT_EVERY_S)
            if fresh:
                if page_memo.get("figures") == [job.id, hit[0]]:
                    return {}
                page_memo["figures"] = [job.id, hit[0]]
                return hit[3]
            built = {self.loss_plot: plots.loss_figure(steps, evals), self.scores_plot: plots.eval_metrics_figure(evals),
                     self.lr_plot: plots.learning_rate_figure(steps)}
            if job.id not in self._figures and len(self._figures) >= 8:
                self._figures.pop(next(iter(self._figures)))  # the oldest job's
            self._figures[job.id] = (time.monotonic(), job.seq, len(evals), built)
            page_memo["figures"] = [job.id, self._figures[job.id][0]]
            return built

    @at_edge
    def on_stop(self, request: gr.Request) -> str:
        """Stop the newest queued or running training job of whoever asks, from any of their pages."""
        job = self.page.watch.stop_newest(request, ("train", "retrain"))
        if job is None:
            return "No training job of yours is running."
        if job.state == "stopped":
            return "Stopped before it started: nothing was trained."
        return "Stopping after the current step; the best checkpoint so far will be kept…"


def final_note_record(record: dict, *, multi_label: bool = False) -> str:
    """The last evaluation in words; a multi-label run's accuracy is the subset accuracy (every label right)."""
    return (f"validation {'subset accuracy' if multi_label else 'accuracy'} {record['accuracy']:.1%}, "
            f"macro-F1 {record['macro_f1']:.3f}")


def ended_note(job, last: dict) -> str:
    """What the progress line says once a training job has ended (``last``: its last event)."""
    run = job.result.get("run")
    if job.state == "done":
        return (f"done in {last.get('train_seconds', 0):.0f} s" + (" (early stopping)" if last.get("stopped_early")
                else "") + " — the run is saved and loaded" + multilabel_note(last.get("metrics") or {}))
    if job.state == "stopped":
        if "time limit" in job.reason:
            return job.reason
        return "stopped — best checkpoint saved and loaded" if run else "stopped before the first evaluation: nothing to save"
    return f"{job.state}: {job.reason}"


def multilabel_note(metrics: dict) -> str:
    """A multi-label run's summary: micro-F1 and the per-label thresholds tuned on validation ("" otherwise)."""
    if not metrics.get("multi_label"):
        return ""
    thresholds = ", ".join(f"{label} {t:.2f}" for label, t in (metrics.get("thresholds") or {}).items())
    return (f" · micro-F1 {metrics.get('micro_f1', 0.0):.3f}, macro-F1 {metrics.get('macro_f1', 0.0):.3f}"
            f" · thresholds tuned on validation: {esc(thresholds)}")
