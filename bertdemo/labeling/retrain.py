"""From a project's current labels to a training run, and what the run changed.

The first retrain freezes a validation set (a stratified, seeded share of the labeled items, marked in the
store), so every later run of the project is scored on the same rows, with their current labels; items labeled
later train. ``train_project`` runs the engine's own ``train()`` on the rest and records which label snapshot
(the last change id) the run saw. ``compare`` scores the previous run and the new one on the frozen rows, and
``changes_since`` (``labeling.history``) says which labels moved in between.

A multi-label project trains a multi-label run (a sigmoid per label, ``bertdemo.data.multilabeled``): its
validation items are chosen by iterative stratification (each label's share kept), it continues only a
multi-label run of the same labels, and ``compare`` gives multi-label metrics (``labeling.setmetrics``).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from bertdemo.config import TrainConfig
from bertdemo.data import LabeledData, frames_data, sort_labels
from bertdemo.data.multilabel import LabelFormat, iterative_split, multi_hot
from bertdemo.data.multilabeled import multilabel_frames
from bertdemo.data.split import MAX_VALIDATION_ROWS
from bertdemo.events import CancelledEvent, DoneEvent, Event
from bertdemo.inference.evaluate import evaluate_rows
from bertdemo.inference.predict import get_predictor
from bertdemo.labeling.history import last_change
from bertdemo.labeling.labelsets import decode_set
from bertdemo.labeling.rounds import plan_round
from bertdemo.labeling.setmetrics import evaluate_sets
from bertdemo.labeling.store import Item, LabelStore, now_iso
from bertdemo.training import train
from bertdemo.workspace import Workspace

MIN_LABELED_PER_CLASS = 2  # below this a class can be neither split nor learned


def freeze_validation(store: LabelStore, project: str, config: TrainConfig) -> list[int]:
    """The project's frozen validation items, chosen now if there are none yet (``config.validation_split`` of
    the labeled items, stratified and seeded, at most ``MAX_VALIDATION_ROWS``).

    The check and the choice are one write transaction: of two retrains at once (the app and the CLI, say), the
    second waits and then finds the first one's set."""
    info = store.project(project)
    with store.write() as conn:
        frozen = [i.id for i in store.items(project, split="validation", conn=conn)]
        if frozen:
            return frozen
        labeled = store.items(project, labeled=True, conn=conn)
        ids = _choose_validation_sets(project, labeled, config) if info.multi_label else \
            _choose_validation(project, labeled, config)
        conn.executemany("UPDATE items SET split = 'validation' WHERE project_id = ? AND id = ?",
                         [(info.id, i) for i in ids])
    return ids


def _choose_validation(project: str, labeled: list[Item], config: TrainConfig) -> list[int]:
    labels = [i.label for i in labeled]
    counts = pd.Series(labels).value_counts()
    if len(counts) < 2 or counts.min() < MIN_LABELED_PER_CLASS:
        few = ", ".join(f"{label!r} ({n})" for label, n in counts.items() if n < MIN_LABELED_PER_CLASS)
        raise ValueError(f"Project {project!r} needs at least two classes with {MIN_LABELED_PER_CLASS}+ labeled items "
                         f"each before it can train{': label more of ' + few if few else ''}.")
    n_val = max(len(counts), min(round(len(labeled) * config.validation_split), MAX_VALIDATION_ROWS))
    n_val = min(n_val, len(labeled) - len(counts))
    _, held = train_test_split(labeled, test_size=n_val, random_state=config.seed, stratify=labels)
    return sorted(i.id for i in held)


def _choose_validation_sets(project: str, labeled: list[Item], config: TrainConfig) -> list[int]:
    """A multi-label project's validation items: iterative stratification keeps each label's share."""
    sets = [decode_set(i.label) for i in labeled]
    names = sort_labels({n for s in sets for n in s})
    y = multi_hot(sets, names)
    counts = y.sum(axis=0)
    if len(names) < 2 or counts.min() < MIN_LABELED_PER_CLASS:
        few = ", ".join(f"{label!r} ({int(n)})" for label, n in zip(names, counts) if n < MIN_LABELED_PER_CLASS)
        raise ValueError(f"Project {project!r} needs at least two labels on {MIN_LABELED_PER_CLASS}+ labeled items "
                         f"each before it can train{': label more texts with ' + few if few else ''}.")
    n_val = max(2, min(round(len(labeled) * config.validation_split), MAX_VALIDATION_ROWS))
    n_val = min(n_val, len(labeled) - 2)
    _, held = iterative_split(y, n_val, config.seed)
    return sorted(labeled[i].id for i in held)


def project_data(store: LabelStore, project: str, config: TrainConfig) -> LabeledData:
    """The project's current labels as ``LabeledData``: the frozen validation items validate, the rest train.
    The items and the snapshot (the last change id the run is recorded to have seen) are one read, so a label
    written meanwhile is neither trained on nor counted as trained on."""
    freeze_validation(store, project, config)
    info = store.project(project)
    with store.read() as conn:
        labeled = store.items(project, labeled=True, conn=conn)
        snapshot = last_change(store, project, conn=conn)
    provenance = {"project": project, "snapshot": snapshot, "labeled": len(labeled)}
    if info.multi_label:
        return _project_sets(project, labeled, config, LabelFormat.from_dict(info.label_format), provenance)
    train_rows = pd.DataFrame([(i.text, i.label) for i in labeled if i.split != "validation"], columns=["text", "label"])
    val_rows = pd.DataFrame([(i.text, i.label) for i in labeled if i.split == "validation"], columns=["text", "label"])
    if train_rows["label"].nunique() < 2:
        raise ValueError(f"Project {project!r} has fewer than two classes outside its frozen validation set. Label "
                         "more items of another class.")
    if config.max_train_rows and config.max_train_rows < len(train_rows):
        train_rows = train_rows.sample(n=config.max_train_rows, random_state=config.seed)
    labels = sort_labels(set(train_rows["label"]) | set(val_rows["label"]))
    data = frames_data(train_rows, val_rows, labels, source=project, max_length=config.max_length,
                       validation_source="frozen")
    return dataclasses.replace(data, provenance={**provenance, "validation_items": len(val_rows)})


