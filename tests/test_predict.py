"""Prediction and explanations on a saved run."""
from __future__ import annotations

import threading

import numpy as np
import torch
import pytest

import bertdemo.explain.attributions as explain
from bertdemo.explain.attention import attention, attention_rollout
from bertdemo.explain.attributions import attributions
from bertdemo.explain.tokens import word_spans
from bertdemo.inference.predict import Predictor, get_predictor


ATOL = 2e-2  # batch vs one-by-one in bf16 weights: padding changes the rounding, not the ranking


@pytest.fixture(scope="module")
def predictor(tiny_run) -> Predictor:
    return get_predictor(tiny_run)


def test_probabilities_sum_to_one_and_match_the_label_order(predictor):
    probs = predictor.predict("the storm came with thunder")
    assert list(probs) == ["food", "sport", "weather"]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert max(probs, key=probs.get) == "weather"


def test_batch_equals_one_by_one_and_keeps_input_order(predictor):
    texts = ["pizza and cheese", "a long tennis match that went on and on for hours", "fog", ""]
    batch = predictor.predict_proba(texts)
    assert batch.shape == (4, 3)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    for text, row in zip(texts, batch):
        np.testing.assert_allclose(predictor.predict_proba([text])[0], row, atol=ATOL)


def test_predictor_is_thread_safe(predictor):
    texts = [f"we talked about {w} again" for w in ("rain", "golf", "soup", "snow", "boxing", "cake")] * 4
    expected = predictor.predict_proba(texts)
    results: dict[int, np.ndarray] = {}
    errors = []

    def work(i: int) -> None:
        try:
            results[i] = predictor.predict_proba([texts[i]])[0]
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, row in results.items():
        np.testing.assert_allclose(row, expected[i], atol=ATOL)


