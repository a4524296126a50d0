"""The job runner and its table (bertdemo.jobs), without a page: queue order and positions, the per-user limit,
Stop from anywhere (a queued job, a running one, another process's flag, the time limit), failures, what a restart
does with the jobs and checkpoints a dead server left, a real training job's checkpoints, and the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bertdemo.jobs import JobRunner, JobStore
from bertdemo.jobs.checkpoints import JOBS_DIR, checkpoint_space
from bertdemo.jobs.kinds import training_work
from bertdemo.runs import list_runs, load_run_info

ROOT = Path(__file__).resolve().parent.parent


def gated(gate: threading.Event, steps: int = 1000):
    """Work that records a step every 10 ms until ``gate`` opens or it is told to stop."""
    def work(ctx):
        for step in range(1, steps + 1):
            if ctx.should_stop():
                return {"state": "stopped"}
            if gate.is_set():
                break
            yield {"event": "StepEvent", "step": step, "fraction": step / steps, "note": f"step {step}"}
            time.sleep(0.01)
        return {"answer": 42}
    return work


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.fixture()
def runner(tmp_path):
    runner = JobRunner(tmp_path)
    yield runner
    runner.close()


def test_jobs_run_in_order_one_per_lane_with_their_place_in_line_and_the_per_user_limit(runner):
    gates = [threading.Event() for _ in range(3)]
    a = runner.submit("train", "alice", gated(gates[0]), title="a")
    b = runner.submit("train", "bob", gated(gates[1]), title="b")
    c = runner.submit("batch_predict", "carol", gated(gates[2]), lane="predict", title="c")
    wait_for(lambda: runner.store.get(a.id).state == "running" and runner.store.get(c.id).state == "running")
    assert runner.store.get(b.id).state == "queued" and runner.ahead(runner.store.get(b.id)) == 1
    with pytest.raises(ValueError, match="at most 1 per user"):
        runner.submit("curve", "alice", gated(threading.Event()))
    gates[0].set()
    assert runner.wait(a.id).state == "done" and runner.store.get(a.id).result == {"answer": 42}
    wait_for(lambda: runner.store.get(b.id).state == "running")
    alice_again = runner.submit("train", "alice", gated(threading.Event(), steps=3))  # her slot is free again
    assert runner.ahead(runner.store.get(alice_again.id)) == 1
    gates[1].set(), gates[2].set()
    assert [runner.wait(j.id).state for j in (b, c, alice_again)] == ["done"] * 3
    done = runner.store.get(b.id)
    assert done.started >= runner.store.get(a.id).ended and done.progress > 0 and done.note.startswith("step")
    events = runner.store.events(a.id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)) and events[0]["step"] == 1


def test_stop_ends_a_queued_job_at_once_and_a_running_one_at_its_next_step(runner):
    running = runner.submit("train", "alice", gated(threading.Event()))
    waiting = runner.submit("train", "bob", gated(threading.Event()))
    wait_for(lambda: runner.store.get(running.id).state == "running")
    with pytest.raises(ValueError, match="someone else's"):
        runner.stop(running.id, "bob", enforce=True)
    assert runner.stop(waiting.id, "bob").state == "stopped"  # nothing to wind down
    assert "before it started" in runner.store.get(waiting.id).reason
    runner.stop(running.id, "teacher", enforce=True, admins=("teacher",))
    job = runner.wait(running.id, timeout=10)
    assert job.state == "stopped" and job.stop_requested and job.reason == "stopped on request"
    assert runner.stop(running.id, "alice").state == "stopped"  # stopping an ended job changes nothing


def test_a_stop_flag_written_by_another_process_stops_the_job(runner, tmp_path):
    # 100,000 steps of 10 ms: the job must outlast the CLI's start (torch's import), which took over the default
    # 1,000 steps' 10 s on a busy machine, and the job had ended before the stop flag was written
    job = runner.submit("train", "alice", gated(threading.Event(), steps=100_000))
    wait_for(lambda: runner.store.get(job.id).state == "running")
    out = subprocess.run([sys.executable, "-m", "bertdemo", "jobs", "stop", job.id, "--workspace", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "asked job" in out.stdout, out.stderr
    assert runner.wait(job.id, timeout=10).state == "stopped"
    listed = subprocess.run([sys.executable, "-m", "bertdemo", "jobs", "--json", "--workspace", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert [(j["id"], j["state"]) for j in json.loads(listed.stdout.splitlines()[-1])] == [(job.id, "stopped")]


def test_the_time_limit_stops_a_job(runner, monkeypatch):
    monkeypatch.setenv("BERTDEMO_LIMIT_MAX_JOB_MINUTES", "0.005")  # 0.3 s
    job = runner.wait(runner.submit("train", "alice", gated(threading.Event())).id, timeout=20)
    assert job.state == "stopped" and "time limit" in job.reason


def test_a_failing_job_says_why_and_frees_its_slot(runner, caplog):
    def refuses(ctx):
        yield {"event": "Preparing"}
        raise ValueError("The file has one class; add another.")

    def crashes(ctx):
        yield {"event": "Preparing"}
        raise KeyError("internal detail")

    first = runner.wait(runner.submit("train", "alice", refuses).id)
    assert first.state == "failed" and first.reason == "The file has one class; add another."
    second = runner.wait(runner.submit("train", "alice", crashes).id)
    assert second.state == "failed" and "reference" in second.reason and "internal detail" not in second.reason
    assert runner.store.events(second.id)[0]["event"] == "Preparing"  # what it recorded before is kept


def test_a_restart_marks_what_was_running_interrupted_and_keeps_its_best_checkpoint(tmp_path, tiny_run):
    import shutil

    store = JobStore.for_workspace(tmp_path)
    running = store.create(owner="alice", kind="train", lane="train", title="t", params={})
    store.set_running(running.id)
    store.append(running.id, [{"event": "StepEvent", "step": s} for s in (1, 2, 3)])
    shutil.copytree(tiny_run, checkpoint_space(tmp_path, running.id).root / tiny_run.name)
    (checkpoint_space(tmp_path, running.id).root / ".tmp-half-abc").mkdir()  # a checkpoint cut short
    bare = store.create(owner="bob", kind="train", lane="train", title="t", params={})
    store.set_running(bare.id)
    queued = store.create(owner="carol", kind="curve", lane="train", title="c", params={})
    stale = tmp_path / JOBS_DIR / "0123456789ab"
    stale.mkdir(parents=True)

    runner = JobRunner(tmp_path)  # the next start
    try:
        jobs = {j.id: runner.store.get(j.id) for j in (running, bare, queued)}
        assert {j.state for j in jobs.values()} == {"interrupted"}
        run = jobs[running.id].result["run"]
        assert "at step 3" in jobs[running.id].reason and run in jobs[running.id].reason
        assert "no checkpoint had been saved" in jobs[bare.id].reason
        assert "cancelled by a server restart" in jobs[queued.id].reason
        info = load_run_info(tmp_path / run)
        assert info.status == "interrupted" and info.note.startswith("interrupted at step 3")
        assert "interrupted at step 3" in (tmp_path / run / "README.md").read_text()
        assert [r.name for r in list_runs(tmp_path)] == [run]
        assert not [p for p in (tmp_path / JOBS_DIR).glob("*") if p.is_dir()]
    finally:
        runner.close()
    assert JobRunner(tmp_path).recovered == []  # a second start changes nothing


def test_a_training_job_keeps_its_best_checkpoint_on_disk_while_it_trains(runner, tiny_config, toy_csv):
    import dataclasses

    import pandas as pd

    table = pd.read_csv(toy_csv)
    config = dataclasses.replace(tiny_config, epochs=6, evals_per_epoch=2)
    seen: list = []

    def watch(ctx):  # the real training work, with a look at the checkpoint folder after each evaluation
        for record in training_work(config, owner="alice", table=table, text_col="text", label_col="label")(ctx):
            if record["event"] == "EvalEvent":
                folder = ctx.checkpoints.root
                seen.append(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))
            yield record
        return {"run": next(iter(runner.store.events(ctx.job.id)[::-1]))["run"]}

    job = runner.wait(runner.submit("train", "alice", watch).id, timeout=300)
    assert job.state == "done", job.reason
    assert all(len(names) == 1 for names in seen) and len(seen) == 12  # one checkpoint at a time, from the first
    assert load_run_info(Path(runner.workspace.root) / job.result["run"]).status == "complete"
    assert not checkpoint_space(runner.workspace, job.id).root.exists()
    assert load_run_info(Path(checkpoint_space(runner.workspace, job.id).root).parent.parent / job.result["run"])


def test_a_second_server_on_the_same_workspace_leaves_the_first_ones_jobs_alone(runner, tmp_path):
    job = runner.submit("train", "alice", gated(threading.Event()))
    wait_for(lambda: runner.store.get(job.id).state == "running")
    second = JobRunner(tmp_path)  # another app.py on the same folder
    try:
        assert second.recovered == [] and runner.store.get(job.id).state == "running"
    finally:
        second.close()
    runner.stop(job.id, "alice")
    assert runner.wait(job.id).state == "stopped"


def test_a_job_whose_run_was_saved_just_before_the_crash_is_done_not_interrupted(tmp_path, tiny_run):
    import shutil

    shutil.copytree(tiny_run, tmp_path / tiny_run.name)
    store = JobStore.for_workspace(tmp_path)
    job = store.create(owner="alice", kind="train", lane="train", title="t", params={})
    store.set_running(job.id)
    store.append(job.id, [{"event": "StepEvent", "step": 1}, {"event": "DoneEvent", "run": tiny_run.name}])
    shutil.copytree(tiny_run, checkpoint_space(tmp_path, job.id).root / "checkpoint-copy")
    runner = JobRunner(tmp_path)
    try:
        done = runner.store.get(job.id)
        assert done.state == "done" and done.result == {"run": tiny_run.name}
        assert [r.name for r in list_runs(tmp_path)] == [tiny_run.name]  # no second, "interrupted" copy
    finally:
        runner.close()
