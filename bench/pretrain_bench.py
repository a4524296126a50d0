"""Pretraining speed (issue 16): bertdemo's pretraining engine against the stock Hugging Face MLM recipe, side
by side in one run on one machine, to the same held-out masked-LM loss.

  ours   ``bertdemo.pretraining``: texts packed into full 128-piece sequences (``corpus.pack``), each text
         attending only to itself, the output layer computed on the masked positions only
         (``masking.masked_lm_loss``), a time-tied linear schedule; the engine's default size and batch.
  stock  ``BertForMaskedLM`` + each text tokenized on its own (truncated at max_length, not packed) +
         ``DataCollatorForLanguageModeling(mlm_probability=0.15)`` + ``Trainer`` (linear schedule over max_steps).

Both arms start from the same weights (one scratch BERT of the engine's default shape, the WordPiece vocabulary
the engine learns from the training texts), train on the same texts in fp32 with the same learning rate, about
the same real tokens per step (ours: 8 packed sequences of 128; stock: 32 texts, each padded on its own), warmup
share, weight decay and gradient clip, for the same wall-clock training time. The stock arm's
max_steps comes from a short throughput probe, so that its linear schedule ends near the budget; the engine's
schedule is tied to the budget itself. Evaluation never counts: both clocks (and the engine's schedule clock)
pause while the held-out set is scored.

Held out: the same texts for both arms, each on its own (unpacked, so neutral to the stock arm), masks drawn once
by a seeded ``DataCollatorForLanguageModeling``; loss = mean cross-entropy over the masked positions (the full
vocabulary projection, for both). The target is the stock arm's final held-out loss; the speed-up is the stock
arm's seconds to it over ours (linear interpolation between evaluations). Not a tuning harness: the stock arm
runs as its recipe is written.

    python bench/pretrain_bench.py                                  # the issue 16 report (~7 minutes on 2 cores)
    python bench/pretrain_bench.py --texts 2000 --seconds 15 --probe-seconds 4 --out /tmp/smoke.json   # smoke
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hw  # noqa: E402
from common import REPO  # noqa: E402  (also puts the repo on sys.path)
from peers import CountingCollator  # noqa: E402

DATA = REPO.parent / "shared/data/tnews/train.csv"
EVAL_BATCH = 64
IGNORE = -100
TABLE_COLUMNS = [  # (key, header, format)
    ("steps", "steps", "{:,}"), ("train_seconds", "train s", "{:.1f}"),
    ("real_tokens_per_s", "real tokens/s", "{:,.0f}"), ("padding_share", "padding", "{:.1%}"),
    ("final_loss", "final held-out loss", "{:.3f}"), ("final_accuracy", "masked acc.", "{:.3f}"),
    ("seconds_to_target", "s to target", "{:.1f}"),
]

# helpers


def load_texts(path: Path, count: int, held_out: int, seed: int) -> tuple[list[str], list[str]]:
    """(train, held out): a seeded sample of ``count`` distinct texts of the file, ``held_out`` of them aside."""
    from bertdemo.pretraining.corpus import read_texts

    if not path.is_file():
        raise SystemExit(f"{path} is missing: this benchmark pretrains on the TNEWS titles "
                         "(../shared/data/tnews/train.csv, column text). Put the file there or pass --data PATH.")
    texts = read_texts(path, "text")
    if len(texts) < count:
        raise SystemExit(f"{path} has {len(texts):,} distinct texts; --texts asks for {count:,}. Lower --texts.")
    sample = random.Random(seed).sample(texts, count)
    return sample[held_out:], sample[:held_out]


def held_out_batches(texts: list[str], tokenizer, max_length: int, seed: int) -> list[dict]:
    """Each held-out text on its own, masked once by a seeded stock collator: every evaluation scores the same
    blanks, so the curves of both arms compare like with like."""
    from transformers import DataCollatorForLanguageModeling

    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_special_tokens_mask=True)
    features = [{"input_ids": ids, "special_tokens_mask": special}
                for ids, special in zip(encoded["input_ids"], encoded["special_tokens_mask"])]
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)
    return [collate(features[i:i + EVAL_BATCH]) for i in range(0, len(features), EVAL_BATCH)]


@torch.no_grad()
def held_out_score(model: torch.nn.Module, batches: list[dict]) -> dict:
    """{"loss", "accuracy"} over the masked positions of ``batches``, the whole model's logits for both arms."""
    was_training = model.training
    model.eval()
    total = correct = masked = 0.0
    for batch in batches:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
        chosen = batch["labels"] != IGNORE  # (B, T)
        picked, targets = logits[chosen], batch["labels"][chosen]  # (M, V), (M,)
        total += float(torch.nn.functional.cross_entropy(picked, targets, reduction="sum"))
        correct += int((picked.argmax(-1) == targets).sum())
        masked += targets.numel()
    model.train(was_training)
    return {"loss": total / masked, "accuracy": correct / masked}


