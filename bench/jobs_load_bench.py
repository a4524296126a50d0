"""A classroom on one server: 30 gradio_client sessions (one login each), 6 of which start a training while the
others predict; every session drops its connection and comes back at random throughout.

Checks, and reports as numbers: every accepted job completes; every job's owner sees its result afterwards from
a fresh connection; queue positions are right throughout (one job runs at a time, jobs start in the order they
were accepted, each job's first reported place equals the jobs accepted before it and not yet ended, and its
place never goes up); prediction latency under this load beside the idle figure, measured in the same run.

    python bench/jobs_load_bench.py [--sessions 30 --trainers 6 --seconds 240] [--out bench/out]

Everything runs on 127.0.0.1: the app is ``python app.py`` in a process of its own with an auth file.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402
from hw import machine_line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "news_topics_en.csv"
TRAIN = dict(model="default", epochs=1, batch_size=16, learning_rate=1e-4, max_length=64, max_train_rows=200,
             warmup_ratio=0.06, weight_decay=0.01, seed=1, validation_split=0.2, evals_per_epoch=1, patience=0,
             freeze_word_embeddings=True, min_steps=0)
TEXTS = ["The striker scored twice in the derby.", "Shares fell 3% after the report.",
         "A new chip doubles battery life.", "Talks resumed between the two governments."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workspace: Path, users: Path, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--workspace", str(workspace), "--port", str(port),
                             "--auth-file", str(users)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the app did not start")


def client(url: str, user: str):
    from gradio_client import Client

    return Client(url, auth=(user, "pw-" + user), verbose=False)


def predict_latencies(url: str, users: list[str], run: str, seconds: float, *, churn: bool, rng) -> tuple[list, int]:
    """Sessions predicting for ``seconds``; with ``churn`` each drops and re-opens its connection at random."""
    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.monotonic() + seconds

    def session(user: str, seed: int) -> None:
        local = random.Random(seed)
        c = client(url, user)
        c.predict(run, api_name="/load_run")
        while time.monotonic() < stop:
            if churn and local.random() < 0.08:  # gone for a moment, then a new connection (a reload)
                c.close()
                time.sleep(local.uniform(0.5, 3))
                c = client(url, user)
                c.predict(run, api_name="/load_run")
            started = time.perf_counter()
            try:
                c.predict(local.choice(TEXTS), api_name="/predict")
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - counted
                with lock:
                    errors[0] += 1
            time.sleep(local.uniform(0.2, 1.0))  # a person typing, not a loop
        c.close()

    threads = [threading.Thread(target=session, args=(u, rng.randrange(10**9))) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def trainer(url: str, user: str, seed: int, out: dict) -> None:
    """Load the sample, start a training, then come and go, asking for the job's place and state each time."""
    from gradio_client import handle_file

    local = random.Random(seed)
    time.sleep(local.uniform(0, 10))
    c = client(url, user)
    c.predict(handle_file(str(SAMPLE)), None, None, 64, api_name="/load_data")
    accepted = time.time()
    _, job_id, _ = c.predict(**TRAIN, api_name="/start_training")
    places = []
    while True:
        status = c.predict(job_id, 0, api_name="/job_status")
        if status["state"] == "queued":
            places.append((time.time(), status["ahead"]))
        if status["state"] not in ("queued", "running"):
            break
        if local.random() < 0.3:
            c.close()
            time.sleep(local.uniform(0.5, 5))
            c = client(url, user)
        time.sleep(local.uniform(0.5, 2))
    c.close()
    out[user] = {"job": job_id, "accepted": accepted, "places": places, "state": status["state"]}


def check_queue(store, results: dict) -> dict:
    jobs = sorted((store.get(r["job"]) for r in results.values()), key=lambda j: j.created)
    overlaps = sum(1 for a, b in zip(jobs, jobs[1:]) if b.started is not None and a.ended and b.started < a.ended - 0.05)
    fifo = [j.id for j in sorted(jobs, key=lambda j: j.started or 1e18)] == [j.id for j in jobs]
    wrong_first, went_up = 0, 0
    for r in results.values():
        job = store.get(r["job"])
        if r["places"]:
            expected = sum(1 for j in jobs if j.created < job.created and (j.ended or 1e18) > r["places"][0][0])
            wrong_first += abs(r["places"][0][1] - expected) > 1  # the poll and the table read at different moments
            went_up += any(b[1] > a[1] for a, b in zip(r["places"], r["places"][1:]))
    return {"running_at_once_overlaps": overlaps, "started_in_accepted_order": fifo,
            "first_place_wrong": wrong_first, "place_went_up": went_up}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--trainers", type=int, default=6)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--out", default="", help="JSON path (default: bench/out/jobs-load-TIMESTAMP.json)")
    args = parser.parse_args()
    rng = random.Random(0)
    work = Path(tempfile.mkdtemp(prefix="bertdemo-load-"))
    users = [f"s{i:02d}" for i in range(args.sessions)]
    (work / "users.txt").write_text("".join(f"{u}:pw-{u}\n" for u in users))
    subprocess.run([sys.executable, "-m", "bertdemo", "train", str(SAMPLE), "--workspace", str(work / "ws"),
                    "--epochs", "1", "--min-steps", "0", "--max-train-rows", "200"], cwd=ROOT, check=True,
                   capture_output=True)
    log = open(work / "server.log", "w")
    proc, url = start_server(work / "ws", work / "users.txt", log)
    try:
        run = client(url, users[0]).predict(api_name="/list_runs")[0]["run_dir"]
        predictors = users[args.trainers:]
        idle, idle_errors = predict_latencies(url, predictors, run, args.idle_seconds, churn=False, rng=rng)
        results: dict = {}
        threads = [threading.Thread(target=trainer, args=(url, u, rng.randrange(10**9), results))
                   for u in users[:args.trainers]]
        started = time.monotonic()
        for t in threads:
            t.start()
        busy, busy_errors = [], 0
        while any(t.is_alive() for t in threads):  # predict, with churn, as long as the jobs run
            lat, err = predict_latencies(url, predictors, run, 20, churn=True, rng=rng)
            busy += lat
            busy_errors += err
        for t in threads:
            t.join()
        jobs_seconds = time.monotonic() - started
        seen = 0
        for user, r in results.items():  # each owner, from a fresh connection, sees the result
            mine = {j["id"]: j for j in client(url, user).predict(api_name="/list_jobs")}
            job = mine.get(r["job"])
            seen += bool(job and job["state"] == "done" and job["result"].get("run"))
        from bertdemo.jobs import JobStore

        queue = check_queue(JobStore.for_workspace(work / "ws"), results)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    pct = lambda xs, q: round(1000 * float(np.percentile(xs, q)), 1) if xs else None  # noqa: E731
    result = {
        "machine": machine_line(), "sessions": args.sessions, "trainers": args.trainers,
        "jobs_accepted": len(results), "jobs_done": sum(r["state"] == "done" for r in results.values()),
        "owners_who_see_their_result": seen, "jobs_wall_s": round(jobs_seconds, 1), **queue,
        "predict_idle_ms": {"n": len(idle), "p50": pct(idle, 50), "p95": pct(idle, 95), "errors": idle_errors},
        "predict_under_load_ms": {"n": len(busy), "p50": pct(busy, 50), "p95": pct(busy, 95), "errors": busy_errors},
    }
    print(result)
    write_result(result, args.out, "jobs-load")


if __name__ == "__main__":
    main()
