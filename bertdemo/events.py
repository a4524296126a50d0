"""Typed events that ``train`` yields: the app, the CLI and the benchmarks consume the same stream."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class StartEvent:
    total_steps: int
    epochs: int
    steps_per_epoch: int
    train_rows: int
    validation_rows: int
    labels: tuple[str, ...]
    model: str  # what the user asked for: "default", "scratch", a hub id or a folder
    device: str  # "cpu", "cuda", "mps"
    precision: str  # "bf16", "fp16", "fp32" as actually used
    num_processes: int  # >1 under `accelerate launch` on several GPUs
    notes: tuple[str, ...] = ()  # what the training plan changed and why (epochs raised, class weights)


@dataclass(frozen=True)
class StepEvent:
    step: int  # 1-based optimizer step
    total_steps: int
    epoch: float  # fractional epoch, e.g. 1.5 half-way through the second epoch
    loss: float  # training loss of this step's batch
    learning_rate: float
    examples_per_s: float  # training examples per wall second since training started
    elapsed_s: float
    eta_s: float


@dataclass(frozen=True)
class EvalEvent:
    step: int
    epoch: float
    val_loss: float
    accuracy: float
    macro_f1: float
    is_best: bool  # this evaluation beat every earlier one on macro-F1 (the checkpoint that will be saved)
    objective: str = "classify"  # "mlm" in pretraining: val_loss is the held-out masked-LM loss, accuracy the
    # masked-token accuracy, macro_f1 repeats it (there are no classes), and is_best goes by the loss


@dataclass(frozen=True)
class DoneEvent:
    run_dir: str | None  # the saved, complete run folder (None in the non-main processes of a multi-GPU run)
    metrics: dict  # full validation metrics of the best checkpoint (see bertdemo.metrics)
    train_seconds: float  # first training step to end of training, evaluations included
    examples_per_s: float  # training rows × epochs run ÷ train_seconds
    stopped_early: bool  # early stopping ended training before the last epoch
    real_tokens: int = 0  # non-padding word-pieces seen in training
    padded_tokens: int = 0  # positions computed in training, padding included


@dataclass(frozen=True)
class CancelledEvent:
    step: int
    run_dir: str | None  # the best checkpoint so far, saved as a run marked "stopped"; None if none existed


Event = Union[StartEvent, StepEvent, EvalEvent, DoneEvent, CancelledEvent]


def event_to_dict(event: Event) -> dict:
    """A JSON-ready dict with the event's type name under "event"."""
    return {"event": type(event).__name__, **dataclasses.asdict(event)}
