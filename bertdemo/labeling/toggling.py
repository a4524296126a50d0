"""What the Label tab shows of a multi-label item beside the set the queue suggests (``QueueEntry.suggested``,
decided by the thresholds): each label's probability against its threshold, and the label the word highlights
explain.

A person toggles labels on the page and saves the set on screen; the server only ever receives whole sets, never
toggles, and writes them with ``history.set_label_set`` (checked against the set the item had when shown). Queues
and their ranking live in ``queues``; this module only reads an entry's probabilities.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bertdemo.inference.predict import Predictor
from bertdemo.multilabel_metrics import DEFAULT_THRESHOLD  # a label's threshold when the model has none


@dataclass(frozen=True)
class LabelScore:
    """One label of an item as the model sees it."""
    label: str
    probability: float  # the label's sigmoid (multi-label run) or softmax share (single-label run)
    threshold: float  # the probability at which the model suggests it


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


def highlight_target(probabilities: Mapping[str, float]) -> str | None:
    """The label word highlights point towards: the likeliest one (an explanation is of one label)."""
    return max(probabilities, key=probabilities.get) if probabilities else None
