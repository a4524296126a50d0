"""The best checkpoint so far: which evaluation it came from, its metrics, and the weights training changed."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Checkpoint:
    step: int  # the optimizer step after which these weights were evaluated
    metrics: dict  # full validation metrics (bertdemo.metrics.classification_metrics)
    state: dict[str, torch.Tensor]  # CPU copies of the trainable weights (the precision strategy's snapshot)

    @property
    def score(self) -> tuple[float, float]:
        """What "best" means: macro-F1, ties (common on small, easy validation sets) going to the lower loss."""
        return score(self.metrics)


def score(metrics: dict) -> tuple[float, float]:
    return metrics["macro_f1"], -metrics["loss"]


def is_better(metrics: dict, best: Checkpoint | None) -> bool:
    return best is None or score(metrics) > best.score
