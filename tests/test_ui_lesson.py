"""The lesson "what pretraining buys" through the app's API, as a gradio_client script drives it: a job on the Data
tab's file, followed to its end, every arm at every label count in its records and its table; refusals for no
data, bad label counts and budgets beyond the server's limits, none of which becomes a job."""
from __future__ import annotations

import dataclasses

import pytest
from gradio_client import Client, handle_file

from conftest_ui import wait_job

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # an app server and a real lesson


def _refused(client: Client, api: str, *args) -> str:
    with pytest.raises(Exception) as err:
        client.predict(*args, api_name=api)
    return str(err.value)


def test_the_lesson_runs_as_a_job_and_draws_every_arm(app_url, small_csv, monkeypatch):
    import bertdemo.ui.tabs.lesson as panel
    from bertdemo.lesson import LessonConfig

    # The panel's own settings, with a tiny model and one short epoch per fine-tune: the same steps, in seconds.
    monkeypatch.setattr(panel, "LessonConfig", lambda **kw: dataclasses.replace(
        LessonConfig(**kw), size="tiny", min_steps=0, epochs=1, test_rows=24, max_length=32))
    client = Client(app_url[0], verbose=False)
    client.predict(handle_file(small_csv), None, None, 64, api_name="/load_data")
    line = client.predict(None, "20, all", 0.1, 1, api_name="/pretraining_lesson")
    job = client.predict(api_name="/list_jobs")[0]
    assert job["kind"] == "lesson" and line  # the panel says the job is on its way
    status = wait_job(client, job["id"], timeout=600)
    assert status["state"] == "done", status["line"]
    points = [e for e in status["events"] if e["event"] == "LessonPoint"]
    assert {(p["arm"], p["labels"]) for p in points} == {(arm, n) for arm in ("random init", "pretrained here",
                                                                              "embedded default") for n in (20, 96)}
    table = status["result"]["table"]
    assert table["labels"] == [20, 96] and set(table["arms"]) == {p["arm"] for p in points}
    assert "/" not in status["result"]["model"]  # the pretrained model by name, never a server path


def test_the_lesson_refuses_what_it_cannot_run_and_nothing_becomes_a_job(app_url, small_csv, monkeypatch):
    monkeypatch.setenv("BERTDEMO_LIMIT_MAX_JOB_MINUTES", "1")
    client = Client(app_url[0], verbose=False)  # a fresh tab: no data
    assert "Load a labeled file on the Data tab first" in _refused(client, "/pretraining_lesson", None, "100", 1, 1)
    client.predict(handle_file(small_csv), None, None, 64, api_name="/load_data")
    assert 'numbers and "all"' in _refused(client, "/pretraining_lesson", None, "100,many", 1, 1)
    assert "label counts must be 10 or more" in _refused(client, "/pretraining_lesson", None, "3", 1, 1)
    assert "pretrain_minutes must be more than 0" in _refused(client, "/pretraining_lesson", None, "100", 0, 1)
    assert "max_job_minutes" in _refused(client, "/pretraining_lesson", None, "100", 5, 1)
    assert client.predict(api_name="/list_jobs") == []