def seconds_to(curve: list[dict], target: float) -> float | None:
    """First training second at which the held-out loss reaches ``target`` (linear between evaluations)."""
    for before, after in zip(curve, curve[1:]):
        if after["loss"] <= target:
            if before["loss"] <= target:
                return before["seconds"]
            share = (before["loss"] - target) / (before["loss"] - after["loss"])
            return before["seconds"] + share * (after["seconds"] - before["seconds"])
    return None


# the two arms


def run_ours(run, batches: list[dict], evals: int) -> dict:
    """The engine's own steps (``loop._step`` over ``run.loader``, as ``loop._steps`` drives them), scored at
    ``evals`` shares of the budget; the schedule's clock is paused while scoring, so it holds training only."""
    from bertdemo.pretraining.loop import Budget, _step

    model = run.accelerator.unwrap_model(run.model)
    curve = [{"step": 0, "seconds": 0.0, "tokens": 0, **held_out_score(model, batches)}]
    run.scheduler.base_lrs = [run.config.peak_lr() for _ in run.scheduler.base_lrs]  # as loop._steps does
    run.budget = Budget(run.config, len(run.loader))  # the clock starts with the first step, as in pretrain()
    step = real = padded = scored = 0
    run.model.train()
    while run.budget.progress() < 1.0:
        for batch in run.loader:
            step += 1
            _step(run, batch, step)
            real += int((batch["input_ids"] != run.tokenizer.pad_token_id).sum())
            padded += batch["input_ids"].numel()
            progress = run.budget.progress()
            if progress >= 1.0 or progress >= (scored + 1) / evals:
                scored += 1
                seconds, paused = run.budget.elapsed(), time.perf_counter()
                curve.append({"step": step, "seconds": seconds, "tokens": real, **held_out_score(model, batches)})
                run.budget.started += time.perf_counter() - paused  # scoring time is not the schedule's
            if progress >= 1.0:
                break
    seconds = run.budget.elapsed()
    return {"steps": step, "train_seconds": seconds, "real_tokens": real, "padded_tokens": padded,
            "sequences": run.sequences, "curve": curve}


