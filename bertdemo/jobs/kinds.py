"""What each kind of job does: the engine's long steps as job work (``bertdemo.jobs.runner.Work``), each a
generator of JSON-ready event records whose return value is the job's result.

- ``training_work``: fine-tune on a table (the Data tab's file) or on a labeling project's current labels
  (Retrain); the best checkpoint is on disk from the first evaluation on (``bertdemo.jobs.checkpoints``).
- ``suspicious_work``: rank a project's labels by how likely they are wrong (k-fold fine-tuning).
- ``curve_work``: the active-learning simulation.
- ``batch_predict_work``: a whole file through a run, in chunks, to a spreadsheet-safe CSV.
- ``pretraining_work``: masked-LM pretraining on texts; each evaluation's weights are a snapshot in the job's
  checkpoint folder (``pretraining_snapshots``) that the fill-the-mask box reads while the job runs.
- ``lesson_work``: the lesson "what pretraining buys" (``bertdemo.lesson``).

Every record may carry ``fraction`` (0…1) and ``note``: the runner keeps them as the job's progress line.
Records hold names, never server paths (``run`` is a run folder's name).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bertdemo.config import TrainConfig
from bertdemo.data import load_data, measure_tokens
from bertdemo.data.label_choice import LabelChoice, load_as_chosen
from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, StartEvent, StepEvent, event_to_dict
from bertdemo.jobs.runner import JobContext, Work
from bertdemo.labeling.history import last_change
from bertdemo.labeling.ranking import rank_queue
from bertdemo.labeling.retrain import project_data, train_project
from bertdemo.labeling.store import LabelStore
from bertdemo.labeling.simulate import RoundProgress, al_curve, curve_table
from bertdemo.labeling.suspicious import FoldProgress
from bertdemo.lesson import LessonConfig, LessonPoint, LessonProgress, LessonResult, lesson
from bertdemo.models import report_tokenizer
from bertdemo.pretraining import PretrainConfig, pretrain
from bertdemo.pretraining.loop import latest_snapshot
from bertdemo.training import train
from bertdemo.workspace import Workspace

SNAPSHOTS_DIR = "snapshots"  # in a pretraining job's checkpoint folder: the weights of its newest evaluation
PREDICT_CHUNK = 512  # rows per predict_proba call in a batch prediction: progress and Stop between chunks


def training_work(config: TrainConfig, *, owner: str, table: pd.DataFrame | None = None, text_col: str = "",
                  label_col: str = "", store_path: str | Path | None = None, project: str | None = None,
                  from_run: str | Path | None = None, labels: LabelChoice | None = None) -> Work:
    """Train on ``table`` (its ``text_col``/``label_col``, read as ``labels`` says its labels are written: one
    per text, or label sets in cells or 0/1 columns), or a labeling round on ``project``'s labels from the store at
    ``store_path`` (continuing ``from_run``, the project's last run, when given and it can be continued:
    ``labeling.rounds``)."""
    def work(ctx: JobContext) -> Iterator[dict]:
        store = LabelStore(store_path) if project else None
        yield {"event": "Preparing", "note": "reading and tokenizing the data", "fraction": 0.0}
        if project:
            data = project_data(store, project, config)
        elif labels is not None:
            data = load_as_chosen(table, config, labels, text_col=text_col or None, label_col=label_col or None)
        else:
            data = load_data(table, config, text_col=text_col, label_col=label_col)
        tokenizer = report_tokenizer(config.model)
        if tokenizer is not None:  # the run's data report measures with the model it trains
            data = measure_tokens(data, tokenizer)
        if project:
            events = train_project(store, project, config, previous=from_run, warm=from_run is not None,
                                   should_stop=ctx.should_stop, workspace=ctx.workspace, data=data, owner=owner,
                                   checkpoints=ctx.checkpoints)
        else:
            events = train(config, data, should_stop=ctx.should_stop, workspace=ctx.workspace, owner=owner,
                           checkpoints=ctx.checkpoints)
        return (yield from training_records(events))
    return work


def training_records(events) -> Iterator[dict]:
    """``train``'s events as records with a progress line; returns {"run", "state", "metrics"}."""
    result: dict = {}
    total = 0
    for event in events:
        record = event_to_dict(event)
        if record.get("run_dir"):
            record["run"] = Path(record.pop("run_dir")).name
        if isinstance(event, StartEvent):
            total = event.total_steps
            record["model"] = public_model(event.model)
            record["note"] = f"training {event.train_rows} rows on {event.device} ({event.precision})"
        elif isinstance(event, StepEvent):
            record["fraction"], record["note"] = event.step / max(1, total), f"step {event.step}/{total}"
        elif isinstance(event, EvalEvent):
            record["note"] = f"step {event.step}/{total}: validation accuracy {event.accuracy:.1%}"
        elif isinstance(event, DoneEvent):
            record["fraction"], record["note"] = 1.0, "done"
            headline = ("accuracy", "macro_f1", "loss") + (
                ("multi_label", "micro_f1", "thresholds") if event.metrics.get("multi_label") else ())
            result = {"run": record.get("run"), "state": "done",
                      "metrics": {k: event.metrics.get(k) for k in headline}}
            record["metrics"] = result["metrics"]  # the run's metrics.json has them all; the job keeps the headline
        elif isinstance(event, CancelledEvent):
            record["note"] = "stopped: best checkpoint kept" if event.run_dir else "stopped before any evaluation"
            result = {"run": record.get("run"), "state": "stopped"}
        yield record
    return result


