"""Micro-benchmarks of the training-speed levers, one knob at a time, on real batches of a real data set.

Not an end-to-end comparison (that is ``train_bench.py``): each lever is timed on the bare training step
(forward + backward + clip + optimizer step) of the default model, so its gain is visible above the noise.

    python bench/explore/levers.py padding --data sst2            # padding share per batching strategy (no model)
    python bench/explore/levers.py step --data trec --rounds 3    # ms per step, one lever varied at a time
    python bench/explore/levers.py tokenize --data sst2           # tokenizing once vs per batch
    python bench/explore/levers.py accuracy --data trec --vary freeze_word_embeddings=true,false
                                                          # the engine's own train(): accuracy and speed per value
    python bench/explore/levers.py engine-step --data trec --vary dropout=model,0 --steps 40
                                                          # the engine's own training step per value, paired

Levers take their steps in turn (A, B, C, A, B, C, ...), so drift on a shared machine hits all of them
alike; levers that batch like the baseline also get a paired speed-up (median over the same rows).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # bench/, for common.py
from common import engine_defaults, model_path, read_labeled, resolve_data, token_lengths  # noqa: E402

BASELINE = {  # the stock Trainer's step: what each lever is measured against
    "precision": "bf16",  # bf16 | fp32 (autocast; weights and AdamW state stay fp32)
    "batching": "random",  # random | grouped (megabatches of 50 sorted, HF-style) | sorted | max_length
    "embeddings": "train",  # train (dense AdamW) | frozen (no grad) | sparse (sparse grad + SparseAdam)
    "optimizer": "fused",  # fused (the Trainer's adamw_torch_fused) | foreach | forloop (torch's CPU default)
    "batch_size": 32,
    "threads": 0,  # 0: all cores
    "attn": "sdpa",  # sdpa | eager
}
LEVERS = [  # (name, changes from BASELINE)
    ("baseline (Trainer-like)", {}),
    ("fp32", {"precision": "fp32"}),
    ("max_length padding, fp32", {"precision": "fp32", "batching": "max_length"}),
    ("grouped batches", {"batching": "grouped"}),
    ("sorted batches", {"batching": "sorted"}),
    ("frozen word embeddings", {"embeddings": "frozen"}),
    ("sparse word-embedding grads", {"embeddings": "sparse"}),
    ("foreach AdamW", {"optimizer": "foreach"}),
    ("for-loop AdamW (torch default on CPU)", {"optimizer": "forloop"}),
    ("1 thread", {"threads": 1}),
    ("2 threads", {"threads": 2}),
    ("batch 16", {"batch_size": 16}),
    ("batch 64", {"batch_size": 64}),
    ("eager attention", {"attn": "eager"}),
    ("grouped + frozen", {"batching": "grouped", "embeddings": "frozen"}),
    ("engine now: grouped + frozen, for-loop AdamW", {"batching": "grouped", "embeddings": "frozen",
                                                      "optimizer": "forloop"}),
    ("grouped + frozen, batch 64", {"batching": "grouped", "embeddings": "frozen", "batch_size": 64}),
]

# helpers


def batches_of(lengths: np.ndarray, batch_size: int, batching: str, seed: int) -> list[np.ndarray]:
    """Index batches of one epoch under a batching strategy, drawn by the samplers training uses."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from bertdemo.training.loaders import LengthBucketBatchSampler

    if batching == "sorted":  # the engine's own length buckets
        return [np.asarray(b) for b in LengthBucketBatchSampler(lengths, batch_size, seed)]
    if batching == "grouped":  # transformers' megabatches, as the engine's "grouped" and the Trainer use them
        order = np.fromiter(LengthGroupedSampler(batch_size, lengths=lengths.tolist(),
                                                 generator=torch.Generator().manual_seed(seed)), dtype=np.int64)
    else:  # "random", and "max_length" (random order, every text padded to max_length)
        order = np.random.default_rng(seed).permutation(len(lengths))
    return np.split(order, range(batch_size, len(order), batch_size))


def padding_share(lengths: np.ndarray, batches: list[np.ndarray], batching: str, max_length: int) -> float:
    real = lengths.sum()
    if batching == "max_length":
        total = len(lengths) * max_length
    else:
        total = sum(len(b) * lengths[b].max() for b in batches)
    return float(1 - real / total)