def stock_callback(batches: list[dict], max_steps: int, evals: int, limit_s: float = 0.0):
    """A ``TrainerCallback`` holding the training clock (paused while it scores) and the held-out curve; with
    ``limit_s`` it stops training after that many seconds instead (the throughput probe)."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.start = self.paused = 0.0
            self.scored, self.curve = 0, []

        def elapsed(self) -> float:
            return time.perf_counter() - self.start - self.paused

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kwargs):
            step = state.global_step
            if limit_s:
                control.should_training_stop = self.elapsed() >= limit_s
                self.curve = [{"step": step, "seconds": self.elapsed()}]
            elif step >= max_steps or step >= (self.scored + 1) / evals * max_steps:
                self.scored += 1
                seconds, paused = self.elapsed(), time.perf_counter()
                self.curve.append({"step": step, "seconds": seconds, "tokens": state.num_input_tokens_seen,
                                   **held_out_score(model, batches)})
                self.paused += time.perf_counter() - paused

    return Clock()


def train_stock(initial: torch.nn.Module, features: list[dict], tokenizer, hp: dict, max_steps: int,
                clock, scratch: str) -> CountingCollator:
    """The stock recipe on a copy of ``initial``: ``Trainer`` + ``DataCollatorForLanguageModeling``."""
    from transformers import DataCollatorForLanguageModeling, PrinterCallback, Trainer, TrainingArguments

    collator = CountingCollator(DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15))
    args = TrainingArguments(
        output_dir=scratch, per_device_train_batch_size=hp["stock_batch_size"], learning_rate=hp["learning_rate"],
        warmup_steps=hp["warmup_ratio"],  # a float below 1 is a share of max_steps in transformers 5
        lr_scheduler_type="linear", weight_decay=hp["weight_decay"], max_grad_norm=hp["max_grad_norm"],
        max_steps=max_steps, report_to=[], save_strategy="no", eval_strategy="no", use_cpu=True,
        logging_steps=max(1, max_steps // 10), seed=hp["seed"], disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False)  # keep special_tokens_mask: the collator skips recomputing it (run_mlm.py)
    trainer = Trainer(model=copy.deepcopy(initial), args=args, train_dataset=features, data_collator=collator,
                      callbacks=[clock])
    trainer.remove_callback(PrinterCallback)  # the loss log dicts would bury the table
    trainer.train()
    return collator


def run_stock(initial: torch.nn.Module, texts: list[str], tokenizer, hp: dict, batches: list[dict],
              seconds: float, probe_s: float, evals: int, scratch: str) -> dict:
    """Probe the recipe's steps/s, then train it for the steps ``seconds`` hold, scored at ``evals`` shares."""
    encoded = tokenizer(texts, truncation=True, max_length=hp["max_length"], return_special_tokens_mask=True)
    features = [{"input_ids": ids, "special_tokens_mask": special}
                for ids, special in zip(encoded["input_ids"], encoded["special_tokens_mask"])]
    probe = stock_callback(batches, 10**6, evals, limit_s=probe_s)
    train_stock(initial, features, tokenizer, hp, 10**6, probe, scratch)
    probe_rate = probe.curve[-1]["step"] / probe.curve[-1]["seconds"]
    max_steps = max(evals, round(probe_rate * seconds))
    print(f"stock probe: {probe_rate:.2f} steps/s over {probe.curve[-1]['seconds']:.1f} s -> max_steps {max_steps}",
          file=sys.stderr)
    clock = stock_callback(batches, max_steps, evals)
    clock.curve.append({"step": 0, "seconds": 0.0, "tokens": 0, **held_out_score(initial, batches)})
    collator = train_stock(initial, features, tokenizer, hp, max_steps, clock, scratch)
    last = clock.curve[-1]
    return {"steps": last["step"], "train_seconds": last["seconds"], "real_tokens": last["tokens"],
            "padded_tokens": collator.padded_tokens, "collated_real_tokens": collator.real_tokens,
            "probe_steps_per_s": probe_rate, "max_steps": max_steps, "curve": clock.curve}


# report


def summarise(ours: dict, stock: dict) -> dict:
    """Per-arm rates and final scores, the target (the stock arm's final loss) and the speed-ups."""
    target = stock["curve"][-1]["loss"]
    for arm in (ours, stock):
        arm["real_tokens_per_s"] = arm["real_tokens"] / arm["train_seconds"]
        arm["padding_share"] = 1 - arm.get("collated_real_tokens", arm["real_tokens"]) / arm["padded_tokens"]
        arm["final_loss"], arm["final_accuracy"] = arm["curve"][-1]["loss"], arm["curve"][-1]["accuracy"]
        arm["seconds_to_target"] = seconds_to(arm["curve"], target)
    reached = ours["seconds_to_target"] is not None
    return {"target_loss": target, "ours_reached_target": reached,
            "speedup_to_target": stock["seconds_to_target"] / ours["seconds_to_target"] if reached else None,
            "tokens_per_s_ratio": ours["real_tokens_per_s"] / stock["real_tokens_per_s"]}


