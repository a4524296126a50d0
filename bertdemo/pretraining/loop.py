"""The pretraining loop: a generator of the same typed events as fine-tuning (``bertdemo.events``), so the live
plot, the jobs runner, Stop and the CLI's progress bar work unchanged. It ends with a saved masked-LM folder
(``bertdemo.pretraining.saved``).

The budget is time, not epochs: with ``minutes`` set, the learning rate warms up over the first
``warmup_ratio`` of the budget and falls linearly to zero when the time is up, whatever the machine's speed
(Geiping & Goldstein 2022, "Cramming": on a small budget, a schedule that ends when the budget does beats one
cut off mid-way). The steps the budget holds are unknown in advance: each step event carries the estimate
so far. Held-out evaluations come at fixed shares of the budget, on masks drawn once so that they compare.

Not in here: the model (``model``), the texts' packing (``corpus``), the masking and the masked-only loss
(``masking``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, Event, StartEvent, StepEvent, event_to_dict
import bertdemo.pretraining.corpus as corpus
from bertdemo.pretraining.config import PretrainConfig
from bertdemo.pretraining.masking import PretrainCollator, has_fast_head, masked_lm_loss
from bertdemo.pretraining.model import build
from bertdemo.pretraining.saved import save_pretrained
from bertdemo.seeding import TorchRng
from bertdemo.training.guards import free_memory
from bertdemo.training.precision import precision_strategy
from bertdemo.training.session import _param_groups
from bertdemo.workspace import Workspace

EVAL_BATCH = 64
MAX_GRAD_NORM = 1.0


class Budget:
    """How far the run is (0…1): the larger of the time share and the step share; the learning-rate factor."""

    def __init__(self, config: PretrainConfig, steps_per_epoch: int):
        caps = [n for n in (config.max_steps, config.epochs * steps_per_epoch) if n > 0]
        self.max_steps = min(caps) if caps else 0
        self.seconds = config.minutes * 60
        self.warmup = config.warmup_ratio
        self.started = time.perf_counter()
        self.step = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def progress(self) -> float:
        shares = [self.step / self.max_steps] if self.max_steps else []
        if self.seconds:
            shares.append(self.elapsed() / self.seconds)
        return min(1.0, max(shares, default=1.0))

    def lr_factor(self) -> float:
        p = self.progress()
        if p < self.warmup:
            return max(p / self.warmup, 1e-3)
        return max(0.0, (1 - p) / (1 - self.warmup))

    def estimated_steps(self) -> int:
        p = self.progress()
        return max(self.step, round(self.step / p)) if p > 0 and self.step else self.max_steps


@dataclass
class Run:
    """What one pretraining run holds; dropped as a whole at its end, which frees its memory."""
    config: PretrainConfig
    accelerator: Accelerator
    rng: TorchRng
    tokenizer: object
    model: torch.nn.Module
    precision: object
    optimizer: torch.optim.Optimizer
    loader: DataLoader
    held_batches: list
    budget: Budget
    scheduler: object
    texts: tuple[list[str], list[str]]  # (train, held out)
    sequences: int
    notes: tuple[str, ...]


def pretrain(config: PretrainConfig, texts: list[str], should_stop: Callable[[], bool] = lambda: False,
             workspace: Workspace | str | Path | None = None, *, source: str = "texts", owner: str = "",
             snapshots: Workspace | None = None) -> Iterator[Event]:
    """Pretrain on ``texts``; yield events; save the model with the best held-out loss.

    ``should_stop`` is polled before every step: training ends within one step, the weights are evaluated and
    the best so far saved (status "stopped"; nothing when no step was taken), and ``CancelledEvent`` comes
    last. ``snapshots``: where the weights of each evaluation are written (the app's fill-the-mask box reads
    them while the job runs); the caller removes it.
    """
    texts = list(dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip()))
    corpus.check_texts(texts)
    r = _start(config, texts)
    history: list[dict] = []

    def emit(event: Event) -> Event:
        history.append(event_to_dict(event))
        return event

    yield emit(StartEvent(total_steps=r.budget.max_steps, epochs=config.epochs, steps_per_epoch=len(r.loader),
                          train_rows=len(r.texts[0]), validation_rows=len(r.texts[1]), labels=(),
                          model=config.start, device=r.accelerator.device.type, precision=r.precision.name,
                          num_processes=r.accelerator.num_processes, notes=r.notes))
    r.budget = Budget(config, len(r.loader))  # the clock starts with the first step, as in fine-tuning
    try:
        counts = yield from _steps(r, should_stop, snapshots, emit)
        yield from _finish(r, counts, texts, source, owner, workspace, history, emit)
    finally:
        r = None
        free_memory()


def _start(config: PretrainConfig, texts: list[str]) -> Run:
    """The model, the packed sequences, the fixed held-out masks, the optimizer and the budget's schedule."""
    accelerator = Accelerator()
    device = accelerator.device
    rng = TorchRng(config.seed, device)
    train_texts, held_texts = corpus.split_texts(texts, config.held_out, config.seed)
    with rng:
        tokenizer, model, notes = build(config, train_texts)
    nsp = config.objective == "mlm+nsp"
    if nsp:
        sequences = corpus.sentence_pairs(train_texts, tokenizer, config.max_length, config.seed)
        held = corpus.sentence_pairs(held_texts, tokenizer, config.max_length, config.seed + 1) \
            if len(held_texts) >= corpus.MIN_TEXTS else sequences[:EVAL_BATCH]
    else:
        # Only a BERT numbers positions from 0 without an offset, as the restarted position_ids assume.
        isolate = config.isolate_texts and has_fast_head(model)
        sequences = corpus.pack(train_texts, tokenizer, config.max_length, offsets=config.whole_word_mask,
                                isolate=isolate)
        held = corpus.pack(held_texts, tokenizer, config.max_length, offsets=config.whole_word_mask,
                           isolate=isolate)
    precision = precision_strategy(config.precision, accelerator, model)
    collator = PretrainCollator(tokenizer, config.mask_probability, config.whole_word_mask, seed=config.seed)
    loader = DataLoader(sequences, batch_size=max(1, min(config.batch_size, len(sequences))), shuffle=True,
                        collate_fn=collator, generator=torch.Generator().manual_seed(config.seed))
    # Masks drawn once: every evaluation scores the same blanks, so the curve compares like with like.
    held_batches = list(DataLoader(held, batch_size=EVAL_BATCH, collate_fn=PretrainCollator(
        tokenizer, config.mask_probability, config.whole_word_mask, seed=config.seed + 1)))
    optimizer = torch.optim.AdamW(_param_groups(precision.named_trainable(), config.weight_decay),
                                  lr=config.peak_lr(), fused=device.type in ("cpu", "cuda"))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    budget = Budget(config, len(loader))
    run = Run(config=config, accelerator=accelerator, rng=rng, tokenizer=tokenizer, model=model,
              precision=precision, optimizer=optimizer, loader=loader, held_batches=held_batches, budget=budget,
              scheduler=None, texts=(train_texts, held_texts), sequences=len(sequences),
              notes=notes + (f"{len(sequences):,} sequences of up to {config.max_length} word-pieces "
                             f"({'sentence pairs' if nsp else 'packed'}) from {len(train_texts):,} texts; "
                             f"{len(held_texts):,} texts held out",))
    run.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: run.budget.lr_factor())
    return run