def load_texts(data: list[str], rows: int, seed: int) -> tuple[list[str], list[str]]:
    train, _, default_rows = resolve_data(data)
    texts, labels = read_labeled(train)
    rows = rows or default_rows or len(texts)
    if rows < len(texts):
        keep = random.Random(seed).sample(range(len(texts)), rows)
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return texts, labels


# commands


def cmd_padding(args) -> dict:
    from transformers import AutoTokenizer

    texts, _ = load_texts(args.data, args.rows, args.seed)
    lengths = token_lengths(texts, AutoTokenizer.from_pretrained(model_path()), args.max_length)
    out = {"rows": len(texts), "mean_tokens": float(lengths.mean()), "p95_tokens": float(np.percentile(lengths, 95))}
    for batch_size in (16, 32, 64):
        for batching in ("random", "grouped", "sorted", "max_length"):
            share = padding_share(lengths, batches_of(lengths, batch_size, batching, args.seed), batching,
                                  args.max_length)
            out[f"bs{batch_size}/{batching}"] = round(share, 4)
    return out


class StepBench:
    """One model and tokenized data set; times training steps under a lever configuration."""

    def __init__(self, texts, labels, max_length: int, seed: int):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        torch.manual_seed(seed)
        path = model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        names = sorted(set(labels))
        self.labels = torch.tensor([names.index(x) for x in labels])
        self.ids = self.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        self.lengths = np.array([len(x) for x in self.ids])
        self.max_length, self.seed = max_length, seed
        self.models = {attn: AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(names), attn_implementation=attn) for attn in ("sdpa", "eager")}
        for model in self.models.values():
            model.train()
        self.optimizers: dict = {}

    def batch(self, index, pad_to: int | None):
        import torch

        width = pad_to or int(self.lengths[index].max())
        ids = torch.zeros(len(index), width, dtype=torch.long)  # (B, T); [PAD] is id 0 in BERT vocabularies
        mask = torch.zeros(len(index), width, dtype=torch.long)
        for row, i in enumerate(index):
            ids[row, :self.lengths[i]] = torch.tensor(self.ids[i])
            mask[row, :self.lengths[i]] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": self.labels[index]}

    def optimizer(self, cfg: dict):
        import torch

        key = (cfg["attn"], cfg["embeddings"], cfg["optimizer"])
        if key not in self.optimizers:
            model = self.models[cfg["attn"]]
            emb = model.get_input_embeddings()
            rest = [p for n, p in model.named_parameters() if p is not emb.weight]
            kind = {"fused": {"fused": True}, "foreach": {"foreach": True},
                    "forloop": {"foreach": False, "fused": False}}[cfg["optimizer"]]
            opts = [torch.optim.AdamW(rest, lr=1e-5, weight_decay=0.01, **kind)]
            if cfg["embeddings"] == "train":
                opts[0].add_param_group({"params": [emb.weight]})
            elif cfg["embeddings"] == "sparse":
                opts.append(torch.optim.SparseAdam([emb.weight], lr=1e-5))
            self.optimizers[key] = opts
        return self.optimizers[key]

    def step(self, cfg: dict, index: np.ndarray) -> tuple[float, float]:
        """One training step under ``cfg`` on the rows ``index``: (forward+backward s, clip+optimizer s)."""
        import torch

        torch.set_num_threads(cfg["threads"] or os.cpu_count())
        model = self.models[cfg["attn"]]
        emb = model.get_input_embeddings()
        emb.weight.requires_grad_(cfg["embeddings"] != "frozen")
        emb.sparse = cfg["embeddings"] == "sparse"
        opts = self.optimizer(cfg)
        batch = self.batch(index, self.max_length if cfg["batching"] == "max_length" else None)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg["precision"] == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        middle = time.perf_counter()
        dense = [p for p in model.parameters() if p.grad is not None and not p.grad.is_sparse]
        torch.nn.utils.clip_grad_norm_(dense, 1.0)
        for opt in opts:
            opt.step()
            opt.zero_grad(set_to_none=True)
        return middle - start, time.perf_counter() - middle