def markdown(arms: dict, summary: dict) -> str:
    lines = ["| arm | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |", "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for name, arm in arms.items():
        cells = ["not reached" if arm[k] is None else fmt.format(arm[k]) for k, _, fmt in TABLE_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    speedup = summary["speedup_to_target"]
    lines.append(f"\ntarget loss {summary['target_loss']:.3f} (the stock arm's final); speed-up to it "
                 f"{'not reached by ours' if speedup is None else f'×{speedup:.2f}'}; real tokens/s "
                 f"×{summary['tokens_per_s_ratio']:.2f}")
    for name, arm in arms.items():
        points = ", ".join(f"{p['seconds']:.0f}s {p['loss']:.2f}" for p in arm["curve"])
        lines.append(f"{name} curve (train s, held-out loss): {points}")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA), help="CSV with a text column (default: TNEWS train.csv)")
    parser.add_argument("--texts", type=int, default=20_000, help="seeded sample of distinct texts (with held out)")
    parser.add_argument("--held-out", type=int, default=500, help="texts scored by both arms, never trained on")
    parser.add_argument("--seconds", type=float, default=150, help="training seconds for each arm")
    parser.add_argument("--probe-seconds", type=float, default=15, help="the stock arm's throughput probe")
    parser.add_argument("--evals", type=int, default=8, help="held-out evaluations per arm (plus one at step 0)")
    parser.add_argument("--size", default="", help="a PretrainConfig size: tiny, mini, small (default: the engine's)")
    parser.add_argument("--stock-batch-size", type=int, default=32,
                        help="the stock arm's texts per step (each padded on its own; ours: the engine's batch of "
                             "packed 128-piece sequences, about as many real tokens per step)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(REPO / "bench" / "pretrain_bench_result.json"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from bertdemo.pretraining.config import PretrainConfig
    from bertdemo.pretraining.loop import MAX_GRAD_NORM, _start

    load_before = os.getloadavg()
    train_texts, held_texts = load_texts(Path(args.data), args.texts, args.held_out, args.seed)
    # held_out at its floor: the engine sets a few texts aside for its own (unused) held-out batches; both arms
    # train on the engine's remaining texts, so they see the same ones.
    config = PretrainConfig(size=args.size or PretrainConfig.size, minutes=args.seconds / 60, held_out=1e-4, precision="fp32",
                            evals=args.evals, seed=args.seed)
    run = _start(config, train_texts)
    initial = copy.deepcopy(run.accelerator.unwrap_model(run.model))  # both arms start from these weights
    batches = held_out_batches(held_texts, run.tokenizer, config.max_length, args.seed + 1)
    hp = {"batch_size": config.batch_size, "stock_batch_size": args.stock_batch_size, "learning_rate": config.peak_lr(), "warmup_ratio": config.warmup_ratio,
          "weight_decay": config.weight_decay, "max_grad_norm": MAX_GRAD_NORM, "max_length": config.max_length,
          "seed": args.seed, "precision": "fp32", "size": config.size, "shape": config.shape(),
          "vocab": len(run.tokenizer)}
    print(f"machine: {hw.machine_line()}\nload average {load_before}; {len(run.texts[0]):,} training texts "
          f"({run.sequences:,} packed sequences), {len(held_texts):,} held out", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-pretrain-") as scratch:
        stock = run_stock(initial, run.texts[0], run.tokenizer, hp, batches, args.seconds, args.probe_seconds,
                          args.evals, scratch)
    print(f"stock: {stock['steps']} steps in {stock['train_seconds']:.1f} s", file=sys.stderr)
    ours = run_ours(run, batches, args.evals)
    print(f"ours: {ours['steps']} steps in {ours['train_seconds']:.1f} s", file=sys.stderr)
    summary = summarise(ours, stock)
    table = markdown({"ours": ours, "stock": stock}, summary)
    print(table)
    report = {"command": " ".join(["python", "bench/pretrain_bench.py", *sys.argv[1:]]),
              "machine": hw.machine_line(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "data": args.data, "train_texts": len(run.texts[0]), "held_out_texts": len(held_texts),
              "held_out_masked_tokens": int(sum((b["labels"] != IGNORE).sum() for b in batches)),
              "seconds_per_arm": args.seconds, "order": ["stock", "ours"], "hyperparameters": hp,
              "arms": {"ours": ours, "stock": stock}, "summary": summary, "table": table}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