def _steps(r: Run, should_stop: Callable[[], bool], snapshots: Workspace | None, emit) -> Iterator[Event]:
    """Steps until the budget is spent or Stop; returns {"step", "seen", "real", "padded", "cancelled", "best"}."""
    r.scheduler.base_lrs = [r.config.peak_lr() for _ in r.scheduler.base_lrs]
    c = {"step": 0, "seen": 0, "real": 0, "padded": 0, "cancelled": False, "best": None}
    evals_done = last_eval = 0
    r.model.train()
    while r.budget.progress() < 1.0 and not c["cancelled"]:
        for batch in r.loader:
            if should_stop():
                c["cancelled"] = True
                break
            c["step"] = step = c["step"] + 1
            loss = _step(r, batch, step)
            c["seen"] += len(batch["input_ids"])
            c["real"] += int((batch["input_ids"] != r.tokenizer.pad_token_id).sum())
            c["padded"] += batch["input_ids"].numel()
            elapsed = r.budget.elapsed()
            yield emit(StepEvent(step=step, total_steps=r.budget.estimated_steps(), epoch=step / len(r.loader),
                                 loss=loss, learning_rate=r.scheduler.get_last_lr()[0],
                                 examples_per_s=c["seen"] / elapsed if elapsed else 0.0, elapsed_s=elapsed,
                                 eta_s=max(0.0, elapsed / r.budget.progress() - elapsed)))
            done = r.budget.progress() >= 1.0
            if done or r.budget.progress() >= (evals_done + 1) / r.config.evals:
                evals_done, last_eval = evals_done + 1, step
                event, c["best"] = _evaluate(r, step, c["best"])
                if snapshots is not None:
                    _snapshot(r.accelerator.unwrap_model(r.model), r.tokenizer, snapshots, step)
                yield emit(event)
            if done:
                break
    if c["cancelled"] and c["step"] > last_eval:  # keep what the steps since the last evaluation learned
        event, c["best"] = _evaluate(r, c["step"], c["best"])
        yield emit(event)
    return c