def _project_sets(project: str, labeled: list[Item], config: TrainConfig, label_format: LabelFormat,
                  provenance: dict) -> LabeledData:
    """``project_data`` of a multi-label project: "label" holds label sets; the labels are those some item has."""
    rows = [(i.text, decode_set(i.label), i.split == "validation") for i in labeled]
    train_rows = pd.DataFrame([(t, s) for t, s, v in rows if not v], columns=["text", "label"])
    val_rows = pd.DataFrame([(t, s) for t, s, v in rows if v], columns=["text", "label"])
    outside = {n for s in train_rows["label"] for n in s}
    if len(outside) < 2:
        raise ValueError(f"Project {project!r} has fewer than two labels on items outside its frozen validation set. "
                         "Label more items with other labels.")
    if config.max_train_rows and config.max_train_rows < len(train_rows):
        train_rows = train_rows.sample(n=config.max_train_rows, random_state=config.seed)
    labels = sort_labels(outside | {n for s in val_rows["label"] for n in s})
    data = multilabel_frames(train_rows, val_rows, labels, source=project, max_length=config.max_length,
                             validation_source="frozen", label_format=label_format)
    return dataclasses.replace(data, provenance={**provenance, "validation_items": len(val_rows)})


def train_project(store: LabelStore, project: str, config: TrainConfig, *, previous: str | Path | None = None,
                  warm: bool = True, should_stop: Callable[[], bool] = lambda: False,
                  workspace: Workspace | str | Path | None = None, data: LabeledData | None = None, owner: str = "",
                  checkpoints: Workspace | None = None) -> Iterator[Event]:
    """One labeling round on the project's current labels (``labeling.rounds``): from ``previous``'s weights (the
    project's last run) where ``warm`` and that run can be continued, else from ``config.model``, with the round's
    step budget; the run is recorded with its label snapshot. Yields ``train``'s events (``checkpoints``: as for
    ``train``)."""
    data = data or project_data(store, project, config)
    plan = plan_round(config, data.labels, previous, warm=warm, multi_label=data.multi_label)
    data = plan.with_lineage(data)
    for event in train(plan.config, data, should_stop=should_stop, workspace=workspace, owner=owner,
                       checkpoints=checkpoints, notes=plan.notes):
        if isinstance(event, (DoneEvent, CancelledEvent)) and event.run_dir:
            record_run(store, project, Path(event.run_dir).name, data.provenance["snapshot"])
        yield event


def record_run(store: LabelStore, project: str, run: str, snapshot: int) -> None:
    info = store.project(project)
    with store.write() as conn:
        conn.execute("INSERT OR REPLACE INTO project_runs (project_id, run, snapshot, created) VALUES (?, ?, ?, ?)",
                     (info.id, run, int(snapshot), now_iso()))


def project_runs(store: LabelStore, project: str) -> list[dict]:
    """The runs trained on the project, oldest first: {"run", "snapshot", "created"}."""
    info = store.project(project)
    with store.read() as conn:
        return [{"run": r, "snapshot": s, "created": c} for r, s, c in conn.execute(
            "SELECT run, snapshot, created FROM project_runs WHERE project_id = ? ORDER BY created, rowid",
            (info.id,))]


def compare(store: LabelStore, project: str, before: str | Path | None, after: str | Path) -> dict:
    """Both runs scored on the frozen validation items with their current labels: accuracy, macro-F1, per-class
    F1 ({"before": metrics or None, "after": metrics, "rows": n}). Multi-label projects: "accuracy" is the subset
    accuracy, and micro-F1, samples-F1 and the Hamming loss come too (each run's own thresholds decide)."""
    frozen = [i for i in store.items(project, labeled=True) if i.split == "validation"]
    if not frozen:
        raise ValueError(f"Project {project!r} has no frozen validation set yet: it is chosen at the first retrain.")
    texts, labels = [i.text for i in frozen], [i.label for i in frozen]
    multi = store.project(project).multi_label

    def score(run) -> dict | None:
        if run is None or not Path(run).exists():
            return None
        predictor = get_predictor(run)
        if multi:
            if not predictor.multi_label:  # a single-label run has no per-label decisions to score
                return None
            metrics = evaluate_sets(predictor, texts, [decode_set(label) for label in labels])
        else:
            metrics = evaluate_rows(predictor, texts, labels)
        extra = {k: metrics[k] for k in ("micro_f1", "samples_f1", "hamming_loss")} if multi else {}
        return {"run": Path(run).name, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], **extra,
                "per_class_f1": {label: m["f1"] for label, m in metrics["per_class"].items()}}

    return {"rows": len(frozen), "before": score(before), "after": score(after)}
