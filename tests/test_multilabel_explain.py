"""Explaining a multi-label run: every method explains the label the user chose, and the faithfulness test scores
that label's own sigmoid, never a softmax across labels."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

TEXT = "pizza at the football match in the rain"


@pytest.fixture(scope="module")
def ml_predictor(tiny_ml_run):
    from bertdemo.inference.predict import Predictor

    return Predictor.from_run(tiny_ml_run, device="cpu", precision="fp32")


def _logits(predictor, ids: list[list[int]]) -> torch.Tensor:
    """The model's own (transformers) logits of word-piece sequences, one at a time (no padding)."""
    with torch.no_grad():
        return torch.cat([predictor.model(input_ids=torch.tensor([s])).logits for s in ids]).float()


def test_attributions_explain_the_chosen_label_with_its_sigmoid(ml_predictor):
    from bertdemo.explain.attributions import attributions

    sigmoids = ml_predictor.predict_proba([TEXT])[0]
    results = {label: attributions(ml_predictor, TEXT, target=label) for label in ml_predictor.labels}
    for j, (label, result) in enumerate(results.items()):
        assert result.target == label
        assert result.probability == pytest.approx(float(sigmoids[j]), abs=1e-5)
        assert [result.probabilities[k] for k in ml_predictor.labels] == pytest.approx(sigmoids.tolist(), abs=1e-5)
        assert result.delta < 0.05  # integrated gradients add up to that label's logit change
    assert sum(results[ml_predictor.labels[0]].probabilities.values()) != pytest.approx(1.0, abs=1e-3)
    first, second = (results[label].scores for label in ml_predictor.labels[:2])
    assert not np.allclose(first, second)  # another label, another explanation
    default = attributions(ml_predictor, TEXT)
    assert default.target == ml_predictor.labels[int(np.argmax(sigmoids))]  # the most probable label


def test_occlusion_and_the_deletion_test_score_the_labels_sigmoid(ml_predictor):
    from bertdemo.explain.faithfulness import occlusion_scores
    from bertdemo.explain.methods import explain

    ids = ml_predictor.encode(["soup"])["input_ids"][0].tolist()  # [CLS] soup [SEP] (one word-piece here)
    special = ml_predictor.special_tokens_mask(ids)
    kept = [t for t, s in zip(ids, special) if s]  # every word-piece deleted: only [CLS] [SEP] stay
    logits = _logits(ml_predictor, [ids, kept])  # (2, L)
    for target in range(len(ml_predictor.labels)):
        scores = occlusion_scores(ml_predictor, ids, special, target)
        by_sigmoid = float(torch.sigmoid(logits[0, target]) - torch.sigmoid(logits[1, target]))
        by_softmax = float(torch.softmax(logits[0], -1)[target] - torch.softmax(logits[1], -1)[target])
        assert scores[~np.array(special)].sum() == pytest.approx(by_sigmoid, abs=1e-5)
        assert abs(by_sigmoid - by_softmax) > 1e-4  # the two would differ: the test tells them apart

    target = ml_predictor.labels[-1]
    result = explain(ml_predictor, TEXT, target=target, methods=["integrated_gradients", "occlusion"])
    assert result.target == target
    full = torch.sigmoid(_logits(ml_predictor, [ml_predictor.encode([TEXT])["input_ids"][0].tolist()]))[0]
    for faith in result.faithfulness.values():
        assert faith.curve[0] == pytest.approx(float(full[-1]), abs=1e-5)  # p(target | text): its sigmoid


def test_attention_view_reports_sigmoids_and_unknown_labels_are_refused(ml_predictor):
    from bertdemo.explain.attention import attention
    from bertdemo.explain.methods import explain

    result = attention(ml_predictor, TEXT)
    assert list(result.probabilities.values()) == pytest.approx(ml_predictor.predict_proba([TEXT])[0].tolist(),
                                                                abs=1e-5)
    with pytest.raises(ValueError, match="Unknown label 'politics'. Choose one of"):
        explain(ml_predictor, TEXT, target="politics", methods=["occlusion"])


def test_cli_explain_label_chooses_the_target(tiny_ml_run, ml_predictor, capsys):
    from bertdemo.cli import main

    label = ml_predictor.labels[1]
    assert main(["explain", str(tiny_ml_run), TEXT, "--label", label, "--methods", "occlusion", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["target"] == label and set(record["methods"]) == {"occlusion"}
    assert record["probabilities"][label] == pytest.approx(float(ml_predictor.predict_proba([TEXT])[0][1]), abs=1e-4)


def _explain_tab(workspace):
    import gradio as gr
    from types import SimpleNamespace

    from bertdemo.ui.tabs.explain import ExplainTab

    page = SimpleNamespace(workspace=workspace, listeners=[], parts={}, watch=SimpleNamespace(add=lambda view: None))
    with gr.Blocks():
        return ExplainTab(page)


def test_explain_tab_scores_the_label_chosen_in_the_dropdown(tiny_ml_run, ml_predictor):
    from bertdemo.runs import load_run_info
    from bertdemo.ui.page import RunView

    tab = _explain_tab(tiny_ml_run.parent)
    shown = tab.show_run(RunView(info=load_run_info(tiny_ml_run), metrics={}, runs=[]))
    assert shown[tab.target].label == "Explain which label"
    assert [c[1] for c in shown[tab.target].choices] == ["(predicted class)", *ml_predictor.labels]
    label = ml_predictor.labels[2]
    *_, last = tab.on_explanations(tiny_ml_run.name, TEXT, label, "deletion", "words")
    result = last[tab.explained_state]
    assert result.target == label and not result.pending
    p = float(ml_predictor.predict_proba([TEXT])[0][2])
    assert f"Explaining **{label}** (probability {p:.1%})" in last[tab.attr_summary]
    assert result.faithfulness[result.shown_first].curve[0] == pytest.approx(p, abs=1e-4)  # the label's sigmoid


def test_base_vs_fine_tuned_reads_sigmoids_on_both_sides(tiny_ml_run):
    tab = _explain_tab(tiny_ml_run.parent)
    out = tab.on_compare(tiny_ml_run.name, TEXT)
    for side in (tab.base_probs, tab.tuned_probs):
        assert abs(sum(out[side].values()) - 1.0) > 1e-3  # one sigmoid per label, not a softmax
