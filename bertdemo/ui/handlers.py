"""Handlers for the Data, Train, Evaluate and Models tabs: call the engine, shape its plain data for components.

Each ``on_*`` method maps one UI event to one engine call; the tuple it returns is in the order of the
event's ``outputs`` in ``app.py``. Per-session values (the loaded data, the selected run) arrive as
``gr.State`` inputs; the only object shared between sessions is ``Handlers`` itself, which holds the
workspace path and the Stop switches — nothing mutable at module level.
"""
from __future__ import annotations

import dataclasses
import html
import time
from functools import lru_cache
from pathlib import Path

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.config import TrainConfig
from bertdemo.data import load_data
from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, StartEvent, StepEvent, event_to_dict
from bertdemo.models import load_tokenizer
from bertdemo.runs import delete_run, list_runs, load_run_info, read_json, zip_run
from bertdemo.tables import guess_columns, read_table
from bertdemo.ui.jobs import StopSwitches, at_edge

UPDATE_EVERY_S = 0.5  # at most two plot refreshes a second while training; evaluations always refresh
DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
RUN_COLUMNS = ["name", "created", "base model", "data", "accuracy", "macro-F1", "status"]


# helpers


@lru_cache(maxsize=1)
def _report_tokenizer():
    """The default model's tokenizer, for the data report's word-piece lengths (loaded once, lazily)."""
    return load_tokenizer("default")


def _esc(value) -> str:
    return html.escape(str(value))


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def report_markdown(report) -> str:
    """The data report as Markdown; every value that came from the file is HTML-escaped."""
    stats = report.token_stats()
    lines = [
        f"**{_esc(report.source)}** — {report.rows_total} rows read, **{report.rows_kept} kept** "
        f"({report.train_rows} train / {report.validation_rows} validation, {_esc(report.validation_source)}). "
        f"Encoding {_esc(report.encoding)}, delimiter: {DELIMITERS.get(report.delimiter, _esc(report.delimiter))}.",
        f"Text column **{_esc(report.text_col)}**, label column **{_esc(report.label_col)}**, "
        f"{len(report.class_counts)} classes, imbalance {report.imbalance_ratio:.1f}:1.",
        f"Exact duplicates dropped: {report.exact_duplicates}; texts with conflicting labels: "
        f"{len(report.conflicting_duplicates)}; validation texts also in train: {report.train_validation_overlap}.",
    ]
    if stats:
        lines.append(f"Word-pieces per text: median {stats['median']:.0f}, 95 % ≤ {stats['p95']:.0f}, "
                     f"max {stats['max']}; **{stats['truncated']} longer than max_length={stats['max_length']}**.")
    lines += [f"⚠️ {_esc(w)}" for w in report.warnings]
    return "\n\n".join(lines)


def progress_html(step: int, total: int, *, epoch: float = 0.0, eta_s: float = 0.0, examples_per_s: float = 0.0,
                  learning_rate: float = 0.0, note: str = "") -> str:
    """A progress bar with ETA and speed (numbers only; ``note`` is escaped)."""
    pct = 100.0 * step / total if total else 0.0
    return (f'<div class="bd-progress"><div class="bd-bar" style="width:{pct:.1f}%"></div></div>'
            f'<div class="bd-progress-text">step {step}/{total} · epoch {epoch:.2f} · {pct:.0f}% · '
            f'ETA {_fmt_duration(eta_s)} · {examples_per_s:.1f} examples/s · lr {learning_rate:.2e}'
            f'{" · " + _esc(note) if note else ""}</div>')


def _runs_table(runs) -> pd.DataFrame:
    rows = [[r.name, r.created.replace("T", " ")[:19], r.base_model, r.data_source,
             r.metrics.get("accuracy"), r.metrics.get("macro_f1"), r.status] for r in runs]
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    return df.round({"accuracy": 3, "macro-F1": 3})


# handlers


