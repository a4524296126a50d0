"""Each long kind of job, then a reloaded page: the job was started through the API by one page of a browser;
a fresh page of the same browser (a new session that says which browser it is, as the page's load does) runs the
jobs view with nothing seen yet — exactly what a reload does — and gets the job's result drawn.

Kinds: training (the loss plot from the whole history), suspicious labels (the ranked queue becomes the page's
labeling queue), the active-learning curve (its plot and table), Retrain (before/after on the frozen rows) and a
batch prediction (the file to download).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from gradio_client import Client, handle_file

from conftest import toy_rows, write_csv
from conftest_ui import free_port, start_training, wait_job

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # an app and real jobs

TINY = dict(epochs=2, batch_size=8, learning_rate=1e-3, max_length=32, max_train_rows=0, warmup_ratio=0.0,
            weight_decay=0.01, seed=1, validation_split=0.2, evals_per_epoch=1, patience=0,
            freeze_word_embeddings=False, min_steps=0)


@dataclass
class FakeRequest:
    session_hash: str
    username: str | None = None


@pytest.fixture(scope="module")
def app(tmp_path_factory, ui_model_dir):
    from bertdemo.ui import build_app, launch_app

    workspace = tmp_path_factory.mktemp("reload-ws")
    demo = build_app(workspace, model_dirs=(Path(ui_model_dir).parent,))
    launch_app(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo, workspace
    demo.close()


@pytest.fixture(scope="module")
def browser(app):
    """A client that is one page of a browser, and a function that opens another page of it (a reload)."""
    demo, _ = app
    page, key = demo.bertdemo_page, uuid.uuid4().hex
    client = Client(demo.local_url, verbose=False)
    page.identify(FakeRequest(client.session_hash), key)

    def reload() -> dict:
        request = FakeRequest(uuid.uuid4().hex)
        page.identify(request, key)
        return page.watch.on_tick({}, request), request
    return client, reload


def _done(client, job_id: str) -> dict:
    status = wait_job(client, job_id, timeout=600)
    assert status["state"] == "done", status
    return status


def _newest_job(client) -> str:
    return client.predict(api_name="/list_jobs")[0]["id"]


def test_training_comes_back_with_its_whole_history(app, browser, small_csv, ui_model_dir):
    client, reload = browser
    client.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    status = _done(client, start_training(client, model=ui_model_dir, **TINY))
    updates, _ = reload()
    train = app[0].bertdemo_page.parts["train"]
    steps = sum(e["event"] == "StepEvent" for e in status["events"])
    assert len(json.loads(updates[train.loss_plot].to_json())["data"][0]["x"]) == steps
    assert "done in" in updates[train.progress] and updates[train.job_id] == status["id"]
    assert updates[app[0].bertdemo_page.run_state].endswith(status["result"]["run"])


@pytest.fixture(scope="module")
def project(browser, tmp_path_factory):
    client, _ = browser
    path = write_csv(tmp_path_factory.mktemp("p") / "reload_project.csv",
                     [(t, label if i % 3 else "") for i, (t, label) in enumerate(toy_rows(per_class=12, seed=7))])
    client.predict(handle_file(str(path)), "reloadp", api_name="/label_import")
    return "reloadp"


def test_suspicious_labels_come_back_as_the_labeling_queue(app, browser, project, ui_model_dir, monkeypatch):
    import bertdemo.labeling.suspicious as suspicious

    monkeypatch.setattr(suspicious, "FOLD_SETTINGS", {**suspicious.FOLD_SETTINGS, "model": ui_model_dir,
                                                      "min_steps": 10, "max_length": 32})
    client, reload = browser
    values = client.predict(project, "ann", "suspicious labels", False, False, api_name="/label_start")
    assert "first item shows when the ranking is done" in values[-1]
    status = _done(client, _newest_job(client))
    assert status["kind"] == "suspicious" and status["result"]["items"] == 24  # labeled items, ranked
    updates, request = reload()
    label = app[0].bertdemo_page.parts["label"]
    session = updates[label.state]
    assert session.strategy == "suspicious" and session.holder == request.session_hash
    assert session.current is not None and session.current.label is not None  # a labeled item, to check
    assert "likeliest wrong first" in updates[label.status]


def test_retrain_comes_back_with_before_and_after(app, browser, project, ui_model_dir):
    client, reload = browser
    client.predict(project, "the base model", api_name="/label_retrain")
    status = _done(client, start_training(client, model=ui_model_dir, **TINY))
    assert status["kind"] == "retrain"
    updates, _ = reload()
    label = app[0].bertdemo_page.parts["label"]
    assert "Frozen validation set" in updates[label.compare] and status["result"]["run"] in updates[label.compare] \
        or "The first run of this project" in updates[label.compare]


def test_the_curve_comes_back_with_its_plot_and_table(app, browser, ui_model_dir, tmp_path):
    client, reload = browser
    path = write_csv(tmp_path / "curve.csv", toy_rows(per_class=15, seed=3))
    note = client.predict(handle_file(str(path)), None, ["random", "margin"], 10, 10, 1, 1, ui_model_dir,
                          api_name="/al_curve")
    assert "queue" in note or "starting" in note
    status = _done(client, _newest_job(client))
    points = [e for e in status["events"] if e["event"] == "CurvePoint"]
    assert len(points) == 4  # 2 strategies × (start + 1 round)
    updates, _ = reload()
    curve = app[0].bertdemo_page.parts["label"].curve
    table = updates[curve.table]
    assert list(table["labels"]) == [10, 20] and set(table.columns) >= {"random", "margin"}
    assert len(json.loads(updates[curve.plot].to_json())["data"]) >= 2


def test_a_batch_prediction_comes_back_with_its_file(app, browser, tmp_path):
    client, reload = browser
    run = client.predict(api_name="/list_runs")[0]["run_dir"]
    client.predict(run, api_name="/load_run")
    path = tmp_path / "many.csv"
    pd.DataFrame({"text": [f"text number {i} about football and rain" for i in range(1200)]}).to_csv(path, index=False)
    client.predict(handle_file(str(path)), api_name="/batch_predict")
    status = _done(client, _newest_job(client))
    progress = [e["rows"] for e in status["events"] if e["event"] == "Predicted"]
    assert progress == [512, 1024, 1200]  # in chunks: progress and Stop between them
    updates, _ = reload()
    batch = app[0].bertdemo_page.parts["explain"].batch
    assert pd.read_csv(updates[batch.batch_out]).shape[0] == 1200 and len(updates[batch.batch_preview]) == 50
    assert "1200 rows" in updates[batch.status]
