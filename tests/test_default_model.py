"""The embedded default model (all-MiniLM-L6-v2) end to end on the bundled English sample, default config."""
from __future__ import annotations

import numpy as np
import pytest

from bertdemo.config import TrainConfig
from bertdemo.data import load_data
from bertdemo.events import DoneEvent, StartEvent
from bertdemo.models import load_tokenizer
from conftest import SAMPLE_EN

pytestmark = pytest.mark.slow  # the real default model


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    from bertdemo.training import train

    # the defaults, but the small-data plan's extra epochs (tests/test_plan.py): on this 400-row sample they take
    # minutes on a CPU without bf16, and this test is about the model and the rest of the defaults
    config = TrainConfig(min_steps=0)
    data = load_data(SAMPLE_EN, config, tokenizer=load_tokenizer(config.model))
    events = list(train(config, data, workspace=tmp_path_factory.mktemp("ws")))
    return events


def test_default_config_reaches_085_on_the_english_sample(default_run):
    start, done = default_run[0], default_run[-1]
    assert isinstance(start, StartEvent) and isinstance(done, DoneEvent)
    assert start.labels == ("business", "science_tech", "sports", "world")
    assert done.metrics["accuracy"] >= 0.85
    from bertdemo.device import cpu_supports_bf16

    assert start.precision == ("bf16" if cpu_supports_bf16() else "fp32")


def test_default_model_is_a_six_layer_twelve_head_bert(default_run):
    from bertdemo.explain.attention import attention
    from bertdemo.inference.predict import Predictor

    predictor = Predictor.from_run(default_run[-1].run_dir)
    assert predictor.model.config.model_type == "bert"
    result = attention(predictor, "The central bank raised interest rates again.")
    assert result.weights.shape[:2] == (6, 12)
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=1e-3)
    probs = predictor.predict("The striker scored twice in the cup final.")
    assert max(probs, key=probs.get) == "sports"
