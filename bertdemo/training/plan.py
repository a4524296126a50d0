"""What a run will actually do with the settings it was given, for data sets of any size: how many epochs, and
whether the loss weights the classes. Small, skewed label sets (a labeling loop starts from 50-400 labels) need
it: a few steps per epoch leave the model under-trained, and a rare class never gets predicted. The plan says
in words what it changed and why; the app and the CLI show those notes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bertdemo.config import TrainConfig
from bertdemo.data import LabeledData

MAX_PLANNED_EPOCHS = 40  # min_steps never raises epochs beyond this (a handful of rows would loop forever)
IMBALANCED = 3.0  # largest/smallest class ratio from which "auto" weights the classes (the data report warns too)


@dataclass(frozen=True)
class Plan:
    epochs: int
    class_weights: tuple[float, ...] | None  # one weight per class id for the cross-entropy; None: unweighted
    notes: tuple[str, ...]  # what the plan changed and why, in words


def plan_training(config: TrainConfig, data: LabeledData, steps_per_epoch: int) -> Plan:
    notes = []
    epochs = config.epochs
    if config.min_steps and steps_per_epoch * epochs < config.min_steps:
        epochs = min(MAX_PLANNED_EPOCHS, math.ceil(config.min_steps / max(1, steps_per_epoch)))
        notes.append(f"{epochs} epochs instead of {config.epochs}: {len(data.train)} training rows make "
                     f"{steps_per_epoch} steps an epoch, and training takes at least {config.min_steps} steps "
                     f"(min_steps) so that a small data set is learned" + (" (capped)" if epochs == MAX_PLANNED_EPOCHS
                                                                          else "") + ".")
    counts = np.array([int((data.train["label"] == label).sum()) for label in data.labels], dtype=float)
    ratio = counts.max() / max(1.0, counts.min())
    weighted = config.class_weights == "balanced" or (config.class_weights == "auto" and ratio >= IMBALANCED)
    weights = None
    if weighted:
        weights = tuple(float(w) for w in counts.sum() / (len(counts) * np.maximum(counts, 1.0)))
        rare = data.labels[int(counts.argmin())]
        notes.append(f"class-weighted loss: the classes are {ratio:.1f}:1 apart ({rare!r} is the rarest), so each "
                     "class counts as much as the others in training" if config.class_weights == "auto" else
                     "class-weighted loss (class_weights=balanced): each class counts as much as the others.")
    return Plan(epochs=epochs, class_weights=weights, notes=tuple(notes))