def public_model(model: str) -> str:
    """What a record may say of the model: a hub id or "default" as given, a folder by its name only (job events
    reach API clients, who must not learn the server's folders)."""
    return Path(model).name if "/" in model and Path(model).is_absolute() or "\\" in model else model


def suspicious_work(store_path: str | Path, project: str, *, run: str | Path | None = None) -> Work:
    """Rank ``project``'s labels, likeliest wrong first. The queue is the last event ("Ranked", with its
    ``entries``: events are read one job at a time, while results are listed for every job); the result says how
    many items and which label snapshot it was computed on."""
    def work(ctx: JobContext) -> Iterator[dict]:
        store = LabelStore(store_path)
        snapshot = last_change(store, project)
        entries = None
        for event in rank_queue(store, project, "suspicious", run=run, should_stop=ctx.should_stop):
            if isinstance(event, FoldProgress):
                yield {"event": "FoldProgress", **dataclasses.asdict(event), "fraction": event.fraction,
                       "note": event.line()}
            else:
                entries = event
        if entries is None:
            return {"state": "stopped"}
        yield {"event": "Ranked", "items": len(entries), "fraction": 1.0, "note": f"{len(entries)} items ranked",
               "entries": [dataclasses.asdict(e) for e in entries]}
        return {"project": project, "snapshot": snapshot, "items": len(entries)}
    return work


def curve_work(texts: Sequence[str], labels: Sequence[str], test_texts: Sequence[str], test_labels: Sequence[str],
               *, strategies: Sequence[str], start: int, step: int, rounds: int, seeds: int,
               config: TrainConfig) -> Work:
    """The active-learning simulation: ``RoundProgress`` records while it works (which seed, strategy, round and
    step), one ``CurvePoint`` record per round, the table as the result."""
    total = len(strategies) * (rounds + 1) * max(1, seeds)

    def work(ctx: JobContext) -> Iterator[dict]:
        points = []
        yield {"event": "CurveStart", "train_rows": len(texts), "test_rows": len(test_texts), "fraction": 0.0,
               "note": f"simulating on {len(texts)} rows, testing on {len(test_texts)}"}
        for event in al_curve(texts, labels, test_texts, test_labels, strategies=strategies, start=start, step=step,
                              rounds=rounds, seeds=range(max(1, seeds)), config=config,
                              should_stop=ctx.should_stop):
            if isinstance(event, RoundProgress):
                yield {"event": "RoundProgress", **dataclasses.asdict(event), "fraction": event.fraction,
                       "note": event.line()}
                continue
            points.append(event)
            yield {"event": "CurvePoint", **dataclasses.asdict(event), "fraction": len(points) / total,
                   "note": f"{event.strategy}, seed {event.seed}: {event.labels} labels → accuracy "
                           f"{event.accuracy:.3f}"}
        return {"table": curve_table(points), "state": "stopped" if ctx.stop_reason else "done"}
    return work


def batch_predict_work(run_dir: str | Path, path: str | Path, dest: str | Path) -> Work:
    """Every row of the file at ``path`` through ``run_dir``'s model, written to ``dest`` (a CSV)."""
    def work(ctx: JobContext) -> Iterator[dict]:
        from bertdemo.data.tables import guess_text_column, read_table
        from bertdemo.inference.batch_predict import prediction_columns, save_predictions
        from bertdemo.inference.predict import get_predictor

        predictor = get_predictor(run_dir)
        table = read_table(path)
        texts = table[guess_text_column(table)].fillna("").astype(str).tolist()
        parts = []
        for start in range(0, len(texts), PREDICT_CHUNK):
            if ctx.should_stop():
                return {"state": "stopped"}
            parts.append(predictor.predict_proba(texts[start:start + PREDICT_CHUNK]))
            done = min(len(texts), start + PREDICT_CHUNK)
            yield {"event": "Predicted", "rows": done, "total": len(texts), "fraction": done / max(1, len(texts)),
                   "note": f"{done}/{len(texts)} rows"}
        probs = np.concatenate(parts) if parts else np.zeros((0, len(predictor.labels)), dtype=np.float32)
        thresholds = predictor.thresholds if predictor.multi_label else None  # multi-label: the label sets
        out = save_predictions(prediction_columns(table, probs, predictor.labels, thresholds=thresholds), dest)
        return {"file": str(out), "rows": len(texts), "name": Path(out).name}
    return work


