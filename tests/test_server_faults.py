"""Faults, on a real server process: kill -9 mid-training, mid-save and mid-labeling, then a restart. Afterwards
the workspace holds only complete runs, crash leftovers are swept, the labels pass SQLite's integrity check with
every acknowledged label kept, and the app starts and lists everything."""
from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from bertdemo.jobs import JobStore
from bertdemo.labeling.store import LabelStore
from bertdemo.runs import list_runs, load_run_info, weights_ok
from conftest import toy_rows, write_csv
from conftest_ui import SAMPLE, AppProcess, job_status, start_training, wait_job

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # server processes, killed

SETTINGS = dict(epochs=20, batch_size=4, learning_rate=1e-3, max_length=32, max_train_rows=0, warmup_ratio=0.0,
                weight_decay=0.01, seed=1, validation_split=0.2, evals_per_epoch=1, patience=0,
                freeze_word_embeddings=False, min_steps=0)


@pytest.fixture()
def workspace(tmp_path, ui_model_dir):
    ws = tmp_path / "ws"
    shutil.copytree(ui_model_dir, ws / "tiny-model")  # a model folder inside the workspace: the app may load it
    return ws


def _start_training(app: AppProcess, csv: str, workspace: Path, **overrides) -> tuple[Client, str]:
    client = Client(app.url, verbose=False)
    client.predict(handle_file(csv), None, None, 32, api_name="/load_data")
    return client, start_training(client, model=str(workspace / "tiny-model"), **{**SETTINGS, **overrides})


def _check_after_restart(workspace: Path, log_path: Path) -> list:
    app = AppProcess(workspace, log_path)  # starting again sweeps what the kill left
    try:
        listed = Client(app.url, verbose=False).predict(api_name="/list_runs")
    finally:
        app.stop()
    assert not [p.name for p in workspace.iterdir() if p.name.startswith((".tmp-", ".del-"))]
    assert not [p for p in (workspace / ".jobs").glob("*") if p.is_dir()]  # no checkpoint left over
    assert not JobStore.for_workspace(workspace).find(states=("queued", "running"))  # every job has a state
    runs = list_runs(workspace)
    assert all(r.status in ("complete", "stopped", "interrupted") and weights_ok(r.path) for r in runs)
    assert sorted(r["run_dir"] for r in listed) == sorted(r.name for r in runs)
    return runs


def test_kill_9_before_the_first_evaluation_leaves_no_run_and_an_interrupted_job(workspace, tmp_path):
    app = AppProcess(workspace, tmp_path / "server.log")
    # 100 steps before the first evaluation (the whole sample): a fast machine cannot get there before the kill
    client, job_id = _start_training(app, str(SAMPLE), workspace)
    wait_job(client, job_id, timeout=180, until=lambda s: any(e["event"] == "StepEvent" for e in s["events"]))
    app.kill9()
    assert _check_after_restart(workspace, tmp_path / "server.log") == []
    job = JobStore.for_workspace(workspace).get(job_id)
    assert job.state == "interrupted" and "server stopped while this job ran" in job.reason
    assert "no checkpoint had been saved" in job.reason and job.result == {}


def test_kill_9_mid_training_keeps_the_best_checkpoint_as_an_interrupted_run(workspace, tmp_path):
    app = AppProcess(workspace, tmp_path / "server.log")
    # 2,000 steps (the whole sample, 20 epochs): the kill comes long before the end, however fast the machine
    client, job_id = _start_training(app, str(SAMPLE), workspace, evals_per_epoch=2)
    status = wait_job(client, job_id, timeout=180, until=lambda s: sum(
        e["event"] == "StepEvent" for e in s["events"]) > 2 + max(
        [e["step"] for e in s["events"] if e["event"] == "EvalEvent"], default=10**9))
    app.kill9()
    runs = _check_after_restart(workspace, tmp_path / "server.log")
    job = JobStore.for_workspace(workspace).get(job_id)
    assert job.state == "interrupted" and len(runs) == 1 and job.result == {"run": runs[0].name}
    info = load_run_info(runs[0].path)
    last_step = max(e["step"] for e in status["events"] if e["event"] == "StepEvent")
    assert info.status == "interrupted" and info.owner == status["owner"]
    card = (Path(runs[0].path) / "README.md").read_text()
    assert "Status: interrupted" in card and "interrupted at step" in card and "best evaluation" in card
    assert int(info.note.split("interrupted at step ")[1].split()[0]) >= last_step
    from transformers import pipeline

    assert pipeline("text-classification", model=runs[0].path)("the market fell")[0]["label"] in info.labels


def test_kill_9_mid_save_leaves_no_half_run(workspace, small_csv, tmp_path):
    caught = False
    for _ in range(4):  # the save is short: try again if the kill came before or after it
        app = AppProcess(workspace, tmp_path / "server.log")
        _start_training(app, small_csv, workspace, epochs=1, batch_size=16)
        deadline = time.time() + 180
        while time.time() < deadline and app.proc.poll() is None:
            if any(p.name.startswith(".tmp-") and p.is_dir() for p in workspace.iterdir()):
                app.kill9()
                caught = any(p.name.startswith(".tmp-") for p in workspace.iterdir())  # not renamed meanwhile
                break
            time.sleep(0.002)
        else:
            app.stop()
        if caught:
            break
    assert caught, "the save was never seen in progress"  # the kill left a half-written folder…
    _check_after_restart(workspace, tmp_path / "server.log")  # …which the next start sweeps


def test_kill_9_mid_labeling_keeps_every_acknowledged_label(workspace, tmp_path):
    rows = [(t, "") for t, _ in toy_rows(per_class=40)] + [("first food text", "food"), ("first sport text", "sport")]
    path = write_csv(tmp_path / "project.csv", rows)
    app = AppProcess(workspace, tmp_path / "server.log")
    client = Client(app.url, verbose=False)
    client.predict(handle_file(str(path)), "kill", api_name="/label_import")
    first = client.predict("kill", "ann", "in order", False, False, api_name="/label_start")
    acked: list[str] = [first[0]]
    stop = threading.Event()

    def label() -> None:
        while not stop.is_set():
            try:
                shown = re.search(r'data-current="(\d+)"', acked[-1]).group(1)  # each answer names its item
                acked.append(client.predict(shown, "ann", False, api_name="/label_key_1")[0])
            except Exception:  # noqa: BLE001 - the server is killed under it
                return

    worker = threading.Thread(target=label)
    worker.start()
    while len(acked) < 15:
        time.sleep(0.01)
    app.kill9()
    stop.set()
    worker.join(timeout=60)
    store = LabelStore.for_workspace(workspace)
    assert store.integrity() == "ok"
    labeled = {i.text for i in store.items("kill") if i.label == "food"}
    answered = len(acked) - 1  # each reply showed the next item: every item before the last shown was labeled
    assert len(labeled) >= answered + 1  # the import's own "food" label, and every acknowledged one
    _check_after_restart(workspace, tmp_path / "server.log")
