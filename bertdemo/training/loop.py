"""The training loop: a generator of typed events (``bertdemo.events``) that ends with a saved run.

``train(config, data, should_stop, workspace)`` is what the app, the CLI, the labeling retrain and the benchmarks
call. It runs on CUDA, MPS or CPU, and under ``accelerate launch`` on several GPUs or nodes (accelerate does
device placement, DDP and gathering; there is no distribution code of our own). Not in here: building the model,
loaders and optimizer and the step itself (``bertdemo.training.session``), precision
(``bertdemo.training.precision``), reading data (``bertdemo.data``), writing runs (``bertdemo.runs``).
"""
from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from bertdemo import runs
from bertdemo.config import TrainConfig
from bertdemo.data import LabeledData
from bertdemo.data.multilabel import LabelFormat
from bertdemo.data.multilabeled import cell_frame
from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, Event, StartEvent, StepEvent, event_to_dict
from bertdemo.training.checkpoint import Checkpoint, is_better
from bertdemo.training.evaluation import validate
from bertdemo.training.guards import finite_loss, free_memory, out_of_memory_as_message
from bertdemo.training.session import Session, start_session, training_step
from bertdemo.workspace import Workspace, as_workspace



def train(config: TrainConfig, data: LabeledData, should_stop: Callable[[], bool] = lambda: False,
          workspace: Workspace | str | Path | None = None, *, owner: str = "",
          checkpoints: Workspace | None = None, notes: tuple[str, ...] = ()) -> Iterator[Event]:
    """Fine-tune ``config.model`` on ``data``; yield events; save the best checkpoint as a run (owned by ``owner``).

    ``should_stop`` is polled before every step: when it returns True training ends within one step, the
    weights as they are now are evaluated (unless that just happened), the best checkpoint so far is saved as a
    "stopped" run (nothing is saved when no step was taken), and a ``CancelledEvent`` is the last event. Running out
    of memory is a ``ValueError`` that says what to lower.

    ``checkpoints``: where each new best checkpoint is also written at once as a complete run (status
    "interrupted"), replacing the one before, so that a server killed mid-training still has it
    (``bertdemo.jobs.checkpoints`` turns it into a run at the next start). The caller removes the folder.

    ``notes``: what the caller decided about this run (a labeling round's warm start, say), said in the start
    event before the plan's own notes.
    """
    with out_of_memory_as_message(config):
        yield from _train(config, data, should_stop, as_workspace(workspace), owner, checkpoints, tuple(notes))


def _train(config: TrainConfig, data: LabeledData, should_stop: Callable[[], bool], workspace: Workspace,
           owner: str, checkpoints: Workspace | None, notes: tuple[str, ...] = ()) -> Iterator[Event]:
    """The loop itself (``train``'s docstring says what it does)."""
    s = start_session(config, data)
    steps_per_epoch = len(s.loader)
    eval_every = max(1, math.ceil(steps_per_epoch / config.evals_per_epoch))
    history: list[dict] = []

    def emit(event: Event) -> Event:
        history.append(event_to_dict(event))
        return event

    start = emit(_start_event(config, data, s, notes))
    yield start
    best: Checkpoint | None = None
    step = seen = evals_since = last_eval = 0
    stopped_early = cancelled = False
    started = time.perf_counter()
    try:
        s.model.train()
        for batch in itertools.chain.from_iterable(itertools.repeat(s.loader, s.epochs)):  # epoch after epoch
            if should_stop():
                cancelled = True
                break
            step += 1
            loss = finite_loss(training_step(s, batch, config.max_grad_norm), step, config)
            seen += len(batch["labels"]) * s.accelerator.num_processes
            yield emit(_step_event(s, start, step, loss, seen, time.perf_counter() - started))
            if step % eval_every == 0 or step % steps_per_epoch == 0:
                event, best = _evaluation(s, data.labels, step, steps_per_epoch, best)
                evals_since, last_eval = 0 if event.is_best else evals_since + 1, step
                if event.is_best and checkpoints is not None:
                    _save_checkpoint(s, config, data, best, history + [event_to_dict(event)],
                                     time.perf_counter() - started, checkpoints, owner)
                yield emit(event)
                if config.patience and evals_since >= config.patience:
                    stopped_early = True
                    break
        if cancelled and step > last_eval:  # keep what the steps since the last evaluation learned
            event, best = _evaluation(s, data.labels, step, steps_per_epoch, best)
            yield emit(event)
        train_seconds = time.perf_counter() - started
        status = "stopped" if cancelled else "complete"
        run_dir = _save(s, config, data, best, history, train_seconds, status, workspace, owner) if best else None
        if cancelled:
            yield emit(CancelledEvent(step=step, run_dir=str(run_dir) if run_dir else None))
            return
        real, padded, final_metrics = s.collator.real_tokens, s.collator.padded_tokens, best.metrics
        s = best = batch = None  # free the model and optimizer before the consumer handles the last event
        free_memory()
        yield DoneEvent(run_dir=str(run_dir) if run_dir else None, metrics=final_metrics,
                        train_seconds=train_seconds, examples_per_s=seen / train_seconds if train_seconds else 0.0,
                        stopped_early=stopped_early, real_tokens=real, padded_tokens=padded)
    finally:
        # Also when the consumer stops iterating (a closed browser tab) or training raises.
        s = best = batch = None
        free_memory()


