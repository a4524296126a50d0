"""Training speed of bertdemo's engine against the stock Hugging Face recipes, in one run on one machine.

Configurations (each run in its own subprocess, so memory starts clean and its peak RSS is its own):
  engine   ``python -m bertdemo train`` with the engine's defaults
  trainer  the stock ``Trainer`` + ``DataCollatorWithPadding`` (bench/peers.py), same precision as the engine
  padded   the same ``Trainer`` padding every text to max_length, fp32 (bench/peers.py)
  engine-embeddings   the engine with ``--train-embeddings`` (word embeddings updated too)
  engine-freezeN      the engine with ``--freeze-layers N`` (embeddings and the lowest N layers as pretrained)

All three train on the same rows (the engine's own seeded split of the training file; the engine checkpoints
on the held-out validation rows, the peers do not evaluate) with the same model, epochs, batch size, learning
rate, warmup and weight decay, read from ``bertdemo.config.TrainConfig``. Repeat r trains every configuration
with the r-th training seed (the data split stays fixed), so the median accuracy is over seeds, not one lucky
draw. Configurations alternate within each repeat and the medians over repeats are reported. Real tokens
(capped at max_length) are counted here, once, with the model's tokenizer; the padding share comes from the
batches each configuration built.

    python bench/train_bench.py --data sst2 --epochs 1 --out bench/out/train-sst2.json
    python bench/train_bench.py --data trec --out bench/out/train-trec.json
    python bench/train_bench.py --data trec --train-rows 500 --epochs 1 --repeats 1   # a quick smoke run
    python bench/train_bench.py --data trec --device cuda                            # the GPU report
"""
from __future__ import annotations

import argparse
import json
import re
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hw  # noqa: E402
from common import REPO, engine_defaults, median, model_path, read_labeled, resolve_data, token_lengths, write_split  # noqa: E402,E501
from bertdemo.config import PRECISIONS  # noqa: E402  (common puts the repository on the path)

CONFIGS = ("engine", "trainer", "padded", "engine-embeddings")
TABLE_COLUMNS = [  # (key, header, format)
    ("accuracy", "accuracy", "{:.4f}"), ("macro_f1", "macro-F1", "{:.4f}"),
    ("train_seconds", "train s", "{:.1f}"), ("examples_per_s", "examples/s", "{:.1f}"),
    ("real_tokens_per_s", "real tokens/s", "{:.0f}"), ("padding_share", "padding", "{:.1%}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"), ("mfu", "MFU", "{:.1%}"),
]

# helpers


def command(config: str, split: dict, test: str, hp: dict, device: str, workspace: str) -> list[str]:
    shared = ["--epochs", str(hp["epochs"]), "--batch-size", str(hp["batch_size"]), "--lr", str(hp["learning_rate"]),
              "--max-length", str(hp["max_length"]), "--seed", str(hp["seed"]), "--precision", hp["precision"]]
    if config.startswith("engine"):
        extra = ["--train-embeddings"] if config == "engine-embeddings" else []
        if config.startswith("engine-freeze"):
            extra = ["--freeze-layers", config.removeprefix("engine-freeze")]
        return [sys.executable, "-m", "bertdemo", "train", split["train"], "--validation", split["validation"],
                "--test", test, "--workspace", workspace, "--json", *shared, *extra]
    return [sys.executable, str(REPO / "bench" / "peers.py"), config, "--train", split["train"], "--test", test,
            "--warmup-ratio", str(hp["warmup_ratio"]), "--weight-decay", str(hp["weight_decay"]),
            "--device", device, "--json", *shared]


