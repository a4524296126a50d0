"""``python -m bertdemo train`` on multi-label files: label cells with --label-sep, 0/1 columns with --label-cols, "|"
found by itself; the data report it prints; wrong separators and columns that are not 0/1 as one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, toy_multilabel_rows, write_csv

pytestmark = pytest.mark.slow  # command-line subprocesses that train

LABELS = ("food", "sport", "weather")
QUICK = ("--epochs", "3", "--batch-size", "16", "--lr", "3e-3", "--max-length", "32", "--precision", "fp32",
         "--train-embeddings", "--min-steps", "0")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bertdemo", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def _sets(cell: str) -> set[str]:
    return set() if cell == "none" else set(cell.split("|"))


def _zero_one_rows() -> list[tuple]:
    return [(text, *(int(label in _sets(cell)) for label in LABELS), "x") for text, cell in toy_multilabel_rows()]


def _assert_multilabel_run(out: subprocess.CompletedProcess) -> dict:
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    config = json.loads((Path(summary["run"]) / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert set(config["thresholds"]) == set(LABELS) and all(0 < t < 1 for t in config["thresholds"].values())
    assert summary["multi_label"] and summary["validation"]["thresholds"] == config["thresholds"]
    assert 0 <= summary["validation"]["micro_f1"] <= 1
    return summary


def test_train_with_a_label_separator(tmp_path, tiny_model_dir):
    path = write_csv(tmp_path / "semi.csv", [(text, cell.replace("|", ";")) for text, cell in toy_multilabel_rows()])
    out = _cli("train", str(path), "--label-sep", ";", "--model", str(tiny_model_dir), *QUICK,
               "--workspace", str(tmp_path / "ws"), "--json")
    _assert_multilabel_run(out)
    report = out.stderr  # with --json the report and progress go to stderr
    assert "multi-label, 3 labels: food, sport, weather" in report and "separator ';'" in report
    counts = {label: sum(label in _sets(cell) for _, cell in toy_multilabel_rows()) for label in LABELS}
    assert "texts per label: " + ", ".join(f"{k} {v}" for k, v in counts.items()) in report
    assert "micro-F1" in report and "thresholds tuned on validation:" in report


def test_train_with_zero_one_label_columns(tmp_path, tiny_model_dir):
    path = write_csv(tmp_path / "flags.csv", _zero_one_rows(), header=("text", *LABELS, "source"))
    out = _cli("train", str(path), "--label-cols", "food, sport,weather", "--model", str(tiny_model_dir), *QUICK,
               "--workspace", str(tmp_path / "ws"), "--json")
    summary = _assert_multilabel_run(out)
    assert summary["train_rows"] + summary["validation_rows"] == len(toy_multilabel_rows())
    assert "labels from 0/1 columns food, sport, weather" in out.stderr


def test_the_report_of_a_file_with_bars_says_multi_label_without_being_told(toy_ml_csv):
    from bertdemo.cli_common import data_lines
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data

    lines = data_lines(load_data(toy_ml_csv, TrainConfig(max_length=32)))
    sets = [_sets(cell) for _, cell in toy_multilabel_rows()]
    assert lines[0].endswith("multi-label, 3 labels: food, sport, weather")
    per_text = ", ".join(f"{n}: {sum(len(s) == n for s in sets)} texts" for n in range(4))
    assert f"  labels per text: {per_text}" in lines and "  too rare to learn: none" in lines


@pytest.mark.parametrize("flags, message", [
    (("--label-sep", ";"), "holds the separator ';', but cells hold '|'"),
    (("--label-sep", ","), "cannot be used"),
    (("--label-cols", "food,notes"), "Label column 'notes' is not 0/1"),
    (("--label-cols", "food,nope"), "No column named 'nope'"),
])
def test_bad_label_flags_are_one_line_errors_before_any_model_loads(tmp_path, toy_ml_csv, capsys, flags, message):
    from bertdemo.cli import main

    data = toy_ml_csv
    if flags[0] == "--label-cols":
        data = write_csv(tmp_path / "flags.csv", [(t, f, "see " + t) for t, f, *_ in _zero_one_rows()],
                         header=("text", "food", "notes"))
    assert main(["train", str(data), *flags, "--model", "no-such-model", "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and message in err