def cmd_step(args) -> dict:
    """Every lever takes one step in turn (lever A, B, C, A, B, C, ...), so a busy neighbour slows all alike.

    ``paired_speedup`` is the median over steps of baseline time / lever time on the *same* rows; it exists
    only for levers that batch like the baseline, and shrugs off the spikes a shared machine adds.
    """
    texts, labels = load_texts(args.data, args.rows, args.seed)
    bench = StepBench(texts, labels, args.max_length, args.seed)
    base = {**BASELINE, "threads": args.threads}
    levers = [(name, {**base, **changes}) for name, changes in LEVERS
              if not args.only or any(word in name for word in args.only.split(","))]
    n_steps = args.steps * args.rounds
    picks, times = {}, {name: [] for name, _ in levers}
    for name, cfg in levers:
        epoch = batches_of(bench.lengths, cfg["batch_size"], cfg["batching"], args.seed)
        rng = random.Random(args.seed)  # the same positions in every lever's epoch
        picks[name] = [epoch[rng.randrange(len(epoch))] for _ in range(n_steps)]
        for index in picks[name][:2]:  # warm-up: kernel selection, optimizer state
            bench.step(cfg, index)
    for k in range(n_steps):
        for name, cfg in levers:
            times[name].append(bench.step(cfg, picks[name][k]))
        if (k + 1) % args.steps == 0:
            print(f"{k + 1}/{n_steps} steps: " + ", ".join(
                f"{name} {1000 * np.mean([sum(t) for t in times[name]]):.0f}" for name, _ in levers) + " ms/step",
                  file=sys.stderr)
    out = {}
    base_name, base_cfg = levers[0]
    base_total = [sum(t) for t in times[base_name]]
    for name, cfg in levers:
        fwd = np.array([t[0] for t in times[name]])
        opt = np.array([t[1] for t in times[name]])
        examples = sum(len(i) for i in picks[name])
        real = sum(int(bench.lengths[i].sum()) for i in picks[name])
        row = {"ms_per_step": 1000 * (fwd + opt).mean(), "median_ms_per_step": 1000 * np.median(fwd + opt),
               "fwd_bwd_ms": 1000 * np.median(fwd), "optimizer_ms": 1000 * np.median(opt),
               "examples_per_s": examples / (fwd + opt).sum(), "real_tokens_per_s": real / (fwd + opt).sum()}
        row["speedup_vs_baseline"] = row["examples_per_s"] / (sum(len(i) for i in picks[base_name]) / sum(base_total))
        if (cfg["batching"], cfg["batch_size"]) == (base_cfg["batching"], base_cfg["batch_size"]):
            row["paired_speedup"] = float(np.median(np.array(base_total) / (fwd + opt)))
        row["padding_share"] = padding_share(bench.lengths, batches_of(bench.lengths, cfg["batch_size"],
                                                                         cfg["batching"], args.seed),
                                             cfg["batching"], args.max_length)
        out[name] = {k: round(v, 3) for k, v in row.items()}
    return out


def _parse_field(field: str, value: str):
    kind = type(engine_defaults()[field])
    if field == "dropout":
        from bertdemo.cli import parse_dropout

        return parse_dropout(value)  # a rate, or "model" for the model's own, exactly as the CLI reads it
    if kind is bool:
        return value.lower() in ("1", "true", "yes")
    return kind(value)


def _forever(loader):
    while True:
        yield from loader


def cmd_engine_step(args) -> dict:
    """The engine's own training step (``bertdemo.training.session``: ``start_session`` + ``training_step``) for each
    value of one TrainConfig
    field, the sessions stepping in turn on the same batches (same seed, same batch order): a paired speed-up
    of exactly the code ``train()`` runs."""
    import dataclasses as dc

    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data
    from bertdemo.training.session import start_session, training_step

    field, _, values = args.vary.partition("=")
    train_path, _, default_rows = resolve_data(args.data)
    data = load_data(train_path, TrainConfig(max_train_rows=args.rows or default_rows, seed=args.seed))
    sessions = {}
    for value in values.split(","):
        config = dc.replace(TrainConfig(seed=args.seed), **{field: _parse_field(field, value)})
        session = start_session(config, data)
        session.model.train()
        sessions[f"{field}={value}"] = (session, _forever(session.loader), config.max_grad_norm)
    times = {name: [] for name in sessions}
    for k in range(args.steps + 3):
        for name, (session, batches, clip) in sessions.items():
            batch = next(batches)
            start = time.perf_counter()
            training_step(session, batch, clip)
            if k >= 3:  # the first steps pick kernels and build optimizer state
                times[name].append(time.perf_counter() - start)
    base = np.array(next(iter(times.values())))
    out = {name: {"median_ms_per_step": round(1000 * float(np.median(t)), 1),
                  "paired_speedup": round(float(np.median(base / np.array(t))), 3)} for name, t in times.items()}
    print(json.dumps(out), file=sys.stderr)
    return out


