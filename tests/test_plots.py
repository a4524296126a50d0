"""Figure builders: plain data in, plotly figures out, with the numbers where they belong."""
import numpy as np
import plotly.graph_objects as go
import pytest

from bertdemo import plots


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def attention():
    rng = np.random.default_rng(0)
    tokens = ["[CLS]", "the", "film", "the", "##s", "[SEP]"]  # "the" twice: must stay two rows
    weights = _softmax_rows(rng.normal(size=(2, 4, len(tokens), len(tokens))))  # (L, H, T, T)
    return tokens, weights


def test_smooth_is_bias_corrected_ema():
    assert plots.smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    out = plots.smooth([1.0, 0.0], weight=0.5)
    assert out[0] == pytest.approx(1.0)
    assert out[1] == pytest.approx((0.5 * 0.5) / 0.75)
    with pytest.raises(ValueError, match="smoothing"):
        plots.smooth([1.0], weight=1.0)


def test_loss_figure_has_raw_smoothed_and_validation_traces():
    steps = [{"step": i, "loss": 1.0 / i, "learning_rate": 1e-4} for i in range(1, 11)]
    evals = [{"step": 5, "val_loss": 0.4, "accuracy": 0.8, "macro_f1": 0.7, "is_best": True}]
    fig = plots.loss_figure(steps, evals)
    names = [t.name for t in fig.data]
    assert names == ["train loss (per step)", "train loss (smoothed)", "validation loss"]
    assert list(fig.data[0].y) == [s["loss"] for s in steps]
    assert list(fig.data[2].x) == [5] and list(fig.data[2].y) == [0.4]
    smoothed = list(fig.data[1].y)
    assert smoothed[0] == pytest.approx(1.0) and smoothed[-1] > 0.1  # smoothing lags the falling raw loss


def test_empty_inputs_give_a_message_not_an_error():
    for fig in (plots.loss_figure([], []), plots.eval_metrics_figure([]), plots.learning_rate_figure([]),
                plots.class_counts_figure({}), plots.token_length_figure([], 128), plots.probabilities_figure({})):
        assert isinstance(fig, go.Figure)
        assert fig.layout.annotations and fig.layout.annotations[0].text


def test_a_blank_figure_message_is_wrapped_into_short_lines_of_whole_words():
    """Plotly never wraps a text: a long placeholder was cut at "appear after the first evaluati" (issue 19 item 8)."""
    message = plots.eval_metrics_figure([]).layout.annotations[0].text
    assert message.replace("<br>", " ") == "Validation accuracy and macro-F1 appear after the first evaluation"
    assert all(len(line) <= plots.PLACEHOLDER_LINE for line in message.split("<br>")) and "<br>" in message


def test_eval_metrics_figure_marks_best():
    evals = [{"step": 2, "val_loss": 1.0, "accuracy": 0.5, "macro_f1": 0.4, "is_best": True},
             {"step": 4, "val_loss": 0.8, "accuracy": 0.7, "macro_f1": 0.6, "is_best": True},
             {"step": 6, "val_loss": 0.9, "accuracy": 0.6, "macro_f1": 0.5, "is_best": False}]
    fig = plots.eval_metrics_figure(evals)
    best = [t for t in fig.data if t.name == "best (kept)"][0]
    assert list(best.x) == [4] and list(best.y) == [0.6]


def test_learning_rate_figure():
    fig = plots.learning_rate_figure([{"step": 1, "learning_rate": 1e-5}, {"step": 2, "learning_rate": 2e-5}])
    assert list(fig.data[0].y) == [1e-5, 2e-5]


def test_class_counts_sorted_largest_first():
    fig = plots.class_counts_figure({"a": 3, "b": 10, "c": 1})
    assert list(fig.data[0].x) == ["b", "a", "c"]
    assert list(fig.data[0].y) == [10, 3, 1]


def test_token_length_histogram_has_max_length_line():
    fig = plots.token_length_figure([5, 10, 200, 300], 128)
    assert list(fig.data[0].x) == [5, 10, 200, 300]
    assert fig.layout.shapes[0].x0 == 128
    assert "2 truncated" in fig.layout.annotations[0].text


def test_confusion_figure_keeps_label_order():
    fig = plots.confusion_figure([[5, 1], [2, 7]], ["neg", "pos"])
    heat = fig.data[0]
    assert list(heat.x) == ["neg", "pos"] and list(heat.y) == ["neg", "pos"]
    assert np.asarray(heat.z).tolist() == [[5, 1], [2, 7]]


def test_probabilities_highest_on_top():
    fig = plots.probabilities_figure({"sports": 0.7, "tech": 0.2, "world": 0.1})
    assert list(fig.data[0].y)[-1] == "sports"  # plotly draws the last bar at the top
    assert sum(fig.data[0].x) == pytest.approx(1.0)


def test_attention_figure_keeps_repeated_tokens_apart(attention):
    tokens, weights = attention
    fig = plots.attention_figure(tokens, weights[1, 2], title="layer 2, head 3")
    z = np.asarray(fig.data[0].z)
    assert z.shape == (6, 6)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-6)
    assert list(fig.layout.xaxis.ticktext) == tokens and list(fig.layout.xaxis.tickvals) == list(range(6))
    with pytest.raises(ValueError, match="T=6"):
        plots.attention_figure(tokens, weights[0])


def test_all_heads_figure_one_panel_per_head(attention):
    tokens, weights = attention
    fig = plots.all_heads_figure(tokens, weights[0], layer=0)
    assert len(fig.data) == 4
    np.testing.assert_allclose(np.asarray(fig.data[3].z), weights[0, 3])


def test_cls_row_figure_is_head_mean_of_row_zero(attention):
    tokens, weights = attention
    fig = plots.cls_row_figure(tokens, weights)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 6)  # (L, T)
    np.testing.assert_allclose(z, weights[:, :, 0, :].mean(axis=1))
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-6)


def test_rollout_and_attribution_figures(attention):
    tokens, weights = attention
    fig = plots.rollout_figure(tokens, weights[0, 0])
    assert "rollout" in fig.layout.title.text.lower()
    bars = plots.attribution_figure(tokens, [0.5, -0.2, 0.0, 0.1, 0.3, -0.1])
    assert list(bars.data[0].customdata) == tokens
    with pytest.raises(ValueError, match="one value per token"):
        plots.attribution_figure(tokens, [1.0])
