"""The labeling commands as a script calls them: import, status, label, queue, export, retrain, al-curve."""
from __future__ import annotations

import pytest

import json

import pandas as pd

from conftest import toy_rows, write_csv
from test_cli import _cli

pytestmark = pytest.mark.slow  # command-line subprocesses


def _json(out) -> object:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_project_from_import_to_retrain(tmp_path, tiny_run, tiny_model_dir):
    ws = str(tmp_path / "ws")
    rows = toy_rows(per_class=20, seed=9)
    labeled = [(t, label if i % 3 else "") for i, (t, label) in enumerate(rows)]  # a third unlabeled
    path = write_csv(tmp_path / "part.csv", labeled + [('=cmd|"/C calc"!A0', "food")])
    report = _json(_cli("project", "import", "toy", str(path), "--workspace", ws, "--json"))
    assert report["added"] == 61 and report["unlabeled"] == 20
    assert _json(_cli("project", "import", "toy", str(path), "--workspace", ws, "--json"))["added"] == 0

    status = _json(_cli("project", "status", "toy", "--workspace", ws, "--json"))
    assert (status["items"], status["labeled"], status["integrity"]) == (61, 41, "ok")
    assert set(status["per_label"]) == {"food", "sport", "weather"}

    queue = _json(_cli("project", "queue", "toy", "--strategy", "margin", "--run", str(tiny_run), "--top", "5",
                       "--workspace", ws, "--json"))
    assert len(queue) == 5 and all(set(q) == {"id", "text", "label", "suggested", "score"} for q in queue)
    assert all(q["label"] is None for q in queue) and [q["score"] for q in queue] == sorted(
        (q["score"] for q in queue), reverse=True)
    labeled_now = _json(_cli("project", "label", "toy", str(queue[0]["id"]), "sport", "--annotator", "kim",
                             "--workspace", ws, "--json"))
    assert labeled_now["label"] == "sport"
    stale = _cli("project", "label", "toy", str(queue[0]["id"]), "food", "--expect", "", "--workspace", ws)
    assert stale.returncode == 2 and "now labeled 'sport'" in stale.stderr and "--expect sport" in stale.stderr
    replaced = _json(_cli("project", "label", "toy", str(queue[0]["id"]), "food", "--expect", "sport",
                          "--workspace", ws, "--json"))
    assert replaced["label"] == "food"
    bad = _cli("project", "label", "toy", str(queue[1]["id"]), "sprot", "--workspace", ws)
    assert bad.returncode == 2 and "'sprot' is not a label" in bad.stderr and bad.stderr.count("\n") == 1

    suspicious = _json(_cli("project", "queue", "toy", "--strategy", "suspicious", "--run", str(tiny_run), "--top",
                            "3", "--workspace", ws, "--json"))
    assert len(suspicious) == 3 and all(q["label"] is not None for q in suspicious)

    out = tmp_path / "out.csv"
    _json(_cli("project", "export", "toy", str(out), "--workspace", ws, "--json"))
    exported = pd.read_csv(out, dtype=str)
    assert list(exported.columns) == ["text", "label"] and len(exported) == 42
    assert exported["text"].str.startswith("=").sum() == 0 and (exported["text"] == '\'=cmd|"/C calc"!A0').any()

    retrained = _json(_cli("project", "retrain", "toy", "--model", str(tiny_model_dir), "--epochs", "2",
                           "--lr", "1e-3", "--max-length", "32", "--precision", "fp32", "--workspace", ws, "--json"))
    assert retrained["compare"]["before"] is None and retrained["compare"]["rows"] >= 3
    run = json.loads((tmp_path / "ws" / retrained["run"].rsplit("/", 1)[1] / "run.json").read_text())
    assert run["provenance"]["project"] == "toy" and run["provenance"]["snapshot"] == retrained["snapshot"]
    again = _json(_cli("project", "retrain", "toy", "--from-last-run", "--epochs", "1", "--lr", "1e-3",
                       "--max-length", "32", "--precision", "fp32", "--workspace", ws, "--json"))
    assert again["compare"]["before"]["run"] == retrained["run"].rsplit("/", 1)[1]  # scored on the same rows
    assert again["compare"]["rows"] == retrained["compare"]["rows"]
    assert again["changes_since_last_run"]["changes"] == 0


def test_a_new_project_queues_in_import_order_and_imports_are_credited_to_import(tmp_path):
    """Before any run, ``project queue`` without a strategy serves import order (and says why), margin says it
    needs a run; the file's labels count under "import", a label from the shell under its user's name."""
    import getpass

    ws = str(tmp_path / "ws")
    rows = [(t, label if i % 2 else "") for i, (t, label) in enumerate(toy_rows(per_class=3, seed=2))]
    _json(_cli("project", "import", "new", str(write_csv(tmp_path / "new.csv", rows)), "--workspace", ws, "--json"))
    queued = _cli("project", "queue", "new", "--top", "3", "--workspace", ws, "--json")
    first = _json(queued)
    assert len(first) == 3 and "uncertainty queues come once the project has a run" in queued.stderr
    margin = _cli("project", "queue", "new", "--strategy", "margin", "--workspace", ws)
    assert margin.returncode == 2 and "has no run yet" in margin.stderr and "in_order" in margin.stderr
    _json(_cli("project", "label", "new", str(first[0]["id"]), "food", "--workspace", ws, "--json"))
    status = _json(_cli("project", "status", "new", "--workspace", ws, "--json"))
    assert status["per_annotator"] == {"import": 4, getpass.getuser(): 1}


def test_al_curve_prints_a_table_per_strategy(tmp_path, tiny_model_dir):
    train = write_csv(tmp_path / "train.csv", toy_rows(per_class=12, seed=1))
    test = write_csv(tmp_path / "test.csv", toy_rows(per_class=4, seed=2))
    table = _json(_cli("al-curve", str(train), "--test", str(test), "--strategies", "random,margin", "--start", "9",
                       "--step", "9", "--rounds", "1", "--model", str(tiny_model_dir), "--json"))
    assert table["budgets"] == [9, 18]
    assert set(table) >= {"random", "margin", "spread", "seconds_per_round"}
    assert all(0 <= acc <= 1 for strategy in ("random", "margin") for acc in table[strategy])
    bad = _cli("al-curve", str(train), "--test", str(test), "--start", "30", "--step", "30", "--rounds", "3")
    assert bad.returncode == 2 and "needs 120 labels" in bad.stderr
