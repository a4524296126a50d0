"""A shared server: logins, owners, admins, per-user job limits and the queue, through the app's API (one Client
per logged-in user), and the Jobs board itself."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from bertdemo.ui.edge import ordinal
from conftest_ui import job_status, start_training, train_to_end, wait_job

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # an app server

USERS = [("alice", "pw-a"), ("bob", "pw-b"), ("teacher", "pw-t")]
TINY = dict(epochs=1, batch_size=16, learning_rate=1e-3, max_length=32, max_train_rows=0, warmup_ratio=0.0,
            weight_decay=0.01, seed=1, validation_split=0.2, evals_per_epoch=1, patience=0,
            freeze_word_embeddings=False, min_steps=0)


@pytest.fixture(scope="module")
def shared(tmp_path_factory, ui_model_dir):
    from bertdemo.ui import build_app, launch_app
    from conftest_ui import free_port

    workspace = tmp_path_factory.mktemp("shared-ws")
    demo = build_app(workspace, enforce_ownership=True, admins=("teacher",), model_dirs=(Path(ui_model_dir).parent,))
    launch_app(demo, port=free_port(), prevent_thread_lock=True, quiet=True, auth=USERS)
    yield demo.local_url, workspace
    demo.close()
    shutil.rmtree(workspace, ignore_errors=True)


def _client(url: str, user: str) -> Client:
    return Client(url, auth=(user, dict(USERS)[user]), verbose=False)


@pytest.fixture(scope="module")
def alices_run(shared, small_csv, ui_model_dir):
    alice = _client(shared[0], "alice")
    alice.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    status = train_to_end(alice, model=ui_model_dir, **TINY)
    assert status["state"] == "done" and status["owner"] == "alice", status
    return alice, status["result"]["run"]


def test_a_login_is_required(shared):
    with pytest.raises(Exception):
        Client(shared[0], verbose=False).predict(api_name="/list_runs")
    with pytest.raises(Exception):
        Client(shared[0], auth=("alice", "wrong"), verbose=False)


def test_runs_record_their_owner_and_show_no_server_paths(shared, alices_run):
    _, run = alices_run
    assert "/" not in run  # the event names the run, not the server's folder
    listed = _client(shared[0], "bob").predict(api_name="/list_runs")
    assert [r["run_dir"] for r in listed] == [run] and listed[0]["owner"] == "alice"
    assert all("/" not in str(v) for r in listed for k, v in r.items() if k in ("run_dir", "name"))


def test_others_use_a_run_but_cannot_delete_or_download_it(shared, alices_run):
    _, run = alices_run
    bob = _client(shared[0], "bob")
    assert f"**{run}**" in bob.predict(run, api_name="/load_run")
    assert "confidences" in bob.predict("the match was won", api_name="/predict")
    for endpoint in ("/delete_run", "/zip_run"):
        with pytest.raises(Exception, match="trained by someone else"):
            bob.predict(run, api_name=endpoint)
    assert (Path(shared[1]) / run).exists()


def test_nobody_stops_someone_elses_job_even_with_their_session(shared, small_csv, ui_model_dir):
    alice = _client(shared[0], "alice")
    alice.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    job_id = start_training(alice, model=ui_model_dir, **{**TINY, "epochs": 20, "batch_size": 4})
    wait_job(alice, job_id, timeout=120, until=lambda s: s["state"] == "running")
    import httpx

    # bob's login sends a request that carries alice's tab (raw HTTP: gradio_client would also take over her stream)
    with httpx.Client(base_url=shared[0], timeout=30) as http:
        http.post("login", data={"username": "bob", "password": "pw-b"}).raise_for_status()
        reply = http.post("gradio_api/run/stop", json={"data": [], "session_hash": alice.session_hash})
    assert "No training job of yours" in reply.json()["data"][0], reply.text
    bob = _client(shared[0], "bob")
    for endpoint in ("/stop_job", "/job_status"):  # her job id does not help either: as if it did not exist
        with pytest.raises(Exception, match="no job .* of yours"):
            bob.predict(job_id, *([0] if endpoint == "/job_status" else []), api_name=endpoint)
    assert job_status(alice, job_id)["state"] == "running"
    assert "Stopping" in alice.predict(api_name="/stop")
    assert wait_job(alice, job_id, timeout=120)["state"] == "stopped"


def test_one_job_per_user_at_a_time_and_a_refused_start_holds_nothing(shared, small_csv, ui_model_dir):
    tabs = [_client(shared[0], "alice") for _ in range(2)]
    for tab in tabs:
        tab.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    with pytest.raises(Exception, match="this app may use"):  # refused before a job exists…
        start_training(tabs[0], model="/etc", **TINY)
    with pytest.raises(Exception, match="must be a whole number"):
        start_training(tabs[0], model=ui_model_dir, **{**TINY, "epochs": 2.5})
    assert "No training job of yours" in tabs[1].predict(api_name="/stop")  # …so nothing is held or stoppable
    first = start_training(tabs[0], model=ui_model_dir, **{**TINY, "epochs": 20, "batch_size": 4})
    with pytest.raises(Exception, match="at most 1 per user"):  # refused at once, also from her other tab
        start_training(tabs[1], model=ui_model_dir, **TINY)
    bob = _client(shared[0], "bob")
    bob.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    bobs = start_training(bob, model=ui_model_dir, **TINY)
    assert job_status(bob, bobs)["ahead"] == 1  # only alice's one job is ahead: the refusals left no trace
    assert "Stopping" in tabs[1].predict(api_name="/stop")  # her second tab stops the job of the first
    assert wait_job(tabs[0], first)["state"] == "stopped"
    assert wait_job(bob, bobs)["state"] == "done"
    again = start_training(tabs[1], model=ui_model_dir, **TINY)  # the slot is free again
    assert wait_job(tabs[1], again)["state"] == "done"


def test_the_owner_and_an_admin_may_delete(shared, alices_run, small_csv, ui_model_dir):
    alice, run = alices_run
    teacher = _client(shared[0], "teacher")
    teacher.predict(run, api_name="/delete_run")  # an admin may
    assert not (Path(shared[1]) / run).exists()
    alice.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    mine = train_to_end(alice, model=ui_model_dir, **TINY)["result"]["run"]
    alice.predict(mine, api_name="/delete_run")  # and the owner may
    assert not (Path(shared[1]) / mine).exists()


def test_a_project_records_its_owner_and_only_they_or_an_admin_delete_it(shared, small_csv):
    alice, bob, teacher = (_client(shared[0], u) for u in ("alice", "bob", "teacher"))
    for who, name in ((alice, "alices-project"), (alice, "second")):
        who.predict(handle_file(small_csv), name, api_name="/label_import")
    from bertdemo.labeling.store import LabelStore

    store = LabelStore(Path(shared[1]) / "labeling.sqlite3")
    assert store.project("alices-project").owner == "alice"
    with pytest.raises(Exception, match="made by someone else"):
        bob.predict("alices-project", "alices-project", api_name="/label_delete")
    with pytest.raises(Exception, match="Type the project's name"):
        alice.predict("alices-project", "alices", api_name="/label_delete")
    assert store.project("alices-project").items > 0  # refused twice, nothing lost
    alice.predict("alices-project", "alices-project", api_name="/label_delete")  # the owner may
    teacher.predict("second", "second", api_name="/label_delete")  # and an admin may
    assert {p.name for p in store.projects()}.isdisjoint({"alices-project", "second"})


def test_models_outside_the_app_are_refused_with_one_message(shared, small_csv):
    import tempfile

    alice = _client(shared[0], "alice")
    alice.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    tmp_path = Path(tempfile.mkdtemp(prefix="outside-"))  # not under the test model's folder, which the app may use
    (tmp_path / "folder").mkdir()
    messages = []
    for model in ("/etc", str(tmp_path / "folder"), str(tmp_path / "nope"), "../../etc"):
        with pytest.raises(Exception) as err:
            start_training(alice, model=model, **TINY)
        messages.append(str(err.value).replace(model, "MODEL"))
    shutil.rmtree(tmp_path)
    assert len(set(messages)) == 1 and "this app may use" in messages[0]


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
