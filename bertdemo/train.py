"""The training loop: a generator of typed events (``bertdemo.events``) that ends with a saved run.

``train(config, data, should_stop)`` is what the app, the CLI and the benchmarks call. It runs on CUDA, MPS or
CPU (where bf16 means a bf16 model with fp32 master weights, ``bertdemo.master_weights``), and under
``accelerate launch`` on several GPUs or nodes (accelerate does device placement, DDP and gathering; this file
holds no distribution code of its own). Not in here: reading data (``bertdemo.data``),
batching (``bertdemo.batches``), metrics maths (``bertdemo.metrics``), writing runs (``bertdemo.runs``).
"""
from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import get_scheduler, set_seed

from bertdemo import runs
from bertdemo.batches import CountingCollator, eval_loader, tokenize_frame, train_loader
from bertdemo.config import SCRATCH_MODEL, TrainConfig
from bertdemo.cpu_dropout import use_cpu_dropout
from bertdemo.data import LabeledData
from bertdemo.device import autocast, choose_precision
from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, Event, StartEvent, StepEvent, event_to_dict
from bertdemo.master_weights import MasterWeights
from bertdemo.metrics import classification_metrics
from bertdemo.models import load_classifier, load_tokenizer
from bertdemo.scratch import build_scratch_model, build_scratch_tokenizer

EVAL_BATCH_SIZE = 128  # inference needs no activations for backward: bigger batches are cheaper per text


@dataclass
class _Session:
    """Everything one training run holds; dropped as a whole when the run ends, which frees its memory."""
    accelerator: Accelerator
    device: torch.device
    precision: str
    own_amp: bool  # False when `accelerate launch --mixed_precision` already autocasts
    tokenizer: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler | None
    loader: object
    val_loader: object
    val_frame: object
    collator: CountingCollator
    master: MasterWeights | None  # bf16 model + fp32 masters (CPU bf16); None: autocast or plain fp32

    def autocast(self):
        if self.master is not None:
            return contextlib.nullcontext()  # the model is bf16 already
        return autocast(self.device, self.precision) if self.own_amp else self.accelerator.autocast()


def train(config: TrainConfig, data: LabeledData, should_stop: Callable[[], bool] = lambda: False,
          workspace: str | Path | None = None) -> Iterator[Event]:
    """Fine-tune ``config.model`` on ``data``; yield events; save the best checkpoint as a run.

    ``should_stop`` is polled before every step: when it returns True training ends within one step, the
    weights as they are now are evaluated (unless that just happened), the best checkpoint so far is saved as a
    "stopped" run (nothing is saved when no step was taken), and a ``CancelledEvent`` is the last event.
    """
    workspace = Path(workspace or runs.default_workspace())
    s = _setup(config, data)
    steps_per_epoch = len(s.loader)
    total_steps = steps_per_epoch * config.epochs
    eval_every = max(1, math.ceil(steps_per_epoch / config.evals_per_epoch))
    history: list[dict] = []

    def emit(event: Event) -> Event:
        history.append(event_to_dict(event))
        return event

    yield emit(StartEvent(total_steps=total_steps, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
                          train_rows=len(data.train), validation_rows=len(data.validation), labels=data.labels,
                          model=config.model, device=s.device.type, precision=s.precision,
                          num_processes=s.accelerator.num_processes))
    best: dict = {"score": (-1.0, 0.0), "state": None, "metrics": None, "evals_since": 0}
    step, seen, stopped_early, cancelled, batch, last_eval = 0, 0, False, False, None, 0
    started = time.perf_counter()
    try:
        s.model.train()
        for _epoch in range(config.epochs):
            for batch in s.loader:
                if should_stop():
                    cancelled = True
                    break
                loss = _step(s, batch, config.max_grad_norm)
                step += 1
                seen += len(batch["labels"]) * s.accelerator.num_processes
                elapsed = time.perf_counter() - started
                yield emit(StepEvent(step=step, total_steps=total_steps, epoch=step / steps_per_epoch, loss=loss,
                                     learning_rate=s.scheduler.get_last_lr()[0], examples_per_s=seen / elapsed,
                                     elapsed_s=elapsed, eta_s=elapsed / step * (total_steps - step)))
                if step % eval_every == 0 or step % steps_per_epoch == 0:
                    last_eval = step
                    yield emit(_evaluation(s, best, data.labels, step, steps_per_epoch))
                    s.model.train()
                    if config.patience and best["evals_since"] >= config.patience:
                        stopped_early = True
                        break
            if cancelled or stopped_early:
                break
        if cancelled and step > last_eval:  # keep what the steps since the last evaluation learned
            yield emit(_evaluation(s, best, data.labels, step, steps_per_epoch))
        train_seconds = time.perf_counter() - started
        run_dir = None
        if best["state"] is not None:
            run_dir = _save(s, config, data, best, history, train_seconds,
                            status="stopped" if cancelled else "complete", workspace=workspace)
        if cancelled:
            yield emit(CancelledEvent(step=step, run_dir=str(run_dir) if run_dir else None))
            return
        real, padded, final_metrics = s.collator.real_tokens, s.collator.padded_tokens, best["metrics"]
        s = best = batch = None  # free the model and optimizer before the consumer handles the last event
        _free_memory()
        yield DoneEvent(run_dir=str(run_dir) if run_dir else None, metrics=final_metrics,
                        train_seconds=train_seconds, examples_per_s=seen / train_seconds if train_seconds else 0.0,
                        stopped_early=stopped_early, real_tokens=real, padded_tokens=padded)
    finally:
        # Also when the consumer stops iterating (a closed browser tab) or training raises.
        s = best = batch = None
        _free_memory()


