"""The Train tab: the model and settings, Start and Stop, and the live view of the events ``train`` yields.

Settings arrive as the fields of ``TrainConfig`` (the sliders are named after them), so the config the app trains
with is built exactly like the CLI's. Training runs in one queue of size 1: a second Start waits.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import gradio as gr

from bertdemo import plots
from bertdemo.config import TrainConfig
from bertdemo.data import load_data, measure_tokens
from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, StartEvent, StepEvent, event_to_dict
from bertdemo.labeling.retrain import project_data, train_project
from bertdemo.labeling.store import LabelStore
from bertdemo.models import report_tokenizer
from bertdemo.training import train
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge, ordinal
from bertdemo.ui.page import INSTANT, TRAIN_QUEUE, Page, esc, teach
from bertdemo.ui.tabs.data import ProjectSource

UPDATE_EVERY_S = 0.5  # at most two plot refreshes a second while training; evaluations always refresh


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


def final_note(event) -> str:
    if isinstance(event, DoneEvent):
        return (f"done in {event.train_seconds:.0f} s" + (" (early stopping)" if event.stopped_early else "")
                + " — the run is saved and loaded")
    if isinstance(event, CancelledEvent):
        return ("stopped — best checkpoint saved and loaded" if event.run_dir
                else "stopped before the first evaluation: nothing to save")
    if isinstance(event, EvalEvent):
        return f"validation accuracy {event.accuracy:.1%}, macro-F1 {event.macro_f1:.3f}"
    return ""


class TrainTab:
    def __init__(self, page: Page):
        self.page = page
        d = config_defaults()
        with gr.Row():
            with gr.Column(scale=3):
                self._settings_layout(d)
                with gr.Row():
                    self.start_btn = gr.Button("Start training", variant="primary", elem_id="start-train")
                    self.stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-train")
                self.progress = gr.HTML(elem_id="train-progress")
                self.stop_note = gr.Markdown()
                with gr.Row():
                    self.loss_plot = gr.Plot(label="Loss", elem_id="loss-plot")
                    self.scores_plot = gr.Plot(label="Validation scores", elem_id="scores-plot")
                self.lr_plot = gr.Plot(label="Learning rate")
                with gr.Accordion("Last training event (raw)", open=False):
                    self.last_event = gr.JSON(label="event")
            teach(teaching.TRAIN)

    def _settings_layout(self, d: dict) -> None:
        with gr.Row():
            self.model = gr.Dropdown(
                label="Model", choices=["default", "scratch"], value=d["model"], allow_custom_value=True,
                info='"default": the embedded MiniLM (pre-trained, offline). "scratch": a tiny BERT learned from '
                     'zero. Or type a Hugging Face id / a local folder.')
            self.epochs = gr.Slider(1, 20, value=d["epochs"], step=1, label="Epochs", elem_id="epochs",
                                    info="Passes over the training rows.")
            self.batch_size = gr.Slider(4, 128, value=d["batch_size"], step=4, label="Batch size",
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

    @property
    def settings(self) -> dict:
        """The setting components by TrainConfig field name."""
        names = ("model", "epochs", "batch_size", "learning_rate", "max_length", "max_train_rows", "warmup_ratio",
                 "weight_decay", "seed", "validation_split", "evals_per_epoch", "patience", "dropout", "min_steps",
                 "class_weights")
        return {**{name: getattr(self, name) for name in names}, "freeze_word_embeddings": self.freeze}

    def wire(self) -> None:
        page = self.page
        self.start_btn.click(**self.queue_event(api_name="queue_training")).success(**self.train_event()).then(
            **page.show_run)
        self.stop_btn.click(self.on_stop, None, [self.stop_note], api_name="stop", queue=False)

    def queue_event(self, api_name: str | None = None) -> dict:
        """Event kwargs of the instant step before training (Start here, Retrain on the Label tab). API clients
        call it before /train, as the page does: it takes the place in line and applies the per-user limit at
        once, where /train alone would wait in gradio's queue first."""
        visibility = dict(api_name=api_name) if api_name else dict(api_visibility="private")
        return dict(fn=self.on_queue_training, inputs=[self.page.data_state], outputs=[self.progress], **INSTANT,
                    **visibility)

    def train_event(self, api_name: str | None = "train") -> dict:
        """Event kwargs of the streaming training job; one wiring carries the API name."""
        visibility = dict(api_name=api_name) if api_name else dict(api_visibility="private")
        return dict(fn=self.on_train, inputs=[self.page.data_state], inputs_kwargs=self.settings,
                    outputs=[self.progress, self.loss_plot, self.scores_plot, self.lr_plot, self.last_event,
                             self.page.run_state], show_progress="hidden", **visibility, **TRAIN_QUEUE)

    @at_edge
    def on_queue_training(self, loaded, request: gr.Request) -> str:
        """Runs instantly (unqueued) on Start: registers this tab's job (Stop works while it waits in line) and
        says where it is in the queue; refused when the user has a job already."""
        if not loaded:
            raise ValueError("Load a data file first (Data tab), then start training.")
        _, ahead = self.page.jobs.enqueue(request.session_hash, self.page.user(request), "train",
                                          limit=self.page.limits.max_jobs_per_user)
        note = (f"{ordinal(ahead + 1)} in the queue: waiting for the {ahead} job(s) ahead of yours…" if ahead
                else "starting…")
        return progress_html(0, 0, note=note)

    @at_edge
    def on_train(self, loaded, request: gr.Request, **settings):
        """Stream training: progress, loss, scores and learning-rate plots, the last event; the run when done."""
        if not loaded:
            raise ValueError("Load a data file first (Data tab), then start training.")
        config = TrainConfig(**typed_settings(settings))
        limits = self.page.limits
        limits.check_training(config)
        self.page.check_model(config.model)
        session = request.session_hash if request is not None else "api"
        job = self.page.jobs.current(session, "train", self.page.user(request), limit=limits.max_jobs_per_user)
        self.page.jobs.start(job)
        deadline = time.monotonic() + 60 * limits.max_job_minutes
        timed_out = []

        def should_stop() -> bool:
            if time.monotonic() > deadline and not timed_out:
                timed_out.append(True)
            return job.switch.is_set() or bool(timed_out)

        try:
            events = self._events(loaded, config, should_stop, self.page.user(request))
            yield from self._stream(events, timed_out, limits.max_job_minutes)
        finally:
            self.page.jobs.finish(job)

    def _events(self, loaded, config: TrainConfig, should_stop, owner: str):
        """``train``'s events for a loaded file, or for a labeling project's current labels."""
        project = isinstance(loaded, ProjectSource)
        if project:
            store = LabelStore(loaded.store_path)
            if loaded.from_run:
                config = dataclasses.replace(config, model=loaded.from_run)
            data = project_data(store, loaded.project, config)
        else:
            data = load_data(loaded.table, config, text_col=loaded.text_col, label_col=loaded.label_col)
        tokenizer = report_tokenizer(config.model)
        if tokenizer is not None:  # the run's data report measures with the model it trains
            data = measure_tokens(data, tokenizer)
        if project:
            return train_project(store, loaded.project, config, should_stop=should_stop,
                                 workspace=self.page.workspace, data=data, owner=owner)
        return train(config, data, should_stop=should_stop, workspace=self.page.workspace, owner=owner)

    def _stream(self, events, timed_out: list, minutes: float):
        steps: list[dict] = []
        evals: list[dict] = []
        total, last_push = 0, 0.0
        for event in events:
            record = event_to_dict(event)
            if record.get("run_dir"):  # the folder's name, not where the server keeps it
                record["run_dir"] = Path(record["run_dir"]).name
            if isinstance(event, StartEvent):
                total = event.total_steps
                note = f"training {event.train_rows} rows on {event.device} ({event.precision})"
                note += "".join(f" · {n}" for n in event.notes)
                yield {self.progress: progress_html(0, total, note=note), self.loss_plot: plots.loss_figure([]),
                       self.scores_plot: plots.eval_metrics_figure([]), self.lr_plot: plots.learning_rate_figure([]),
                       self.last_event: record}
                continue
            if isinstance(event, StepEvent):
                steps.append(record)
                if time.monotonic() - last_push < UPDATE_EVERY_S and event.step < event.total_steps:
                    continue
            elif isinstance(event, EvalEvent):
                evals.append(record)
            last_push = time.monotonic()
            last = steps[-1] if steps else {}
            note = final_note(event)
            if timed_out and isinstance(event, CancelledEvent):
                note = f"stopped at this server's time limit of {minutes:g} min per job — best checkpoint kept"
            update = {self.progress: progress_html(last.get("step", 0), total, epoch=last.get("epoch", 0.0),
                                                   eta_s=last.get("eta_s", 0.0),
                                                   examples_per_s=last.get("examples_per_s", 0.0),
                                                   learning_rate=last.get("learning_rate", 0.0), note=note),
                      self.loss_plot: plots.loss_figure(steps, evals), self.scores_plot: plots.eval_metrics_figure(evals),
                      self.lr_plot: plots.learning_rate_figure(steps), self.last_event: record}
            if isinstance(event, (DoneEvent, CancelledEvent)) and event.run_dir:
                update[self.page.run_state] = event.run_dir
            yield update

    def on_stop(self, request: gr.Request) -> str:
        if self.page.jobs.stop(request.session_hash, "train", self.page.user(request),
                               enforce=self.page.enforce_ownership):
            return "Stopping after the current step; the best checkpoint so far will be kept…"
        return "No training job of yours is running."
