"""Prediction under load: N concurrent clients call the app's /predict for a fixed time, with no job and while
a job trains; and the engine's own predict latency while training runs in the same process.

Everything on 127.0.0.1. Reports throughput, p50/p95 latency and errors per phase, side by side in one run.

    python bench/load_bench.py --run workspace/RUN --clients 8 --seconds 30
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import read_labeled, resolve_data, write_result  # noqa: E402


def hammer(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    from gradio_client import Client

    pool = [Client(url, verbose=False) for _ in range(clients)]
    run = pool[0].predict(api_name="/list_runs")[0]["run_dir"]
    for client in pool:
        client.predict(run, api_name="/load_run")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work(client, offset: int) -> None:
        n = offset
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                client.predict(texts[n % len(texts)], api_name="/predict")
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - counted
                with lock:
                    errors[0] += 1
            n += 1

    threads = [threading.Thread(target=work, args=(c, i * 7)) for i, c in enumerate(pool)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(latencies, errors[0], seconds)


def engine_latency(predictor, texts: list[str], seconds: float) -> dict:
    latencies = []
    stop = time.monotonic() + seconds
    n = 0
    while time.monotonic() < stop:
        started = time.perf_counter()
        predictor.predict(texts[n % len(texts)])
        latencies.append(time.perf_counter() - started)
        n += 1
    return summary(latencies, 0, seconds)


def summary(latencies: list[float], errors: int, seconds: float) -> dict:
    ms = np.array(latencies) * 1000
    return {"calls": len(latencies), "errors": errors, "per_s": round(len(latencies) / seconds, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p95_ms": round(float(np.percentile(ms, 95)), 1) if len(ms) else None,
            "max_ms": round(float(ms.max()), 1) if len(ms) else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", nargs="+", default=["trec"], help="texts to predict, and to train the busy job on")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    from bertdemo.inference.predict import get_predictor
    from bertdemo.ui import build_app, launch_app
    from app_bench import free_port
    from hw import machine_line

    run_dir = Path(args.run).resolve()
    train_path, test_path, _ = resolve_data(args.data)
    texts = read_labeled(test_path)[0][:200]
    demo = build_app(run_dir.parent)
    launch_app(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    result = {"machine": machine_line(), "run": str(run_dir), "clients": args.clients, "seconds": args.seconds}
    try:
        predictor = get_predictor(run_dir)
        result["idle"] = {"app": hammer(demo.local_url, texts, args.clients, args.seconds),
                          "engine": engine_latency(predictor, texts, min(10, args.seconds))}
        trainer = Client(demo.local_url, verbose=False)
        trainer.predict(handle_file(str(train_path)), None, None, 64, api_name="/load_data")
        job = trainer.submit(model="default", epochs=5, batch_size=32, learning_rate=1e-4, max_length=64,
                             max_train_rows=4000, warmup_ratio=0.06, weight_decay=0.01, seed=1,
                             validation_split=0.2, evals_per_epoch=1, patience=0, freeze_word_embeddings=True,
                             api_name="/train")
        while not any(o and o[4] and o[4].get("event") == "StepEvent" for o in job.outputs()):
            time.sleep(0.2)
        result["training"] = {"engine": engine_latency(predictor, texts, min(10, args.seconds)),
                              "app": hammer(demo.local_url, texts, args.clients, args.seconds)}
        trainer.predict(api_name="/stop")
        job.result(timeout=600)
    finally:
        demo.close()
    text = write_result(result, args.out, "load")
    print(text)


if __name__ == "__main__":
    main()