def _start_event(config: TrainConfig, data: LabeledData, s: Session, notes: tuple[str, ...] = ()) -> StartEvent:
    return StartEvent(total_steps=len(s.loader) * s.epochs, epochs=s.epochs, steps_per_epoch=len(s.loader),
                      train_rows=len(data.train), validation_rows=len(data.validation), labels=data.labels,
                      model=config.model, device=s.device.type, precision=s.precision.name,
                      num_processes=s.accelerator.num_processes, notes=notes + s.notes)


def _step_event(s: Session, start: StartEvent, step: int, loss: float, seen: int, elapsed: float) -> StepEvent:
    return StepEvent(step=step, total_steps=start.total_steps, epoch=step / start.steps_per_epoch, loss=loss,
                     learning_rate=s.scheduler.get_last_lr()[0], examples_per_s=seen / elapsed, elapsed_s=elapsed,
                     eta_s=elapsed / step * (start.total_steps - step))


def _evaluation(s: Session, labels: tuple[str, ...], step: int, steps_per_epoch: int,
                best: Checkpoint | None) -> tuple[EvalEvent, Checkpoint | None]:
    """Evaluate the weights as they are now; return the event and the best checkpoint (these weights if better)."""
    # Validation rows are kept from the end of the first epoch on, once every training row had its turn: a training
    # batch starts above the frozen layers only when all its rows are kept, so they come first in the budget.
    metrics = validate(s, labels, keep=step >= steps_per_epoch)
    better = is_better(metrics, best)
    if better:
        best = Checkpoint(step, metrics, s.precision.snapshot())
    s.model.train()
    return EvalEvent(step=step, epoch=step / steps_per_epoch, val_loss=metrics["loss"], accuracy=metrics["accuracy"],
                     macro_f1=metrics["macro_f1"], is_best=better), best


def _save_checkpoint(s: Session, config: TrainConfig, data: LabeledData, best: Checkpoint, history: list[dict],
                     train_seconds: float, checkpoints: Workspace, owner: str) -> None:
    """Write ``best`` into ``checkpoints`` as a complete run, then drop the older ones there. The model is a copy:
    restoring a checkpoint makes a bf16 model fp32, and training goes on with the live one."""
    older = [p for p in checkpoints.root.iterdir() if not p.name.startswith(".")] if checkpoints.root.is_dir() else []
    saved = _save(s, config, data, best, history, train_seconds, "interrupted", checkpoints, owner,
                  model=copy.deepcopy(s.accelerator.unwrap_model(s.model)))
    if saved is not None:
        for path in older:
            checkpoints.remove(path)


def _save(s: Session, config: TrainConfig, data: LabeledData, best: Checkpoint, history: list[dict],
          train_seconds: float, status: str, workspace: Workspace, owner: str,
          model: torch.nn.Module | None = None) -> Path | None:
    """Save ``best`` as a run (on the main process; the others return None); ``model``: the unwrapped model to
    put the weights into (default: the live one)."""
    s.accelerator.wait_for_everyone()
    if not s.accelerator.is_main_process:
        return None
    if not all(bool(torch.isfinite(t).all()) for t in best.state.values()):
        raise ValueError("Some weights are not finite numbers (NaN or infinity): the run was not saved. Lower the "
                         "learning rate, or use precision fp32.")
    model = model if model is not None else s.accelerator.unwrap_model(s.model)
    s.precision.restore(model, best.state)
    metrics = best.metrics
    headline = ("accuracy", "macro_f1", "loss") + (("micro_f1",) if data.multi_label else ())
    train, validation = data.train, data.validation
    if data.multi_label:
        # The decision thresholds tuned on validation for these weights travel in the model's config.json
        # (read by Predictor); transformers keeps an unknown config key as it is.
        model.config.thresholds = dict(metrics["thresholds"])
        sep = LabelFormat.from_dict(data.label_format).sep
        train, validation = cell_frame(train, sep), cell_frame(validation, sep)
    info = runs.RunInfo(
        name="", path="", created=runs.now_iso(), base_model=config.model, data_source=data.report.source,
        labels=data.labels, status=status, train_config=config.to_dict(), train_rows=len(data.train),
        validation_rows=len(data.validation), train_seconds=round(train_seconds, 2),
        metrics={k: metrics[k] for k in headline}, provenance=dict(data.provenance),
        owner=owner, multi_label=data.multi_label)
    return runs.save_run(workspace, name=runs.new_run_name(data.report.source, config.model), model=model,
                         tokenizer=s.tokenizer, info=info, train_config=config.to_dict(),
                         data_report=data.report.to_dict(), metrics=metrics, events=history,
                         train=train, validation=validation)
