"""Prediction latency of bertdemo's ``Predictor`` and explanations against ``transformers.pipeline``.

Measured in one process on one saved run: single-text latency (p50/p95) for a short (≈12 word-pieces) and a
long (≈128) input, batch throughput, the attention view, integrated gradients, and the prediction levers
(bf16 autocast, dynamic int8 quantization with its accuracy cost, threads). Engine and pipeline calls
alternate, so drift on a shared machine hits both alike. Not a training benchmark (``train_bench.py``).

    python bench/predict_bench.py --run workspace/RUN     # a saved run (its test file: --test)
    python bench/predict_bench.py --data trec             # trains a quick 1-epoch TREC run first
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import read_labeled, resolve_data, scores, write_result  # noqa: E402

# helpers


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "n": len(ms)}


def timed(fn, arg) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def alternate(fns: dict, inputs: list, repeats: int) -> dict:
    """Time each fn on each input, interleaved (a, b, a, b, ...); percentiles per fn."""
    for fn in fns.values():  # warm-up: kernel selection, lazy loads (the eager model of the attention view)
        fn(inputs[0])
        fn(inputs[-1])
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for text in inputs:
            for name, fn in fns.items():
                times[name].append(timed(fn, text))
    return {name: percentiles(t) for name, t in times.items()}


def texts_near(tokenizer, pool: list[str], target: int, count: int) -> list[str]:
    """``count`` texts whose word-piece count (with [CLS]/[SEP]) is closest to ``target``; longer ones are
    built by joining pool texts and cutting at a word boundary."""
    lengths = np.array([len(ids) for ids in tokenizer(pool)["input_ids"]])
    if target <= np.percentile(lengths, 95):
        return [pool[i] for i in np.argsort(np.abs(lengths - target), kind="stable")[:count]]
    out, start = [], 0
    for _ in range(count):
        words: list[str] = []
        while len(tokenizer(" ".join(words))["input_ids"]) < target:
            words.extend(pool[start % len(pool)].split())
            start += 1
        while len(tokenizer(" ".join(words))["input_ids"]) > target:
            words.pop()
        out.append(" ".join(words))
    return out


def quick_run(data: list[str], workspace: str, rows: int) -> str:
    """Train a 1-epoch run with the engine (accuracy is beside the point; latency needs a real run)."""
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data
    from bertdemo.events import DoneEvent
    from bertdemo.training import train

    train_path, _, _ = resolve_data(data)
    config = TrainConfig(epochs=1, evals_per_epoch=1, max_train_rows=rows)
    labeled = load_data(train_path, config)
    done = [e for e in train(config, labeled, workspace=workspace) if isinstance(e, DoneEvent)][-1]
    return done.run_dir


def quantized_copy(model):
    import copy

    import torch

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def predictor_variant(base, variant: str):
    """A Predictor sharing ``base``'s tokenizer with its model in another numeric form."""
    import copy

    from bertdemo.inference.predict import Predictor

    if variant == "fp32":
        return Predictor(copy.deepcopy(base.model), base.tokenizer, max_length=base.max_length, device="cpu",
                         precision="fp32")
    if variant == "int8":
        return Predictor(quantized_copy(copy.deepcopy(base.model).float()), base.tokenizer, max_length=base.max_length,
                         device="cpu", precision="fp32")
    if variant in ("bf16-weights", "bf16, transformers forward"):  # the second without bertdemo.lean_forward
        return Predictor(copy.deepcopy(base.model), base.tokenizer, max_length=base.max_length, device="cpu",
                         precision="bf16", lean=variant == "bf16-weights")
    if variant == "bf16, lean, F.linear":  # the lean forward without oneDNN-prepacked weights
        return Predictor(copy.deepcopy(base.model), base.tokenizer, max_length=base.max_length, device="cpu",
                         precision="bf16", prepack=False)
    raise ValueError(variant)