def test_attention_has_every_layer_and_head_and_rows_sum_to_one(predictor):
    result = attention(predictor, "the rain stopped before the football")
    layers, heads = predictor.model.config.num_hidden_layers, predictor.model.config.num_attention_heads
    n = len(result.tokens)
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    assert result.weights.shape == (layers, heads, n, n)
    np.testing.assert_allclose(result.weights.sum(axis=-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(result.rollout.sum(axis=-1), 1.0, atol=1e-4)
    assert not result.truncated
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # the view explains the numbers the Predict view shows: the same weights, the same probabilities
    shown = predictor.predict("the rain stopped before the football")
    assert result.probabilities == pytest.approx(shown, abs=1e-2)
    assert predictor.model.config._attn_implementation == "sdpa"  # predictions stay on the fast path


def test_attention_of_a_model_without_the_lean_forward_comes_from_the_eager_copy(tiny_run):
    plain = Predictor.from_run(tiny_run, lean=False)  # as for an architecture the lean forward does not reproduce
    text = "the rain stopped before the football"
    result, lean_result = attention(plain, text), attention(Predictor.from_run(tiny_run), text)
    assert plain._eager is not None and result.weights.shape == lean_result.weights.shape
    np.testing.assert_allclose(result.weights, lean_result.weights, atol=2e-2)  # fp32 copy vs bf16 weights


def test_long_text_is_truncated_with_a_flag(predictor):
    result = attention(predictor, "rain " * 200)
    assert result.truncated and len(result.tokens) == predictor.max_length


def test_rollout_of_identity_attention_is_identity():
    weights = np.broadcast_to(np.eye(4), (3, 2, 4, 4)).copy()
    np.testing.assert_allclose(attention_rollout(weights), np.eye(4), atol=1e-12)


def test_rollout_of_uniform_attention_spreads_evenly():
    weights = np.full((2, 2, 4, 4), 0.25)
    rollout = attention_rollout(weights)
    assert rollout[0, 0] > rollout[0, 1]  # the residual path keeps a token's own share larger
    np.testing.assert_allclose(rollout.sum(axis=-1), 1.0)


@pytest.mark.parametrize("method", ["integrated_gradients", "grad_x_input"])
def test_attributions_cover_every_token(predictor, method):
    text = "we talked about tennis again"
    result = attributions(predictor, text, method=method)
    assert len(result.scores) == len(result.tokens) and np.isfinite(result.scores).all()
    probs = predictor.predict(text)
    # default target: the predicted class (of the same model: only batch shapes change the bf16 rounding)
    assert probs[result.target] == pytest.approx(max(probs.values()), abs=ATOL)
    assert result.probability == pytest.approx(probs[result.target], abs=ATOL)
    words = [w for w, _ in word_spans(result.tokens, result.scores, special=result.special, word_ids=result.word_ids)]
    assert "tennis" in words and "[CLS]" not in words


def test_integrated_gradients_are_complete(predictor):
    """IG scores sum to logit(target|text) − logit(target|baseline): the completeness axiom, up to delta."""
    text = "the snow and the wind"
    result = attributions(predictor, text, method="integrated_gradients")
    gap = _target_logit(predictor, text, result.target) - _target_logit(predictor, text, result.target, baseline=True)
    assert result.delta < 0.05 * max(1.0, abs(gap))
    assert result.scores.sum() == pytest.approx(gap, abs=0.05 * max(1.0, abs(gap)))
    assert 2 * explain.FIRST_PANELS + 1 <= result.steps <= explain.DEFAULT_STEPS


def test_integrated_gradients_agree_with_a_fine_fp32_reference(predictor):
    """The adaptive quadrature (a few dozen points, bf16) lands where a 200-step fp32 Riemann sum lands."""
    text = "heavy rain and thunder over the football match"
    result = attributions(predictor, text, method="integrated_gradients")
    model = predictor.eager_model()  # fp32, the transformers forward: independent of the lean one
    ids = predictor.encode([text])["input_ids"]
    embed = model.get_input_embeddings()
    x, x0 = embed(ids)[0].detach(), embed(explain._baseline(predictor, ids))[0].detach()
    alphas = (torch.arange(200, dtype=torch.float32) + 0.5) / 200  # midpoint rule
    path = (x0 + alphas[:, None, None] * (x - x0)).requires_grad_(True)
    logit = model(inputs_embeds=path).logits[:, predictor.labels.index(result.target)].sum()
    (grad,) = torch.autograd.grad(logit, path)
    reference = ((x - x0) * grad.mean(dim=0)).sum(dim=-1).numpy()
    assert np.linalg.norm(result.scores - reference) <= 0.1 * np.linalg.norm(reference)
    assert np.argmax(np.abs(result.scores)) == np.argmax(np.abs(reference))  # the same most important token


def test_gradient_x_input_is_the_embeddings_times_the_gradient(predictor):
    """Checked against the fp32 eager copy's own autograd (the transformers forward, not the lean one)."""
    text = "heavy rain and thunder over the football match"
    result = attributions(predictor, text, method="grad_x_input")
    model = predictor.eager_model()
    x = model.get_input_embeddings()(predictor.encode([text])["input_ids"]).detach().requires_grad_(True)
    logit = model(inputs_embeds=x).logits[0, predictor.labels.index(result.target)]
    (grad,) = torch.autograd.grad(logit, x)
    expected = (x * grad).sum(dim=-1)[0].detach().numpy()
    assert result.steps == 0 and result.delta == 0.0
    assert np.linalg.norm(result.scores - expected) <= 0.1 * np.linalg.norm(expected)  # bf16 against fp32
    assert np.argmax(np.abs(result.scores)) == np.argmax(np.abs(expected))


def test_integrated_gradients_refine_until_the_budget_when_never_complete(predictor, monkeypatch):
    monkeypatch.setattr(explain, "_good_enough", lambda error, gap: False)  # never satisfied: refine to the cap
    assert 28 <= attributions(predictor, "the snow and the wind", steps=30).steps <= 30
    monkeypatch.setattr(explain, "_good_enough", lambda error, gap: True)  # the first grid is kept
    assert attributions(predictor, "the snow and the wind", steps=30).steps == 2 * explain.FIRST_PANELS + 1


class _SwitchPath:
    """A path whose logit is flat, then flips at α = 0.37 within ~0.02 (as trained classifiers' do); three
    tokens share the change 50/30/20, so the exact attributions are known."""

    share = torch.tensor([0.5, 0.3, 0.2])

    def __init__(self):
        self.seen: list[float] = []

    def contributions(self, alphas):
        self.seen += alphas
        a = torch.tensor(alphas, dtype=torch.float64)
        s = torch.sigmoid((a - 0.37) / 0.02)
        logits = 3 * s
        slope = 3 * s * (1 - s) / 0.02  # d logit / d alpha
        return logits.float(), (slope[:, None] * self.share).float()


def test_adaptive_path_integral_puts_its_points_where_the_logit_turns():
    path = _SwitchPath()
    exact = 3 * (torch.sigmoid(torch.tensor(0.63 / 0.02)) - torch.sigmoid(torch.tensor(-0.37 / 0.02)))
    scores, used, error = explain._integrate_path(path, max_points=50)
    np.testing.assert_allclose(scores.numpy(), (exact * _SwitchPath.share).numpy(), atol=0.02)
    assert used == len(path.seen) == len(set(path.seen)) < 50  # each point evaluated once, within the budget
    assert error == pytest.approx(abs(float(scores.sum()) - float(exact)), abs=1e-5)
    refined = path.seen[2 * explain.FIRST_PANELS + 1:]
    assert refined and all(abs(a - 0.37) < 0.1 for a in refined)  # only where the logit moves
    uniform, _, _ = explain._integrate_path(_SwitchPath(), max_points=17)  # no refinement allowed
    assert abs(float(uniform.sum()) - float(exact)) > 0.1  # what refinement fixed


class _BiasedSwitchPath(_SwitchPath):
    """The same path with a small constant error in every gradient (as bf16 rounding can leave): each panel
    passes its own check, the whole path misses by 0.2 however finely it is cut."""

    def contributions(self, alphas):
        logits, contributions = super().contributions(alphas)
        return logits, contributions + 0.2 / 3


def test_adaptive_path_integral_stops_chasing_an_error_refinement_does_not_shrink():
    path = _BiasedSwitchPath()
    scores, used, error = explain._integrate_path(path, max_points=129)
    assert error == pytest.approx(0.2, abs=0.02)  # reported, not hidden
    assert used < 60  # one attempt at the whole-path error, not a march to the 129-point budget


def _target_logit(predictor, text, target, baseline=False) -> float:
    from bertdemo.explain.attributions import _baseline

    batch = predictor.encode([text])
    if baseline:
        batch["input_ids"] = _baseline(predictor, batch["input_ids"])
    with torch.inference_mode():  # the model predictions use: the one attributions explain
        return float(predictor.model(**batch).logits.float()[0, predictor.labels.index(target)])


def test_explanations_refuse_empty_text_and_unknown_class(predictor):
    with pytest.raises(ValueError, match="empty"):
        attention(predictor, "   ")
    with pytest.raises(ValueError, match="Unknown class 'cars'.*food, sport, weather"):
        attributions(predictor, "pizza", target="cars")
    with pytest.raises(ValueError, match="between 3 and 129"):
        attributions(predictor, "pizza", steps=1)


def test_word_spans_merge_word_pieces():
    tokens = ["[CLS]", "play", "##ing", "golf", "[SEP]"]
    special = [True, False, False, False, True]  # asked of the tokenizer in the app, not read off the strings
    assert word_spans(tokens, np.array([9, 1.0, 0.5, 2.0, 9]), special=special) == [("playing", 1.5), ("golf", 2.0)]


def test_predictions_stay_right_while_explanations_run_in_other_threads(predictor):
    """Attributions differentiate the very model predictions use: that must never disturb concurrent predictions."""
    texts = ["the storm came with thunder", "pizza and cheese again", "a long tennis match"]
    expected = predictor.predict_proba(texts)
    errors: list[BaseException] = []
    mismatches = []

    def run_explanations() -> None:
        try:
            for _ in range(3):
                attributions(predictor, "we talked about golf and rain", method="integrated_gradients", steps=16)
                attention(predictor, "snow and fog")
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    def predict() -> None:
        try:
            for _ in range(30):
                got = predictor.predict_proba(texts)
                if not np.allclose(got, expected, atol=1e-6):
                    mismatches.append(got)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=run_explanations) for _ in range(2)] + [threading.Thread(target=predict) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not mismatches


def test_odd_inputs_are_strings(predictor):
    probs = predictor.predict_proba([5, None, "x"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_fast_path_precision_and_fp32_agree_on_the_ranking(tiny_run):
    fp32 = Predictor.from_run(tiny_run, precision="fp32")
    auto = Predictor.from_run(tiny_run)
    texts = ["pizza and cheese", "snow and fog", "a tennis and golf match"]
    np.testing.assert_array_equal(fp32.predict_proba(texts).argmax(1), auto.predict_proba(texts).argmax(1))
    np.testing.assert_allclose(fp32.predict_proba(texts), auto.predict_proba(texts), atol=ATOL)
    assert next(fp32.model.parameters()).dtype == torch.float32
    assert next(auto.eager_model().parameters()).dtype == torch.float32  # the fallback copy for explanations


def test_batch_file_gets_labels_and_a_spreadsheet_safe_csv(predictor, tmp_path):
    import pandas as pd

    from bertdemo.inference.batch_predict import predict_file, save_predictions

    src = tmp_path / "batch.csv"
    src.write_text('id,text\n1,pizza and soup\n2,"=HYPERLINK(""http://x"",""click"")"\n3,snow and fog\n')
    out = predict_file(predictor, src)
    assert out["id"].tolist() == ["1", "2", "3"]
    assert set(out["predicted_label"]) <= set(predictor.labels)
    np.testing.assert_allclose(out[[f"p_{c}" for c in predictor.labels]].sum(axis=1), 1.0, atol=1e-3)
    saved = pd.read_csv(save_predictions(out, tmp_path / "out.csv"), dtype=str)
    assert saved.loc[1, "text"].startswith("'=HYPERLINK")  # a formula cell is defused
    assert saved.loc[0, "text"] == "pizza and soup"


def test_test_file_is_scored_and_unknown_labels_are_named(predictor, tmp_path):
    from bertdemo.inference.evaluate import evaluate_file

    good = tmp_path / "test.csv"
    good.write_text("sentence,class\npizza and soup,food\nsnow and fog,weather\ngolf and tennis,sport\n")
    metrics = evaluate_file(predictor, good)
    assert metrics["count"] == 3 and sum(map(sum, metrics["confusion"])) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfast cars,cars\n")
    with pytest.raises(ValueError, match="Test file bad.csv has labels the training data lacks: 'cars'"):
        evaluate_file(predictor, bad)


def test_the_base_model_is_seeded_without_reseeding_the_global_generator(tiny_model_dir):
    from bertdemo.inference.predict import base_predictor

    labels = ("food", "sport", "weather")
    torch.manual_seed(11)
    before = torch.get_rng_state()
    heads = [base_predictor(str(tiny_model_dir), labels, seed=seed).model.classifier.weight.float()
             for seed in (3, 3, 4)]
    assert torch.equal(torch.get_rng_state(), before)  # a training run in another thread draws on undisturbed
    assert torch.equal(heads[0], heads[1]) and not torch.equal(heads[0], heads[2])  # seeded all the same
