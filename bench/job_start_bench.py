"""Where jobs run: a worker thread of the server, a warm child process, or a fresh process per job.

Measures, side by side in one run on this machine:
- thread: ``JobRunner.submit`` of a trivial job until its first event is in the job table;
- warm process: the same trivial job sent to an already started child process (spawned, torch and the engine
  imported) and its first event back;
- fresh process: a new interpreter that imports torch, transformers and the engine before it could record an
  event — what a process per job pays every time;
- the memory a warm worker holds while idle (its resident set, on top of the server's);
- a training job's start in a thread: submit until the StartEvent (model loaded, data tokenized), default model.

    python bench/job_start_bench.py [--repeats 10] [--out bench/out]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, write_result  # noqa: E402
from hw import machine_line  # noqa: E402

IMPORTS = "import torch, transformers; import bertdemo.training, bertdemo.jobs.kinds"


def _worker(inbox, outbox) -> None:
    exec(IMPORTS)
    import resource

    outbox.put(("ready", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    while True:
        item = inbox.get()
        if item is None:
            return
        outbox.put(("event", item))


def thread_start(repeats: int) -> list[float]:
    from bertdemo.jobs import JobRunner

    runner = JobRunner(tempfile.mkdtemp())
    times = []
    for _ in range(repeats):
        def work(ctx):
            yield {"event": "Hello"}
            return {}
        started = time.perf_counter()
        job = runner.submit("train", "bench", work)
        while runner.store.get(job.id).seq < 1:
            time.sleep(0.0005)
        times.append(time.perf_counter() - started)
        runner.wait(job.id)
    runner.close()
    return times


def warm_process(repeats: int) -> tuple[list[float], float, float]:
    ctx = mp.get_context("spawn")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    started = time.perf_counter()
    proc = ctx.Process(target=_worker, args=(inbox, outbox), daemon=True)
    proc.start()
    _, rss_mb = outbox.get(timeout=300)
    boot = time.perf_counter() - started
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        inbox.put(i)
        outbox.get(timeout=60)
        times.append(time.perf_counter() - t)
    inbox.put(None)
    proc.join(timeout=30)
    return times, boot, rss_mb


def fresh_process(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORTS], check=True, cwd=Path(__file__).resolve().parents[1])
        times.append(time.perf_counter() - t)
    return times


def training_start() -> float:
    import pandas as pd

    from bertdemo.config import TrainConfig
    from bertdemo.jobs import JobRunner
    from bertdemo.jobs.kinds import training_work

    table = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "news_topics_en.csv")
    runner = JobRunner(tempfile.mkdtemp())
    started = time.perf_counter()
    job = runner.submit("train", "bench", training_work(TrainConfig(epochs=1, min_steps=0), owner="bench", table=table,
                                                       text_col="text", label_col="label"))
    while not any(e["event"] == "StartEvent" for e in runner.store.events(job.id)):
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    runner.stop(job.id, "bench")
    runner.wait(job.id)
    runner.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="", help="JSON path (default: bench/out/job-start-TIMESTAMP.json)")
    args = parser.parse_args()
    ms = lambda xs: round(1000 * statistics.median(xs), 2)  # noqa: E731
    thread = thread_start(args.repeats)
    warm, boot, rss = warm_process(args.repeats)
    fresh = fresh_process(max(3, args.repeats // 3))
    result = {"machine": machine_line(), "thread_first_event_ms": ms(thread), "warm_process_round_trip_ms": ms(warm),
              "warm_process_boot_s": round(boot, 2), "warm_process_idle_rss_mb": round(rss),
              "fresh_process_import_ms": ms(fresh), "thread_training_start_s": round(training_start(), 2)}
    emit(result)
    write_result(result, args.out, "job-start")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