def _setup(config: TrainConfig, data: LabeledData) -> _Session:
    set_seed(config.seed)
    # Precision is handled here, not by Accelerator(mixed_precision=...): accelerate's state is a
    # process-wide singleton that refuses a second, different precision, and the app trains many runs.
    accelerator = Accelerator()
    device = accelerator.device
    own_amp = accelerator.mixed_precision == "no"  # `accelerate launch --mixed_precision` takes precedence
    precision = choose_precision(config.precision, device) if own_amp else accelerator.mixed_precision
    tokenizer, model = _build_model(config, data)
    if config.dropout is not None:
        _set_dropout(model, config.dropout)
    if device.type == "cpu":
        # torch's CPU dropout was ~15% of a step (x1.23 with ours). With dropout off it still pays: SDPA without
        # dropout takes a flash kernel whose backward was x0.7 of this eager path at 14 word-pieces.
        use_cpu_dropout(model)
    # Built before accelerate.prepare, from the fp32 weights; every rank builds the same ones (set_seed above
    # makes the new head identical), so DDP's start-up broadcast of the bf16 model agrees with them.
    master = MasterWeights(model) if own_amp and precision == "bf16" and device.type == "cpu" else None
    train_ds = tokenize_frame(data.train, tokenizer, data.label2id, config.max_length)
    # Validation sorted by length: evaluation batches then carry almost no padding.
    val_frame = data.validation.assign(_len=data.validation["text"].str.len()).sort_values("_len", kind="stable")
    val_ds = tokenize_frame(val_frame, tokenizer, data.label2id, config.max_length)
    collator = CountingCollator(tokenizer, pad_to_multiple_of=8 if device.type == "cuda" else None)
    loader = train_loader(train_ds, collator, config.batch_size, seed=config.seed, batching=config.batching)
    val_loader = eval_loader(val_ds, CountingCollator(tokenizer), EVAL_BATCH_SIZE)
    # The fused kernel is ~3x faster than the default per-tensor loop on CPU (bench/RESULTS.md).
    named = master.named_trainable() if master else list(model.named_parameters())
    optimizer = torch.optim.AdamW(_param_groups(named, config.weight_decay), lr=config.learning_rate,
                                  fused=device.type in ("cpu", "cuda"))
    model, optimizer, loader, val_loader = accelerator.prepare(model, optimizer, loader, val_loader)
    total_steps = len(loader) * config.epochs
    scheduler = get_scheduler(config.scheduler, optimizer, num_warmup_steps=round(config.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    scaler = torch.amp.GradScaler(device.type) if own_amp and precision == "fp16" else None
    return _Session(accelerator=accelerator, device=device, precision=precision, own_amp=own_amp,
                    tokenizer=tokenizer, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                    loader=loader, val_loader=val_loader, val_frame=val_frame, collator=collator, master=master)


def _step(s: _Session, batch: dict, max_grad_norm: float) -> float:
    """One optimizer step; returns the batch's training loss."""
    with s.autocast():
        logits = s.model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # (B, C)
    loss = torch.nn.functional.cross_entropy(logits.float(), batch["labels"])  # in fp32 whatever the model's dtype
    if s.scaler is not None:  # fp16 needs loss scaling; bf16 and fp32 do not
        s.scaler.scale(loss).backward()
        s.scaler.unscale_(s.optimizer)
    else:
        s.accelerator.backward(loss)
    if s.master is not None:
        s.master.grads_to_master()
        torch.nn.utils.clip_grad_norm_([m for _, m in s.master.named_trainable()], max_grad_norm)
    else:
        s.accelerator.clip_grad_norm_(s.model.parameters(), max_grad_norm)
    if s.scaler is not None:
        s.scaler.step(s.optimizer)
        s.scaler.update()
    else:
        s.optimizer.step()
    if s.master is not None:
        s.master.write_back()
    s.scheduler.step()
    s.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _evaluation(s: _Session, best: dict, labels: tuple[str, ...], step: int, steps_per_epoch: int) -> EvalEvent:
    """Evaluate the weights as they are now, keep them if they are the best so far, and report it."""
    metrics = _evaluate(s, labels)
    return EvalEvent(step=step, epoch=step / steps_per_epoch, val_loss=metrics["loss"], accuracy=metrics["accuracy"],
                     macro_f1=metrics["macro_f1"], is_best=_keep_if_best(best, metrics, s))


def _keep_if_best(best: dict, metrics: dict, s: _Session) -> bool:
    """Remember this evaluation's weights if it is the best so far; True if it was."""
    # Ties on macro-F1 (common on small, easy validation sets) go to the lower loss.
    score = (metrics["macro_f1"], -metrics["loss"])
    if score > best["score"]:
        best.update(score=score, metrics=metrics, evals_since=0,
                    state=s.master.trainable_state() if s.master else
                    _trainable_state(s.accelerator.unwrap_model(s.model)))
        return True
    best["evals_since"] += 1
    return False


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _build_model(config: TrainConfig, data: LabeledData):
    if config.model == SCRATCH_MODEL:
        tokenizer = build_scratch_tokenizer(data.train["text"].tolist())
        model = build_scratch_model(tokenizer, data.labels, max_length=config.max_length, seed=config.seed)
        return tokenizer, model
    tokenizer = load_tokenizer(config.model)
    model = load_classifier(config.model, data.labels, attn="sdpa")
    if config.freeze_word_embeddings:
        # Skips the dense gradient, clipping and AdamW update of the 11.7M-value word-embedding matrix:
        # measured 252 -> 170 ms per CPU step at batch 32 x 14 tokens (bench/RESULTS.md). Pretrained
        # word vectors barely move in a few epochs of fine-tuning anyway.
        model.get_input_embeddings().weight.requires_grad_(False)
    return tokenizer, model


def _set_dropout(model: torch.nn.Module, p: float) -> None:
    """One rate for every dropout layer (BERT's attention reads its rate from such a layer too)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def _param_groups(named_params: Iterable[tuple[str, torch.Tensor]], weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (as in BERT's original recipe)."""
    decay, no_decay = [], []
    for name, param in named_params:
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights training changes (frozen ones need no copy)."""
    return {name: param.detach().to("cpu", copy=True) for name, param in model.named_parameters()
            if param.requires_grad}


@torch.inference_mode()
def _evaluate(s: _Session, labels: tuple[str, ...]) -> dict:
    s.model.eval()
    logits_all, labels_all = [], []
    for batch in s.val_loader:
        with s.autocast():
            logits = s.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        logits, batch_labels = s.accelerator.gather_for_metrics((logits.float(), batch["labels"]))
        logits_all.append(logits.cpu())
        labels_all.append(batch_labels.cpu())
    logits = torch.cat(logits_all)  # (N, C)
    y_true = torch.cat(labels_all)
    loss = torch.nn.functional.cross_entropy(logits, y_true).item()
    probs = torch.softmax(logits, dim=-1).numpy()
    return classification_metrics(y_true.numpy(), probs, labels, texts=s.val_frame["text"].tolist(), loss=loss)


def _save(s: _Session, config: TrainConfig, data: LabeledData, best: dict, history: list[dict],
          train_seconds: float, *, status: str, workspace: Path) -> Path | None:
    s.accelerator.wait_for_everyone()
    if not s.accelerator.is_main_process:
        return None
    unwrapped = s.accelerator.unwrap_model(s.model)
    if s.master is not None:
        s.master.restore_fp32(unwrapped, best["state"])  # saved runs are fp32, like the model they came from
    else:
        unwrapped.load_state_dict(best["state"], strict=False)
    metrics = best["metrics"]
    info = runs.RunInfo(
        name="", path="", created=runs.now_iso(), base_model=config.model, data_source=data.report.source,
        labels=data.labels, status=status, train_config=config.to_dict(), train_rows=len(data.train),
        validation_rows=len(data.validation), train_seconds=round(train_seconds, 2),
        metrics={k: metrics[k] for k in ("accuracy", "macro_f1", "loss")})
    return runs.save_run(workspace, name=runs.new_run_name(data.report.source, config.model), model=unwrapped,
                         tokenizer=s.tokenizer, info=info, train_config=config.to_dict(),
                         data_report=data.report.to_dict(), metrics=metrics, events=history,
                         train=data.train, validation=data.validation)
