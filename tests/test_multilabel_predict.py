"""Predicting with a multi-label run: per-label sigmoids that transformers' own pipeline reproduces, label sets
decided at each label's threshold, batch files with the sets, the CLI, and the Predict view's bars."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

TEXTS = ["pizza and pasta at the match", "rain and snow today", "the news number 3", "tennis",
         "a storm cancelled the football, we ate soup instead"]


@pytest.fixture(scope="module")
def ml_predictor(tiny_ml_run):
    from bertdemo.inference.predict import Predictor

    return Predictor.from_run(tiny_ml_run, device="cpu", precision="fp32")


def test_pipeline_gives_the_same_per_label_probabilities(tiny_ml_run, ml_predictor):
    from transformers import pipeline

    assert ml_predictor.multi_label and ml_predictor.uses_lean_forward  # the fast path is what is checked
    classify = pipeline("text-classification", model=str(tiny_ml_run), top_k=None, function_to_apply="sigmoid",
                        device="cpu")
    theirs = np.array([[{d["label"]: d["score"] for d in row}[label] for label in ml_predictor.labels]
                       for row in classify(TEXTS)])
    ours = ml_predictor.predict_proba(TEXTS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert not np.allclose(ours.sum(axis=1), 1.0)  # sigmoids, not a softmax over labels


def test_label_sets_use_each_labels_saved_threshold(tiny_ml_run, ml_predictor):
    config = json.loads((tiny_ml_run / "config.json").read_text())
    assert ml_predictor.thresholds.tolist() == [config["thresholds"][label] for label in ml_predictor.labels]
    probs = ml_predictor.predict_proba(TEXTS)
    for row, chosen in zip(probs, ml_predictor.decide(probs)):
        assert chosen == tuple(label for label, p, t in zip(ml_predictor.labels, row, ml_predictor.thresholds)
                               if p >= t)


def test_batch_columns_write_label_sets_and_per_label_probabilities():
    import pandas as pd

    from bertdemo.inference.batch_predict import prediction_columns

    probs = np.array([[0.9, 0.2, 0.7], [0.1, 0.3, 0.2], [0.5, 0.6, 0.1]], dtype=np.float32)
    out = prediction_columns(pd.DataFrame({"text": ["a", "b", "c"]}), probs, ("food", "sport", "weather"),
                             thresholds=np.array([0.5, 0.65, 0.6]))
    assert out["predicted_labels"].tolist() == ["food|weather", "none", "food"]  # sport's 0.6 is under its 0.65
    assert out["p_sport"].tolist() == pytest.approx([0.2, 0.3, 0.6])
    assert "predicted_label" not in out and "confidence" not in out  # a single class would be a lie here


def test_predict_file_reads_the_runs_thresholds(tiny_ml_run, ml_predictor, tmp_path):
    import pandas as pd

    from bertdemo.data.multilabel import parse_cells
    from bertdemo.inference.batch_predict import predict_file

    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(path, index=False)
    out = predict_file(ml_predictor, path)
    probs = out[[f"p_{label}" for label in ml_predictor.labels]].to_numpy()
    assert [s if s else () for s in parse_cells(out["predicted_labels"].tolist())] == ml_predictor.decide(
        ml_predictor.predict_proba(TEXTS))
    assert np.allclose(probs, ml_predictor.predict_proba(TEXTS), atol=1e-4)


def test_cli_predict_prints_the_set_and_every_label(tiny_ml_run, ml_predictor, capsys):
    from bertdemo.cli import main

    assert main(["predict", str(tiny_ml_run), *TEXTS[:2], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = ml_predictor.decide(ml_predictor.predict_proba(TEXTS[:2]))
    assert [tuple(r["labels"]) for r in rows] == expected
    assert set(rows[0]["probabilities"]) == set(ml_predictor.labels) == set(rows[0]["thresholds"])
    assert main(["predict", str(tiny_ml_run), TEXTS[0]]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith((", ".join(expected[0]) or "(no label)") + "\t" + TEXTS[0])
    assert all(f" {label} " in printed for label in ml_predictor.labels) and "threshold" in printed


def _explain_tab(workspace):
    import gradio as gr

    from bertdemo.ui.tabs.explain import ExplainTab

    page = SimpleNamespace(workspace=workspace, listeners=[], parts={}, watch=SimpleNamespace(add=lambda view: None))
    with gr.Blocks():
        return ExplainTab(page)


def test_predict_view_shows_a_bar_per_label_against_its_threshold(tiny_ml_run, tiny_run):
    from bertdemo.inference.predict import get_predictor
    from bertdemo.runs import load_run_info
    from bertdemo.ui.page import RunView

    tab = _explain_tab(tiny_ml_run.parent)
    shown = tab.show_run(RunView(info=load_run_info(tiny_ml_run), metrics={}, runs=[]))
    assert shown[tab.label_column].visible and shown[tab.probs].visible is False
    out = tab.on_predict_view(tiny_ml_run.name, TEXTS[0])
    predictor = get_predictor(tiny_ml_run)
    probs = predictor.predict_proba([TEXTS[0]])[0]
    bars, marks = out[tab.label_plot].data
    assert list(bars.y) == list(predictor.labels) and np.allclose(bars.x, probs, atol=1e-6)
    assert np.allclose(marks.x, predictor.thresholds)  # the threshold markers
    chosen = predictor.decide(probs[None])[0]
    ticked = [label for label, text in zip(bars.y, bars.text) if text.endswith("✓")]
    assert ticked == list(chosen)  # the predicted labels, and only they, are marked
    assert len({c for label, c in zip(bars.y, bars.marker.color) if label in chosen}) <= 1 and not (
        set(c for label, c in zip(bars.y, bars.marker.color) if label in chosen)
        & set(c for label, c in zip(bars.y, bars.marker.color) if label not in chosen))  # and coloured apart
    words = out[tab.label_words]
    assert (all(label in words for label in chosen) if chosen else "no label" in words)
    assert tab.on_predict_view(tiny_ml_run.name, " ")[tab.label_plot] is None  # empty text clears

    single = _explain_tab(tiny_run.parent)  # a single-label run keeps gr.Label, untouched
    out = single.on_predict_view(tiny_run.name, TEXTS[0])
    assert abs(sum(out[single.probs].values()) - 1) < 1e-5
    shown = single.show_run(RunView(info=load_run_info(tiny_run), metrics={}, runs=[]))
    assert shown[single.probs].visible and shown[single.label_column].visible is False


def test_no_label_reads_as_no_label():
    from bertdemo.ui.tabs.explain import predicted_set_words

    assert "no label" in predicted_set_words(()) and "**a&lt;b**" in predicted_set_words(("a<b",))