def bench_levers(base, short: list[str], long: list[str], test: tuple | None, repeats: int) -> dict:
    """Short/long p50 and test accuracy per prediction lever."""
    import torch

    variants = {name: predictor_variant(base, name)
                for name in ("fp32", "bf16-weights", "bf16, lean, F.linear", "bf16, transformers forward", "int8")}
    fns = {name: p.predict for name, p in variants.items()}

    fp32 = variants["fp32"]

    def autocast_predict(text):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fp32.predict(text)

    fns["bf16-autocast"] = autocast_predict
    out = {"short": alternate(fns, short, repeats), "long": alternate(fns, long, max(1, repeats // 2))}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out["short"]["fp32, 1 thread"] = alternate({"x": fp32.predict}, short, repeats)["x"]
    out["long"]["fp32, 1 thread"] = alternate({"x": fp32.predict}, long, max(1, repeats // 2))["x"]
    torch.set_num_threads(threads)
    if test is not None:
        texts, labels = test
        out["test"] = {}
        for name, p in variants.items():
            probs = p.predict_proba(texts)
            out["test"][name] = scores(labels, [p.labels[i] for i in probs.argmax(1)])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            probs = base.predict_proba(texts)
        out["test"]["bf16-autocast"] = scores(labels, [base.labels[i] for i in probs.argmax(1)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a saved run folder (default: train a quick one on --data)")
    parser.add_argument("--data", nargs="+", default=["trec"], help="sst2, trec or TRAIN TEST: quick run + texts")
    parser.add_argument("--test", help="labeled file to score the levers on (default: the --data test file)")
    parser.add_argument("--quick-rows", type=int, default=0, help="rows for the quick run (0: all)")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the 20 inputs per measurement")
    parser.add_argument("--ig-steps", type=int, default=0, help="integrated-gradient steps (0: engine default)")
    parser.add_argument("--no-levers", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    import bertdemo.explain.attention as explain_attention
    import bertdemo.explain.attributions as explain_attributions
    from bertdemo.inference.predict import Predictor
    from hw import machine_line

    _, test_path, _ = resolve_data(args.data)
    test_path = Path(args.test) if args.test else test_path
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as scratch:
        run_dir = args.run or quick_run(args.data, scratch, args.quick_rows)
        load_start = time.perf_counter()
        predictor = Predictor.from_run(run_dir, device="cpu")
        load_s = time.perf_counter() - load_start
        pipe = pipeline("text-classification", model=run_dir, device=-1, top_k=None)

        test_texts, test_labels = read_labeled(test_path)
        pool = test_texts + read_labeled(resolve_data(["sst2"])[1])[0]
        short = texts_near(predictor.tokenizer, pool, 12, 20)
        long = texts_near(predictor.tokenizer, pool, 128, 20)
        batch = (pool * (512 // len(pool) + 1))[:512]

        result = {"machine": machine_line(), "run": str(run_dir), "threads": torch.get_num_threads(),
                  "load_seconds": round(load_s, 3)}
        result["short"] = alternate({"engine": predictor.predict, "pipeline": pipe}, short, args.repeats)
        result["long"] = alternate({"engine": predictor.predict, "pipeline": pipe}, long, max(1, args.repeats // 2))
        for size in ("short", "long"):
            r = result[size]
            r["speedup_p50"] = round(r["pipeline"]["p50_ms"] / r["engine"]["p50_ms"], 2)
        # Typing calls the same model again and again; alternating with the pipeline's fp32 model (above, for
        # a fair ratio) evicts the engine's weights from the caches between calls.
        result["short_engine_alone"] = alternate({"engine": predictor.predict}, short, args.repeats)["engine"]

        throughput = {}
        for name, fn in (("engine", lambda t: predictor.predict_proba(t)),
                         ("pipeline", lambda t: pipe(t, batch_size=64))):
            fn(batch[:64])
            throughput[name] = round(len(batch) / min(timed(fn, batch) for _ in range(2)), 1)
        throughput["speedup"] = round(throughput["engine"] / throughput["pipeline"], 2)
        result["batch_texts_per_s"] = {**throughput, "texts": len(batch)}

        result["attention"] = alternate({"attention": lambda t: explain_attention.attention(predictor, t),
                                         "predict": predictor.predict}, short, max(1, args.repeats // 2))
        result["attention"]["ratio_to_predict"] = round(
            result["attention"]["attention"]["p50_ms"] / result["attention"]["predict"]["p50_ms"], 2)
        ig_kwargs = {"steps": args.ig_steps} if args.ig_steps else {}
        result["integrated_gradients_by_length"] = {}
        for length in (12, 64, 128):  # the target is about 64; shorter and longer texts for context
            texts = texts_near(predictor.tokenizer, pool, length, 3)
            explain_attributions.attributions(predictor, texts[0], **ig_kwargs)  # warm-up
            times, runs = [], []
            for _ in range(3):
                for text in texts:
                    start = time.perf_counter()
                    runs.append(explain_attributions.attributions(predictor, text, **ig_kwargs))
                    times.append(time.perf_counter() - start)
            result["integrated_gradients_by_length"][length] = {
                **percentiles(times), "max_ms": round(max(times) * 1000, 1),
                "tokens": [len(predictor.tokenizer(t)["input_ids"]) for t in texts],
                "points_used": sorted({r.steps for r in runs}),
                "max_completeness_error": round(max(r.delta for r in runs), 4), "steps": args.ig_steps or "default"}
        result["integrated_gradients"] = result["integrated_gradients_by_length"][64]
        if not args.no_levers:
            result["levers"] = bench_levers(predictor, short, long, (test_texts, test_labels), args.repeats)

    text = write_result(result, args.out, "predict")
    print(text)
    s, l_ = result["short"], result["long"]
    print(f"\nshort p50 {s['engine']['p50_ms']} ms vs pipeline {s['pipeline']['p50_ms']} ms (×{s['speedup_p50']}), "
          f"{result['short_engine_alone']['p50_ms']} ms in consecutive calls; "
          f"long p50 {l_['engine']['p50_ms']} ms vs {l_['pipeline']['p50_ms']} ms (×{l_['speedup_p50']}); "
          f"batch ×{throughput['speedup']}; attention {result['attention']['ratio_to_predict']}× a prediction; "
          f"IG p50 {result['integrated_gradients']['p50_ms']} ms  ({out})")


if __name__ == "__main__":
    main()