def pretraining_snapshots(checkpoints: Workspace) -> Workspace:
    """Where a pretraining job writes its evaluations' weights: inside its checkpoint folder, so the runner removes
    them with it when the job ends (the saved model is the result), and never a run a crash would promote (a
    snapshot folder has no run.json)."""
    return Workspace(checkpoints.root / SNAPSHOTS_DIR)


def pretraining_work(config: PretrainConfig, *, owner: str, texts: Sequence[str], source: str) -> Work:
    """Pretrain on ``texts`` (already read and checked by the caller: a refusal belongs before the job exists);
    the saved folder is ``<workspace>/pretrained/<name>``."""
    def work(ctx: JobContext) -> Iterator[dict]:
        snapshots = pretraining_snapshots(ctx.checkpoints)
        yield {"event": "Preparing", "fraction": 0.0,
               "note": f"building the model and packing {len(texts):,} texts"}
        events = pretrain(config, list(texts), ctx.should_stop, ctx.workspace, source=source, owner=owner,
                          snapshots=snapshots)
        return (yield from pretraining_records(events, snapshots))
    return work


def pretraining_records(events, snapshots: Workspace | None = None) -> Iterator[dict]:
    """``pretrain``'s events as records with a progress line; returns {"model", "state", "metrics"} with "model"
    the saved folder's name. An evaluation's record names its snapshot ("snapshot"), when there is one."""
    result: dict = {}
    for event in events:
        record = event_to_dict(event)
        if "run_dir" in record:
            run_dir = record.pop("run_dir")
            record["model"] = Path(run_dir).name if run_dir else None
        if isinstance(event, StartEvent):
            record["model"] = public_model(event.model)
            record["note"] = f"pretraining on {event.train_rows:,} texts on {event.device} ({event.precision})"
        elif isinstance(event, StepEvent):
            # total_steps is the running estimate of a time budget: the time share is the steadier progress
            elapsed = event.elapsed_s + event.eta_s
            record["fraction"] = event.elapsed_s / elapsed if elapsed else event.step / max(1, event.total_steps)
            record["note"] = f"step {event.step} of about {event.total_steps}"
        elif isinstance(event, EvalEvent):
            snapshot = latest_snapshot(snapshots) if snapshots is not None else None
            record["snapshot"] = snapshot.name if snapshot else None
            record["note"] = (f"step {event.step}: held-out MLM loss {event.val_loss:.3f}, masked-token accuracy "
                              f"{event.accuracy:.1%}")
        elif isinstance(event, DoneEvent):
            record["fraction"], record["note"] = 1.0, "done"
            result = {"model": record.get("model"), "state": "done", "metrics": dict(event.metrics)}
        elif isinstance(event, CancelledEvent):
            record["note"] = ("stopped: the best weights so far are saved" if record.get("model") else
                              "stopped before the first step: nothing saved")
            result = {"model": record.get("model"), "state": "stopped"}
        yield record
    return result


def lesson_work(texts: Sequence[str], labels: Sequence[str], test_texts: Sequence[str],
                test_labels: Sequence[str], config: LessonConfig) -> Work:
    """The lesson: a "LessonPoint" record per fine-tune, progress lines between; the table as the result, with
    the pretrained model's folder name (it is saved in the workspace like any pretraining)."""
    def work(ctx: JobContext) -> Iterator[dict]:
        pretrain_share = 0.3  # of the progress bar: roughly the default lesson's share of time
        result: dict = {"state": "stopped"}
        for event in lesson(texts, labels, test_texts, test_labels, config, workspace=ctx.workspace,
                            should_stop=ctx.should_stop):
            if isinstance(event, LessonProgress):
                record = {"event": "LessonProgress", "stage": event.stage, "note": event.message}
                if event.stage == "fine-tuning":
                    record["fraction"] = pretrain_share + (1 - pretrain_share) * event.done / max(1, event.total)
                yield record
            elif isinstance(event, LessonPoint):
                yield {"event": "LessonPoint", **dataclasses.asdict(event),
                       "note": f"{event.arm}, {event.labels:,} labels: accuracy {event.accuracy:.3f}"}
            elif isinstance(event, LessonResult):
                result = {"state": "stopped" if ctx.stop_reason else "done", "table": event.table,
                          "model": Path(event.pretrained).name, "pretrain_metrics": event.pretrain_metrics,
                          "seconds": event.seconds}
        return result
    return work