def cmd_tokenize(args) -> dict:
    from transformers import AutoTokenizer

    texts, _ = load_texts(args.data, args.rows, args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    start = time.perf_counter()
    tokenizer(texts, truncation=True, max_length=args.max_length)
    once = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, len(texts), 32):
        tokenizer(texts[i:i + 32], truncation=True, max_length=args.max_length, padding=True, return_tensors="pt")
    per_batch = time.perf_counter() - start
    return {"rows": len(texts), "once_s": round(once, 3), "per_batch_s": round(per_batch, 3)}


def cmd_accuracy(args) -> dict:
    """Train with the engine's own ``train()`` for each value of one TrainConfig field; test-set scores."""
    import tempfile

    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data
    from bertdemo.events import DoneEvent
    from bertdemo.inference.predict import Predictor
    from bertdemo.training import train
    from common import scores

    field, _, values = args.vary.partition("=")
    train_path, test_path, default_rows = resolve_data(args.data)
    test_texts, test_labels = read_labeled(test_path)
    data = load_data(train_path, TrainConfig(max_train_rows=args.rows or default_rows, seed=args.seed))
    out = {}
    for value in [_parse_field(field, v) for v in values.split(",")]:
        config = dataclasses.replace(TrainConfig(seed=args.seed, **({"epochs": args.epochs} if args.epochs else {})),
                                     **{field: value})
        with tempfile.TemporaryDirectory(prefix="bench-levers-") as workspace:
            done = [e for e in train(config, data, workspace=workspace) if isinstance(e, DoneEvent)][-1]
            predictor = Predictor.from_run(done.run_dir)
            probs = predictor.predict_proba(test_texts)
            predicted = [predictor.labels[i] for i in probs.argmax(1)]
        out[f"{field}={value}"] = {"test": scores(test_labels, predicted), "train_seconds": done.train_seconds,
                                   "examples_per_s": done.examples_per_s, "stopped_early": done.stopped_early,
                                   "validation_macro_f1": done.metrics.get("macro_f1")}
        print(json.dumps({f"{field}={value}": out[f"{field}={value}"]}), file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["padding", "step", "engine-step", "tokenize", "accuracy"])
    parser.add_argument("--data", nargs="+", default=["sst2"], help="sst2, trec, or TRAIN TEST")
    parser.add_argument("--rows", type=int, default=0, help="training rows (0: the data set's default)")
    parser.add_argument("--max-length", type=int, default=engine_defaults()["max_length"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--steps", type=int, default=8,
                        help="steps per lever between progress lines (step); timed steps per value (engine-step)")
    parser.add_argument("--rounds", type=int, default=3, help="timed steps per lever = steps × rounds (step)")
    parser.add_argument("--threads", type=int, default=0, help="the baseline's torch threads (0: all cores)")
    parser.add_argument("--only", default="", help="comma-separated words: time only levers whose name has one")
    parser.add_argument("--vary", default="freeze_word_embeddings=true,false",
                        help="FIELD=V1,V2 (accuracy, engine-step); dropout takes a rate or 'model'")
    parser.add_argument("--epochs", type=int, default=0, help="epochs for accuracy (0: engine default)")
    parser.add_argument("--out", default="", help="also write the JSON here")
    args = parser.parse_args()
    result = {"command": args.command, "data": args.data, "rows": args.rows,
              "result": globals()[f"cmd_{args.command.replace('-', '_')}"](args)}
    text = json.dumps(result, indent=1)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
