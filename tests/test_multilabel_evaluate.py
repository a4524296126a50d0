"""Evaluating a multi-label run: a test file scored like scikit-learn scores it, the thresholds a user moves (live
validation F1, then saved into the run), the CLI, and the Evaluate view."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from conftest import toy_multilabel_rows


@pytest.fixture(scope="module")
def ml_predictor(tiny_ml_run):
    from bertdemo.inference.predict import Predictor

    return Predictor.from_run(tiny_ml_run, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def auto_predictor(tiny_ml_run):
    """At the precision the CLI and the app pick on this machine (bf16 where the CPU has it): what their results
    are compared with."""
    from bertdemo.inference.predict import Predictor

    return Predictor.from_run(tiny_ml_run, device="cpu")


@pytest.fixture
def run_copy(tiny_ml_run, tmp_path):
    """A copy of the multi-label run in a workspace of its own: these tests write its thresholds."""
    return shutil.copytree(tiny_ml_run, tmp_path / "ws" / tiny_ml_run.name)


@pytest.fixture(scope="module")
def test_rows():
    return toy_multilabel_rows(n=40, seed=7)


def _truth(rows, labels) -> np.ndarray:
    return np.array([[label in cell.split("|") for label in labels] for _, cell in rows], dtype=int)


def test_evaluate_file_matches_scikit_learn_at_the_runs_thresholds(ml_predictor, test_rows, tmp_path):
    from bertdemo.inference.evaluate import evaluate_file

    labels = ml_predictor.labels
    path = tmp_path / "test.csv"
    pd.DataFrame(test_rows, columns=["text", "label"]).to_csv(path, index=False)
    metrics = evaluate_file(ml_predictor, path)
    y = _truth(test_rows, labels)
    pred = (ml_predictor.predict_proba([t for t, _ in test_rows]) >= ml_predictor.thresholds).astype(int)
    assert metrics["multi_label"] and metrics["count"] == len(test_rows)
    assert metrics["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert metrics["thresholds"] == pytest.approx(dict(zip(labels, ml_predictor.thresholds)))
    half = (ml_predictor.predict_proba([t for t, _ in test_rows]) >= 0.5).astype(int)
    assert metrics["at_0_5"]["micro_f1"] == pytest.approx(f1_score(y, half, average="micro", zero_division=0))

    columns = tmp_path / "columns.csv"  # the same rows as 0/1 columns read the same
    pd.DataFrame({"text": [t for t, _ in test_rows], **{label: y[:, j] for j, label in enumerate(labels)}}).to_csv(
        columns, index=False)
    again = evaluate_file(ml_predictor, columns, label_cols=list(labels))
    assert again["micro_f1"] == pytest.approx(metrics["micro_f1"]) and again["count"] == len(test_rows)


def test_evaluate_file_refuses_labels_the_run_lacks(ml_predictor, tmp_path):
    from bertdemo.inference.evaluate import evaluate_file

    path = tmp_path / "test.csv"
    pd.DataFrame([("pizza in the rain", "food|politics"), ("golf", "sport")], columns=["text", "label"]).to_csv(
        path, index=False)
    with pytest.raises(ValueError, match="labels the run does not know: 'politics'"):
        evaluate_file(ml_predictor, path)


def test_cli_evaluate_prints_and_returns_the_multilabel_metrics(tiny_ml_run, auto_predictor, test_rows, tmp_path,
                                                                capsys):
    from bertdemo.cli import main
    from bertdemo.inference.evaluate import evaluate_file

    path = tmp_path / "test.tsv"
    pd.DataFrame([(t, c.replace("|", ";")) for t, c in test_rows], columns=["text", "label"]).to_csv(
        path, sep="\t", index=False)
    assert main(["evaluate", str(tiny_ml_run), str(path), "--label-sep", ";", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = evaluate_file(auto_predictor, path, label_sep=";")
    for key in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss"):
        assert printed[key] == pytest.approx(expected[key])
    assert set(printed["per_class"]) == set(auto_predictor.labels) and "at_0_5" in printed
    assert main(["evaluate", str(tiny_ml_run), str(path), "--label-sep", ";"]) == 0
    text = capsys.readouterr().out
    assert "micro-F1" in text and "Hamming loss" in text and "threshold" in text


def _validation_truth(run_dir, labels):
    from bertdemo.data.multilabel import parse_cells

    table = pd.read_csv(run_dir / "data" / "validation.csv", dtype=str, keep_default_na=False)
    sets = parse_cells(table["label"].tolist())
    return table["text"].tolist(), np.array([[label in s for label in labels] for s in sets], dtype=int)


def test_live_f1_at_any_threshold_matches_scikit_learn(tiny_ml_run, auto_predictor):
    from bertdemo.inference.thresholds import label_f1, run_thresholds, threshold_scores, validation_set

    labels = auto_predictor.labels
    found = validation_set(tiny_ml_run)
    texts, y = _validation_truth(tiny_ml_run, labels)
    assert found.texts == texts and (found.y == y).all()
    probs = auto_predictor.predict_proba(texts)  # a predictor of its own, at the precision validation_set uses
    assert np.allclose(found.probs, probs, atol=1e-4)
    assert validation_set(tiny_ml_run) is found  # predicted once, then kept
    for j, label in enumerate(labels):
        for t in (0.1, 0.37, 0.8):
            assert label_f1(found, label, t) == pytest.approx(
                f1_score(y[:, j], (found.probs[:, j] >= t).astype(int), zero_division=0))
    vector = {label: t for label, t in zip(labels, (0.3, 0.5, 0.7))}
    pred = (found.probs >= np.array(list(vector.values()))).astype(int)
    scores = threshold_scores(found, vector)
    assert scores["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert scores["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    saved = run_thresholds(tiny_ml_run)  # what training tuned: its F1 is the metrics.json figure
    metrics = json.loads((tiny_ml_run / "metrics.json").read_text())
    # metrics.json comes from training's own validation pass. In fp32 the predictor's probabilities are the same to
    # rounding; in bf16 (a CPU with bf16) the two forwards round differently, and on this toy run's few validation
    # rows one decision that flips at a threshold moves micro-F1 by about a point
    close = 1e-6 if auto_predictor.precision == "fp32" else 0.03
    assert threshold_scores(found, saved)["micro_f1"] == pytest.approx(metrics["micro_f1"], abs=close)


def test_saved_thresholds_reload_and_refresh_the_cached_predictor(run_copy):
    from bertdemo.inference.predict import get_predictor
    from bertdemo.inference.thresholds import run_thresholds, save_thresholds

    before = get_predictor(run_copy)
    labels = before.labels
    saved = save_thresholds(run_copy, {labels[0]: 0.21, labels[2]: 0.83})
    assert saved[labels[0]] == 0.21 and saved[labels[2]] == 0.83 and saved[labels[1]] == before.thresholds[1]
    assert run_thresholds(run_copy) == saved
    after = get_predictor(run_copy)
    assert after is not before and after.thresholds.tolist() == [saved[label] for label in labels]
    config = json.loads((run_copy / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification" and config["thresholds"] == saved
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert metrics["thresholds"] == pytest.approx(saved)  # the Evaluate view describes what predictions do
    assert not [p for p in run_copy.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("bad, message", [({"food": 0.0}, "between 0 and 1"), ({"food": 1.0}, "between 0 and 1"),
                                          ({"food": float("nan")}, "between 0 and 1"),
                                          ({"politics": 0.4}, "no label 'politics'")])
def test_bad_thresholds_are_refused_and_nothing_is_written(run_copy, bad, message):
    from bertdemo.inference.thresholds import save_thresholds

    config = (run_copy / "config.json").read_bytes()
    with pytest.raises(ValueError, match=message):
        save_thresholds(run_copy, bad)
    assert (run_copy / "config.json").read_bytes() == config


def test_a_single_label_run_has_no_thresholds_to_save(tiny_run):
    from bertdemo.inference.thresholds import save_thresholds

    with pytest.raises(ValueError, match="one class"):
        save_thresholds(tiny_run, {"food": 0.4})


def _evaluate_tab(workspace):
    import gradio as gr

    from bertdemo.ui.tabs.evaluate import EvaluateTab

    page = SimpleNamespace(workspace=workspace, listeners=[], parts={})
    with gr.Blocks():
        return EvaluateTab(page)


def _view(run_dir):
    from bertdemo.runs import load_run_info, read_json
    from bertdemo.ui.page import RunView

    return RunView(info=load_run_info(run_dir), metrics=read_json(run_dir, "metrics.json"), runs=[])


def test_evaluate_view_slider_shows_f1_live_and_save_writes_the_run(run_copy):
    from bertdemo.inference.predict import get_predictor
    from bertdemo.inference.thresholds import label_f1, run_thresholds, threshold_scores, validation_set

    tab = _evaluate_tab(run_copy.parent)
    shown = tab.show_run(_view(run_copy))
    labels = list(run_thresholds(run_copy))
    assert shown[tab.threshold_panel].visible and shown[tab.edited] == {}  # nothing moved yet
    table = shown[tab.per_class]
    assert table["label"].tolist() == labels and table["threshold"].tolist() == pytest.approx(
        [round(t, 3) for t in run_thresholds(run_copy).values()])
    assert "micro-F1" in shown[tab.summary] and "at 0.5" in shown[tab.summary]
    assert len(shown[tab.confusion].data) == len(labels)  # one 2×2 per label
    wrong = shown[tab.misclassified]
    assert wrong.value["headers"] == ["text", "labels", "predicted", "wrongness"] and "most wrong first" in wrong.label

    label = labels[1]
    moved = tab.on_threshold(run_copy.name, label, 0.2, shown[tab.edited])
    found = validation_set(run_copy)
    assert moved[tab.edited] == {label: 0.2}  # only the label moved here
    note = moved[tab.threshold_note]
    assert f"validation F1 **{label_f1(found, label, 0.2):.3f}**" in note
    now = {**run_thresholds(run_copy), label: 0.2}
    assert f"micro-F1 **{threshold_scores(found, now)['micro_f1']:.3f}**" in note
    assert "Not saved yet" in note
    assert run_thresholds(run_copy)[label] != 0.2  # moving the slider writes nothing

    from bertdemo.inference.thresholds import save_thresholds

    get_predictor(run_copy)  # cached with the old thresholds
    save_thresholds(run_copy, {labels[0]: 0.33})  # someone else saves another label meanwhile: it stays
    saved = tab.on_save_thresholds(run_copy.name, moved[tab.edited], label)
    assert run_thresholds(run_copy)[label] == 0.2 and run_thresholds(run_copy)[labels[0]] == 0.33
    assert get_predictor(run_copy).thresholds[1] == 0.2 and get_predictor(run_copy).thresholds[0] == 0.33
    now = run_thresholds(run_copy)
    assert "Saved the thresholds" in saved[tab.threshold_note] and f"**{label}** at **0.20**" in saved[tab.threshold_note]
    assert saved[tab.per_class]["threshold"].tolist()[1] == 0.2 and saved[tab.threshold_label].value == label
    assert saved[tab.summary].startswith(f"## Micro-F1 {threshold_scores(found, now)['micro_f1']:.3f}")

    with pytest.raises(Exception, match="Choose one of the run's labels"):  # gr.Error at the edge
        tab.on_threshold(run_copy.name, "politics", 0.4, saved[tab.edited])


def test_evaluate_view_of_a_single_label_run_is_unchanged(tiny_run):
    tab = _evaluate_tab(tiny_run.parent)
    shown = tab.show_run(_view(tiny_run))
    assert shown[tab.threshold_panel].visible is False
    assert shown[tab.summary].startswith("## Accuracy")
    wrong = shown[tab.misclassified]
    assert wrong.value["headers"] == ["text", "label", "predicted", "confidence"] and "most confident" in wrong.label


def test_cli_evaluate_of_a_single_label_run_keeps_the_single_label_metrics(tiny_run, tmp_path, capsys):
    from bertdemo.cli import main
    from bertdemo.inference.evaluate import evaluate_file
    from bertdemo.inference.predict import Predictor

    path = tmp_path / "test.csv"
    path.write_text("text,label\nsome pizza again,food\nthe rain and the fog,weather\ntennis all day,sport\n")
    assert main(["evaluate", str(tiny_run), str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = evaluate_file(Predictor.from_run(tiny_run), path)
    assert "multi_label" not in printed and printed["accuracy"] == pytest.approx(expected["accuracy"])
    assert printed["confusion"] == expected["confusion"]
    assert main(["evaluate", str(tiny_run), str(path), "--label-sep", ";"]) == 2  # sets for a one-class run
    assert "cannot be scored on label sets" in capsys.readouterr().err
