"""What a run will actually do with the settings it was given, for data sets of any size: the batch size, how
many epochs, and whether the loss weights the classes. Small, skewed label sets (a labeling loop starts from
50-400 labels) need it: a few steps per epoch leave the model under-trained, and a rare class never gets
predicted. On TREC samples of 200 and 500 rows, at least 300 steps with class weights, in batches of 16, kept
every class alive (bench/RESULTS.md, "Small label sets"). The plan says in words what it changed and why; the app
and the CLI show those notes. It never changes a setting the person chose (``TrainConfig.given``): it says what it
would have done instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bertdemo.config import TrainConfig
from bertdemo.data import LabeledData
from bertdemo.data.multilabel import multi_hot

MAX_PLANNED_EPOCHS = 40  # min_steps never raises epochs beyond this (a handful of rows would loop forever)
SMALL_BATCH = 16  # a small data set trains in batches this size: as accurate, half the work of 32 for its steps
MAX_POS_WEIGHT = 10.0  # a multi-label positive weight is capped here: a label on 1 text in 500 would weigh 499
IMBALANCED = 3.0  # largest/smallest class ratio from which "auto" weights the classes (the data report warns too)


@dataclass(frozen=True)
class Plan:
    batch_size: int
    epochs: int
    class_weights: tuple[float, ...] | None  # one weight per class id for the cross-entropy (multi-label: a
    # positive weight per label for BCE); None: unweighted
    notes: tuple[str, ...]  # what the plan changed and why, in words


def plan_batch_size(config: TrainConfig, train_rows: int, processes: int = 1) -> tuple[int, list[str]]:
    """The batch size to train with: ``config.batch_size``, or ``SMALL_BATCH`` when the data is too small to make
    ``min_steps`` steps in ``config.epochs`` epochs."""
    steps = math.ceil(train_rows / (config.batch_size * processes)) * config.epochs
    if not config.min_steps or steps >= config.min_steps or config.batch_size <= SMALL_BATCH:
        return config.batch_size, []
    if "batch_size" in config.given:
        return config.batch_size, [f"batch size {config.batch_size} as chosen ({train_rows} training rows are a small "
                                   f"data set, for which the plan would use {SMALL_BATCH})."]
    return SMALL_BATCH, [f"batch size {SMALL_BATCH} instead of {config.batch_size}: {train_rows} training rows are a "
                         "small data set, which learns better from more, smaller steps."]


def plan_training(config: TrainConfig, data: LabeledData, steps_per_epoch: int, batch_size: int | None = None,
                  notes: list[str] | None = None) -> Plan:
    """The whole plan, once the loader's ``steps_per_epoch`` (at ``batch_size``) is known."""
    notes = list(notes or [])
    epochs = config.epochs
    small = bool(notes) or bool(config.min_steps and steps_per_epoch * epochs < config.min_steps)
    if config.min_steps and steps_per_epoch * epochs < config.min_steps and "epochs" in config.given:
        notes.append(f"{epochs} epochs as chosen: {steps_per_epoch * epochs} steps, fewer than min_steps "
                     f"({config.min_steps}), which the plan would have raised the epochs for.")
    elif config.min_steps and steps_per_epoch * epochs < config.min_steps:
        epochs = min(MAX_PLANNED_EPOCHS, math.ceil(config.min_steps / max(1, steps_per_epoch)))
        capped = " (the most it raises them to)" if epochs == MAX_PLANNED_EPOCHS else ""
        notes.append(f"{epochs} epochs instead of {config.epochs}{capped}: {steps_per_epoch} steps an epoch, and "
                     f"training takes at least {config.min_steps} steps (min_steps) so that a small data set is "
                     "learned.")
    if data.multi_label:
        return _multilabel_plan(config, data, batch_size, epochs, small, notes)
    counts = np.array([int((data.train["label"] == label).sum()) for label in data.labels], dtype=float)
    ratio = counts.max() / max(1.0, counts.min())
    weighted = config.class_weights == "balanced" or (config.class_weights == "auto" and small and ratio >= IMBALANCED)
    weights = None
    if weighted:
        weights = tuple(float(w) for w in counts.sum() / (len(counts) * np.maximum(counts, 1.0)))
        rare = data.labels[int(counts.argmin())]
        notes.append(f"class-weighted loss: a small data set whose classes are {ratio:.1f}:1 apart ({rare!r} is the "
                     "rarest), so each class counts as much as the others in training." if config.class_weights == "auto" else
                     "class-weighted loss (class_weights=balanced): each class counts as much as the others.")
    return Plan(batch_size=batch_size or config.batch_size, epochs=epochs, class_weights=weights, notes=tuple(notes))


def _multilabel_plan(config: TrainConfig, data: LabeledData, batch_size: int | None, epochs: int, small: bool,
                     notes: list[str]) -> Plan:
    """Class weighting for label sets: a positive weight per label (BCE's ``pos_weight``), negatives/positives,
    capped at MAX_POS_WEIGHT, so that a label on few texts is not learned as "never". "auto" weights when a small
    data set's most and least frequent labels are IMBALANCED apart, as for classes."""
    y = multi_hot(data.train["label"].tolist(), data.labels)
    positives = y.sum(axis=0)
    ratio = positives.max() / max(1.0, positives.min())
    weighted = config.class_weights == "balanced" or (config.class_weights == "auto" and small and ratio >= IMBALANCED)
    weights = None
    if weighted:
        weights = tuple(float(w) for w in np.clip((len(y) - positives) / np.maximum(positives, 1.0), 1.0,
                                                  MAX_POS_WEIGHT))
        notes.append(f"positive weights per label (BCE pos_weight, at most {MAX_POS_WEIGHT:g}): labels on few texts "
                     f"({data.labels[int(positives.argmin())]!r} is the rarest) count as much as common ones.")
    return Plan(batch_size=batch_size or config.batch_size, epochs=epochs, class_weights=weights, notes=tuple(notes))