def run_child(cmd: list[str], log: Path, device: str) -> tuple[dict, float, float]:
    """Run one configuration; (its last-line JSON, peak RSS MB of the child, wall seconds)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the engine picks CUDA by itself when it sees one
    start = time.perf_counter()
    with open(log, "w") as err, tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # wait4, not wait(): it returns the child's own ru_maxrss
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.strip()]
    wall = time.perf_counter() - start
    if child.returncode != 0 or not lines:
        tail = log.read_text().strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {child.returncode}); log {log}:\n" + "\n".join(tail))
    return json.loads(lines[-1]), usage.ru_maxrss / 1024, wall


def normalise(config: str, raw: dict, rss_mb: float, wall: float, tokens: dict, peak_tflops: float) -> dict:
    """One row in the same units for every configuration."""
    train_rows = tokens["train_rows"]
    seconds = raw["train_seconds"]
    examples_per_s = raw["train_examples_per_s"]
    epochs_run = examples_per_s * seconds / train_rows  # < epochs when the engine stopped early
    real, padded = raw.get("real_tokens"), raw.get("padded_tokens")
    test = raw.get("test") or {}
    return {
        "config": config, "accuracy": test.get("accuracy"), "macro_f1": test.get("macro_f1"),
        "train_seconds": seconds, "examples_per_s": examples_per_s, "epochs_run": epochs_run,
        "real_tokens_per_s": tokens["real_tokens_per_epoch"] * epochs_run / seconds,
        "padding_share": (1 - real / padded) if real and padded else None,
        "peak_rss_mb": rss_mb, "wall_seconds": wall,
        "mfu": tokens["flops_per_epoch"] * epochs_run / seconds / (peak_tflops * 1e12),
        "raw": raw,
    }


def summarise(rows: list[dict], configs: list[str]) -> dict:
    summary = {}
    for config in configs:
        mine = [r for r in rows if r["config"] == config]
        summary[config] = {key: median([r[key] for r in mine]) for key, _, _ in TABLE_COLUMNS}
        summary[config]["runs"] = len(mine)
    if "engine" in summary:
        engine = summary["engine"]
        for peer in (c for c in configs if c != "engine"):
            other = summary[peer]
            summary[f"engine/{peer}"] = {
                "examples_per_s": engine["examples_per_s"] / other["examples_per_s"],
                "real_tokens_per_s": engine["real_tokens_per_s"] / other["real_tokens_per_s"],
                "accuracy_points": None if engine["accuracy"] is None or other["accuracy"] is None
                else 100 * (engine["accuracy"] - other["accuracy"]),
                "peak_rss": engine["peak_rss_mb"] / other["peak_rss_mb"],
            }
    return summary


def markdown(summary: dict, configs: list[str]) -> str:
    lines = ["| config | " + " | ".join(h for _, h, _ in TABLE_COLUMNS) + " |",
             "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for config in configs:
        cells = [("–" if summary[config][k] is None else fmt.format(summary[config][k])) for k, _, fmt in TABLE_COLUMNS]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    for key in (k for k in summary if k.startswith("engine/")):
        r = summary[key]
        acc = "–" if r["accuracy_points"] is None else f"{r['accuracy_points']:+.2f} pts"
        lines.append(f"\n{key}: examples/s ×{r['examples_per_s']:.2f}, real tokens/s ×{r['real_tokens_per_s']:.2f}, "
                     f"accuracy {acc}, peak RSS ×{r['peak_rss']:.2f}")
    return "\n".join(lines)


def main() -> None:
    defaults = engine_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["sst2"], help="sst2, trec, or two paths TRAIN TEST")
    parser.add_argument("--train-rows", type=int, default=None, help="seeded sample (default 20000 sst2, all trec)")
    parser.add_argument("--epochs", type=int, default=defaults["epochs"])
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--repeats", type=int, default=2, help="repeat r trains with seed --first-seed + r")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default=defaults["precision"], choices=list(PRECISIONS),
                        help="every configuration's (auto: bf16 where this machine has it); fp32 here stands in "
                             "for a CPU without bf16, the same matmul kernels at this machine's fp32 rate")
    parser.add_argument("--seed", type=int, default=defaults["seed"],
                        help="the data split's seed (and the first training seed unless --first-seed)")
    parser.add_argument("--first-seed", type=int, default=None,
                        help="training seed of the first repeat (more seeds on the same split: --first-seed 44)")
    parser.add_argument("--out", default="", help="JSON with every run (default bench/out/train-DATA-TIME.json)")
    args = parser.parse_args()

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = {c for c in configs if c not in CONFIGS and not re.fullmatch(r"engine-freeze\d+", c)}
    if unknown:
        raise SystemExit(f"--configs: unknown {sorted(unknown)}; choose from {', '.join(CONFIGS)}")
    train_path, test_path, default_rows = resolve_data(args.data)
    rows = default_rows if args.train_rows is None else args.train_rows
    hp = {**defaults, "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
          "precision": args.precision}
    name = args.data[0] if len(args.data) == 1 else Path(args.data[0]).parent.name
    out_path = Path(args.out or REPO / "bench" / "out" / f"train-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    logs = out_path.with_suffix("")
    logs.mkdir(parents=True, exist_ok=True)

    peaks = [hw.measure_peaks(args.device)]
    print(f"machine: {peaks[0]['machine']}\nmatmul peak: bf16 {peaks[0]['bf16_tflops']} TFLOP/s, "
          f"fp32 {peaks[0]['fp32_tflops']} TFLOP/s", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        split = write_split(train_path, rows, args.seed, Path(scratch) / "data")
        from transformers import AutoTokenizer

        texts, _ = read_labeled(split["train"])
        lengths = token_lengths(texts, AutoTokenizer.from_pretrained(model_path(hp["model"])), hp["max_length"])
        shape = hw.model_shape(model_path(hp["model"]))
        tokens = {"train_rows": len(texts), "real_tokens_per_epoch": int(lengths.sum()),
                  "mean_tokens": float(lengths.mean()), "flops_per_epoch": hw.training_flops(lengths, shape), **shape}
        print(f"data: {split['train_rows']} train rows ({tokens['mean_tokens']:.1f} tokens on average), "
              f"{split['validation_rows']} validation rows (engine only), test {test_path}", file=sys.stderr)
        raw_runs = []
        for repeat in range(args.repeats):
            order = configs[repeat % len(configs):] + configs[:repeat % len(configs)]  # rotate: drift hits all
            for config in order:
                workspace = str(Path(scratch) / f"ws-{config}-{repeat}")
                log = logs / f"{config}-{repeat}.log"
                seeded = {**hp, "seed": (args.seed if args.first_seed is None else args.first_seed) + repeat}
                raw, rss, wall = run_child(command(config, split, str(test_path), seeded, args.device, workspace),
                                           log, args.device)
                raw["seed"] = seeded["seed"]
                raw_runs.append((config, raw, rss, wall))
                print(f"repeat {repeat + 1} (seed {seeded['seed']}) {config}: "
                      f"{raw['train_examples_per_s']:.1f} examples/s, "
                      f"accuracy {(raw.get('test') or {}).get('accuracy')}, peak RSS {rss:.0f} MB", file=sys.stderr)
        peaks.append(hw.measure_peaks(args.device))
    peak = {"bf16_tflops": max(p["bf16_tflops"] for p in peaks), "fp32_tflops": max(p["fp32_tflops"] for p in peaks),
            "bf16_tflops_at_step_shapes": max(p["bf16_tflops_at_step_shapes"] for p in peaks)}
    # MFU against the faster of the two peaks: the bf16 one on a CPU with bf16 instructions (where the engine
    # trains bf16), the fp32 one on a CPU without them (its emulated bf16 "peak" is a thousandth of fp32's)
    mfu_peak = max(peak["bf16_tflops"], peak["fp32_tflops"])
    results = [normalise(c, raw, rss, wall, tokens, mfu_peak) for c, raw, rss, wall in raw_runs]
    summary = summarise(results, configs)
    table = markdown(summary, configs)
    report = {"command": " ".join(["python", "bench/train_bench.py", *sys.argv[1:]]), "machine": peaks[0]["machine"],
              "device": args.device, "peak": peak, "peak_measurements": peaks, "data": str(train_path),
              "test": str(test_path), "split": {k: v for k, v in split.items() if k not in ("train", "validation")},
              "tokens": tokens, "hyperparameters": hp, "runs": results, "summary": summary, "table": table}
    out_path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{report['machine']}\nbf16 peak {peak['bf16_tflops']} TFLOP/s (at the step's Linear shapes "
          f"{peak['bf16_tflops_at_step_shapes']}), fp32 {peak['fp32_tflops']} TFLOP/s; "
          f"{tokens['train_rows']} rows, {hp['epochs']} epochs, batch {hp['batch_size']}, "
          f"median of {args.repeats}\n\n{table}\n\n(all runs: {out_path})")


if __name__ == "__main__":
    main()
