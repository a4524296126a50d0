"""What a multi-label item's answer starts from: the set the model suggests for it and each label's probability
against its threshold, as the Label tab draws them and as Enter accepts them.

A person toggles labels on the page and saves the set on screen; the server only ever receives whole sets, never
toggles, and writes them with ``history.set_label_set`` (checked against the set the item had when shown). Queues
and their ranking live in ``queues``; this module only reads an entry's probabilities.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bertdemo.data.multilabel import LabelSet
from bertdemo.inference.predict import Predictor
from bertdemo.labeling.labelsets import decode_set

DEFAULT_THRESHOLD = 0.5  # a label's threshold when the suggesting model has none (it was not tuned)


@dataclass(frozen=True)
class LabelScore:
    """One label of an item as the model sees it."""
    label: str
    probability: float  # the label's sigmoid (multi-label run) or softmax share (single-label run)
    threshold: float  # the probability at which the model suggests it

    @property
    def suggested(self) -> bool:
        return self.probability >= self.threshold


def thresholds_of(predictor: Predictor | None) -> dict[str, float]:
    """The model's decision threshold per label: tuned on validation for a multi-label run, else none."""
    if predictor is None or not predictor.multi_label:
        return {}
    return {label: float(t) for label, t in zip(predictor.labels, predictor.thresholds)}


def label_scores(probabilities: Mapping[str, float], thresholds: Mapping[str, float],
                 labels: Sequence[str]) -> list[LabelScore]:
    """Each of ``labels`` (in the project's order) that the model scored, with its threshold."""
    return [LabelScore(label, float(probabilities[label]), float(thresholds.get(label, DEFAULT_THRESHOLD)))
            for label in labels if label in probabilities]


def suggested_set(suggested: object, probabilities: Mapping[str, float],
                  predictor: Predictor | None) -> LabelSet | None:
    """The set the model suggests for an item (None: no suggestion). With the suggesting model at hand its own
    rule decides (``Predictor.decide``: every label at or above its threshold, possibly none); otherwise the
    queue's suggestion as it stored it (an encoded set, a tuple, or one label name)."""
    if predictor is not None and probabilities and all(label in probabilities for label in predictor.labels):
        row = np.array([[probabilities[label] for label in predictor.labels]], dtype=np.float64)  # (1, C)
        return tuple(sorted(predictor.decide(row)[0]))
    if suggested is None:
        return None
    if isinstance(suggested, (tuple, list, set, frozenset)):
        return tuple(sorted(str(label) for label in suggested))
    return decode_set(str(suggested))


def highlight_target(probabilities: Mapping[str, float]) -> str | None:
    """The label word highlights point towards: the likeliest one (an explanation is of one label)."""
    return max(probabilities, key=probabilities.get) if probabilities else None