class Handlers:
    def __init__(self, workspace: str | Path, data_dir: str | Path) -> None:
        self.workspace = Path(workspace)
        self.data_dir = Path(data_dir)
        self.switches = StopSwitches()

    def _run_in_workspace(self, run_dir: str | None) -> str:
        """Only folders inside this app's workspace may be loaded, zipped or deleted."""
        if not run_dir:
            raise ValueError("Choose a run from the list first.")
        path = Path(run_dir).resolve()
        if self.workspace.resolve() not in path.parents:
            raise ValueError(f"{Path(run_dir).name} is not a run in this app's workspace ({self.workspace}). "
                             "Pick one from the list.")
        return str(path)

    # data

    def sample_choices(self) -> list[str]:
        """The bundled sample files, looked up when a page loads (samples may be added while running)."""
        if not self.data_dir.is_dir():
            return []
        return sorted(p.name for p in self.data_dir.iterdir() if p.suffix.lower() in (".csv", ".tsv"))

    @at_edge
    def on_pick_sample(self, name: str):
        if not name:
            raise ValueError("Choose a sample file first.")
        path = self.data_dir / Path(name).name  # never a path outside data/
        if not path.is_file():
            raise ValueError(f"Sample {name!r} is not in {self.data_dir}; pick one from the list.")
        return str(path)

    @at_edge
    def on_load_data(self, path: str | None, text_col: str | None = None, label_col: str | None = None,
                     max_length: int = 128):
        """Read and check a table → preview, column choices, report, charts and the session's data."""
        if not path:
            raise ValueError("Upload a CSV/TSV file first, or pick a bundled sample and click 'Use this sample'.")
        table = read_table(path)
        text_col, label_col = guess_columns(table, text_col or None, label_col or None)
        data = load_data(path, text_col=text_col, label_col=label_col, max_length=int(max_length),
                         tokenizer=_report_tokenizer())
        report = data.report
        columns = list(table.columns)
        dropped = pd.DataFrame([{"reason": d["reason"], "rows": d["count"],
                                 "example row numbers": ", ".join(map(str, d["examples"]))} for d in report.dropped],
                               columns=["reason", "rows", "example row numbers"])
        conflicts = pd.DataFrame([{"text": c["text"], "labels": ", ".join(c["labels"])}
                                  for c in report.conflicting_duplicates], columns=["text", "labels"])
        state = {"path": str(path), "text_col": text_col, "label_col": label_col, "source": report.source,
                 "labels": list(data.labels), "rows": report.rows_kept}
        return (table.head(20), gr.Dropdown(choices=columns, value=text_col),
                gr.Dropdown(choices=columns, value=label_col), report_markdown(report),
                plots.class_counts_figure(report.class_counts),
                plots.token_length_figure(report.token_lengths, report.max_length), dropped, conflicts, state,
                f"Data ready: **{_esc(report.source)}**, {report.rows_kept} rows, {len(data.labels)} classes.")

    # training

    def on_queue_training(self, data_state: dict | None, request: gr.Request):
        """Runs instantly (unqueued) on Start: arms this session's Stop switch before the job waits in line."""
        self.switches.arm(request.session_hash)
        note = "Waiting for a free trainer (another training job may be running)…" if data_state else ""
        return progress_html(0, 0, note=note)

    @at_edge
    def on_train(self, data_state: dict | None, request: gr.Request, **settings):
        """Stream training: yields (progress, loss plot, score plot, lr plot, last event, selected run)."""
        from bertdemo.train import train  # torch/transformers load on first use, not at app start

        if not data_state:
            raise ValueError("Load a data file first (Data tab), then start training.")
        config = TrainConfig(**_typed(settings))
        data = load_data(data_state["path"], text_col=data_state["text_col"], label_col=data_state["label_col"],
                         validation_split=config.validation_split, seed=config.seed,
                         max_length=config.max_length, max_rows=config.max_train_rows,
                         tokenizer=None if config.model == "scratch" else _report_tokenizer())
        session = request.session_hash if request is not None else "api"
        switch = self.switches.get(session)
        steps: list[dict] = []
        evals: list[dict] = []
        total, last_push = 0, 0.0
        try:
            for event in train(config, data, should_stop=switch.is_set, workspace=self.workspace):
                record = event_to_dict(event)
                if isinstance(event, StartEvent):
                    total = event.total_steps
                    note = f"training {event.train_rows} rows on {event.device} ({event.precision})"
                    yield (progress_html(0, total, note=note), plots.loss_figure([]), plots.eval_metrics_figure([]),
                           plots.learning_rate_figure([]), record, gr.skip())
                    continue
                if isinstance(event, StepEvent):
                    steps.append(record)
                    if time.monotonic() - last_push < UPDATE_EVERY_S and event.step < event.total_steps:
                        continue
                elif isinstance(event, EvalEvent):
                    evals.append(record)
                last_push = time.monotonic()
                last = steps[-1] if steps else {}
                bar = progress_html(last.get("step", 0), total, epoch=last.get("epoch", 0.0),
                                    eta_s=last.get("eta_s", 0.0), examples_per_s=last.get("examples_per_s", 0.0),
                                    learning_rate=last.get("learning_rate", 0.0), note=_final_note(event))
                run = event.run_dir if isinstance(event, (DoneEvent, CancelledEvent)) and event.run_dir else gr.skip()
                yield (bar, plots.loss_figure(steps, evals), plots.eval_metrics_figure(evals),
                       plots.learning_rate_figure(steps), record, run)
        finally:
            self.switches.release(session, switch)

    def on_stop(self, request: gr.Request):
        if self.switches.press(request.session_hash):
            return "Stopping after the current step; the best checkpoint so far will be kept…"
        return "No training job of yours is running."

    # runs: evaluate, models, and the header of the predict tab

    @at_edge
    def on_app_start(self):
        """Per page load: the newest run (if any) and the current list of samples."""
        runs = list_runs(self.workspace)
        samples = self.sample_choices()
        return (runs[0].path if runs else None,
                gr.Dropdown(choices=samples, value=samples[0] if samples else None))

    @at_edge
    def on_show_run(self, run_dir: str | None):
        """Refresh everything that depends on the selected run."""
        runs = list_runs(self.workspace)
        choices = [(r.name, r.path) for r in runs]
        if not run_dir or not Path(run_dir).exists():
            empty = plots.empty_figure("Train a model (Train tab) or load a saved run (Models tab)")
            return ("**No model loaded yet.** Train one on the *Train* tab, or load a saved run on *Models*.",
                    "", pd.DataFrame(), empty, pd.DataFrame(columns=["text", "label", "predicted", "confidence"]),
                    _runs_table(runs), gr.Dropdown(choices=choices, value=None),
                    gr.Dropdown(choices=["(predicted class)"], value="(predicted class)"))
        info = load_run_info(run_dir)
        metrics = read_json(run_dir, "metrics.json") or {}
        header = (f"Model in use: **{_esc(info.name)}** — base `{_esc(info.base_model)}`, data "
                  f"`{_esc(info.data_source)}`, labels: {_esc(', '.join(info.labels))}"
                  + (" (stopped early by the user: best checkpoint kept)" if info.status == "stopped" else ""))
        summary = (f"## Accuracy {metrics.get('accuracy', 0):.1%} · macro-F1 {metrics.get('macro_f1', 0):.3f}\n"
                   f"on {metrics.get('count', info.validation_rows)} validation rows of `{_esc(info.data_source)}`.")
        per_class = pd.DataFrame([{"class": label, **{k: round(v, 3) if isinstance(v, float) else v
                                                        for k, v in m.items()}}
                                  for label, m in metrics.get("per_class", {}).items()])
        confusion = (plots.confusion_figure(metrics["confusion"], metrics.get("labels", info.labels))
                     if metrics.get("confusion") else plots.empty_figure("No confusion matrix in this run"))
        wrong = pd.DataFrame(metrics.get("misclassified", []), columns=["text", "label", "predicted", "confidence"])
        wrong["confidence"] = wrong["confidence"].astype(float).round(3)
        targets = ["(predicted class)", *info.labels]
        return (header, summary, per_class, confusion, wrong, _runs_table(runs),
                gr.Dropdown(choices=choices, value=info.path), gr.Dropdown(choices=targets, value=targets[0]))

    @at_edge
    def on_load_run(self, run_dir: str | None):
        return load_run_info(self._run_in_workspace(run_dir)).path

    @at_edge
    def on_list_runs(self) -> list[dict]:
        """Saved runs as plain dicts (the API view of the Models table).

        The folder is under "run_dir", not RunInfo's "path": gradio's client would take a dict with a
        "path" key for a file to download.
        """
        return [{"run_dir": r.path, **{k: v for k, v in r.to_dict().items() if k != "path"}}
                for r in list_runs(self.workspace)]

    @at_edge
    def on_zip_run(self, run_dir: str | None):
        return str(zip_run(self._run_in_workspace(run_dir)))

    def on_ask_delete(self, run_dir: str | None):
        if not run_dir:
            raise gr.Error("Choose a run to delete first.")
        return gr.Row(visible=True), f"Delete **{_esc(Path(run_dir).name)}** for good? This cannot be undone."

    @at_edge
    def on_delete_run(self, run_dir: str | None, selected: str | None):
        """Delete the run; if it was the one in use, switch to the newest remaining run."""
        from bertdemo.predict import forget_predictor

        run_dir = self._run_in_workspace(run_dir)
        delete_run(run_dir)
        forget_predictor(run_dir)
        gr.Info(f"Deleted {Path(run_dir).name}.")
        if selected and Path(selected).resolve() != Path(run_dir).resolve() and Path(selected).exists():
            keep = selected
        else:
            runs = list_runs(self.workspace)
            keep = runs[0].path if runs else None
        return keep, gr.Row(visible=False)

    def on_pick_misclassified(self, table: pd.DataFrame, evt: gr.SelectData):
        """Clicking a misclassified example opens it in Predict & Explain."""
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        text = str(table.iloc[int(row)]["text"])
        return text, gr.Tabs(selected="explain")


def _typed(settings: dict) -> dict:
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


def _final_note(event) -> str:
    if isinstance(event, DoneEvent):
        return (f"done in {event.train_seconds:.0f} s" + (" (early stopping)" if event.stopped_early else "")
                + " — the run is saved and loaded")
    if isinstance(event, CancelledEvent):
        return ("stopped — best checkpoint saved and loaded" if event.run_dir
                else "stopped before the first evaluation: nothing to save")
    if isinstance(event, EvalEvent):
        return f"validation accuracy {event.accuracy:.1%}, macro-F1 {event.macro_f1:.3f}"
    return ""


def config_defaults() -> dict:
    """TrainConfig's defaults, for the Train tab's initial values."""
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}