def _step(r: Run, batch: dict, step: int) -> float:
    with r.rng:  # dropout draws from this run's state only
        with r.precision.autocast():
            loss, _ = masked_lm_loss(r.model, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise ValueError(f"The loss became {value} at step {step}: lower the learning rate (now "
                             f"{r.config.peak_lr():g}), or use precision fp32.")
        r.precision.backward(loss)
    r.precision.step(r.optimizer, MAX_GRAD_NORM)
    r.optimizer.zero_grad(set_to_none=True)
    r.budget.step = step
    r.scheduler.step()
    return value


def _finish(r: Run, c: dict, texts: list[str], source: str, owner: str, workspace, history: list[dict],
            emit) -> Iterator[Event]:
    """Save the best weights (on the main process) and end with ``DoneEvent`` or ``CancelledEvent``."""
    seconds = r.budget.elapsed()
    best, path = c["best"], None
    if best is not None and r.accelerator.is_main_process:
        unwrapped = r.accelerator.unwrap_model(r.model)
        r.precision.restore(unwrapped, best[1])
        info = _info(r, texts, source, owner, c, seconds, best[2], "stopped" if c["cancelled"] else "complete")
        path = save_pretrained(workspace, model=unwrapped, tokenizer=r.tokenizer, info=info, events=history)
    if c["cancelled"]:
        yield emit(CancelledEvent(step=c["step"], run_dir=str(path) if path else None))
        return
    stats = best[2] if best else {}
    yield DoneEvent(run_dir=str(path) if path else None,
                    metrics={"mlm_loss": stats.get("loss"), "mlm_accuracy": stats.get("accuracy"),
                             "nsp_accuracy": stats.get("nsp_accuracy"), "steps": c["step"], "tokens": c["real"],
                             "tokens_per_s": c["real"] / seconds if seconds else 0.0},
                    train_seconds=seconds, examples_per_s=c["seen"] / seconds if seconds else 0.0,
                    stopped_early=False, real_tokens=c["real"], padded_tokens=c["padded"])


@torch.no_grad()
def _evaluate(r: Run, step: int, best):
    """Held-out MLM loss (mean over the masked positions) and accuracy; the best state kept by loss."""
    model, precision, device = r.model, r.precision, r.accelerator.device
    model.eval()
    total_loss = correct = masked = nsp_correct = nsp_total = 0.0
    for batch in r.held_batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with precision.autocast():
            loss, stats = masked_lm_loss(model, batch)
        n = int(stats["masked"])
        total_loss += float(loss) * n  # with NSP the loss holds both; reported as one number, as BERT did
        correct += int(stats["correct"])
        masked += n
        nsp_correct += int(stats.get("nsp_correct", 0))
        nsp_total += int(stats.get("nsp_total", 0))
    model.train()
    result = {"loss": total_loss / max(1, masked), "accuracy": correct / max(1, masked),
              "nsp_accuracy": nsp_correct / nsp_total if nsp_total else None}
    better = best is None or result["loss"] < best[0]
    if better:
        best = (result["loss"], precision.snapshot(), result)
    return EvalEvent(step=step, epoch=step / len(r.loader), val_loss=result["loss"], accuracy=result["accuracy"],
                     macro_f1=result["accuracy"], is_best=better, objective="mlm"), best


def _snapshot(model, tokenizer, snapshots: Workspace, step: int) -> None:
    """The weights as they are now, for the fill-the-mask box; older snapshots are dropped once it is whole."""
    older = [p for p in snapshots.root.iterdir() if not p.name.startswith(".")] if snapshots.root.is_dir() else []
    with snapshots.staging(f"step-{step:07d}") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    for path in older:
        snapshots.remove(path)


def latest_snapshot(snapshots: Workspace) -> Path | None:
    root = snapshots.root
    whole = sorted(p for p in root.iterdir() if p.name.startswith("step-")) if root.is_dir() else []
    return whole[-1] if whole else None


def _info(r: Run, texts: list[str], source: str, owner: str, c: dict, seconds: float, held: dict,
          status: str) -> dict:
    from bertdemo.runs import now_iso

    config, held_texts = r.config, r.texts[1]

    layers, hidden, heads = config.shape()
    return {"created": now_iso(), "status": status, "owner": owner, "start": config.start,
            "size": config.size if config.start == "scratch" else "continued",
            "shape": f"{layers} layers × hidden {hidden} × {heads} heads" if config.start == "scratch" else
            config.start, "objective": config.objective, "whole_word_mask": config.whole_word_mask,
            "texts": len(texts), "held_out_texts": len(held_texts), "source": source,
            "fingerprint": corpus.fingerprint(texts), "steps": c["step"], "sequences": r.sequences,
            "batch_size": config.batch_size, "max_length": config.max_length, "tokens": c["real"],
            "seconds": round(seconds, 1), "device": r.accelerator.device.type, "precision": r.precision.name,
            "held_out": held,
            "config": config.to_dict()}
