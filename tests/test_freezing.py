"""freeze_layers: the lowest encoder layers stay as loaded, and the layers above train exactly as the stock path
trains them when it simply leaves the lower layers' gradients out of the update."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from bertdemo import fast
from bertdemo.training.freezing import encoder_layers, freeze_lower_layers
from bertdemo.training.loaders import model_inputs
from bertdemo.training.session import batch_loss, start_session, training_step

STEPS = 15


def _lower(model, count: int) -> list[torch.nn.Parameter]:
    embeddings, layers = encoder_layers(model)
    return [p for module in (embeddings, *layers[:count]) for p in module.parameters()]


def _frozen_trajectory(config, data, monkeypatch) -> tuple[np.ndarray, object]:
    monkeypatch.setenv(fast.ENV, "")
    s = start_session(config, data)
    s.model.train()
    batches = itertools.islice(itertools.chain.from_iterable(itertools.repeat(s.loader)), STEPS)
    return np.array([training_step(s, batch, config.max_grad_norm) for batch in batches]), s


def _stock_trajectory(config, data, monkeypatch, leave_out: int) -> np.ndarray:
    """The stock path (no fast paths, every layer trainable, full backward), whose update skips the lowest
    ``leave_out`` layers' gradients: what freezing means, computed the slow way."""
    monkeypatch.setenv(fast.ENV, "all")
    s = start_session(dataclasses.replace(config, freeze_layers=0), data)
    s.model.train()
    lower = _lower(s.model, leave_out)
    losses = []
    for batch in itertools.islice(itertools.chain.from_iterable(itertools.repeat(s.loader)), STEPS):
        with s.rng:
            logits = s.model(**model_inputs(batch)).logits
            loss = batch_loss(s, logits, batch["labels"])
            loss.backward()
        for p in lower:
            p.grad = None  # AdamW and clipping skip a parameter without a gradient: no update, no decay
        s.precision.step(s.optimizer, config.max_grad_norm)
        s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return np.array(losses)


def test_frozen_layers_follow_the_stock_trajectory_and_do_not_move(tiny_config, toy_data, monkeypatch):
    config = dataclasses.replace(tiny_config, freeze_layers=1, learning_rate=3e-3, freeze_word_embeddings=True,
                                 given=("freeze_layers",))
    frozen, s = _frozen_trajectory(config, toy_data, monkeypatch)
    lower = _lower(s.model, 1)
    assert lower and not any(p.requires_grad for p in lower)
    assert not any(p.grad is not None for p in lower)  # nothing below layer 1 was backpropagated
    trained = {id(p) for group in s.optimizer.param_groups for p in group["params"]}
    assert trained and not trained & {id(p) for p in lower}
    stock = _stock_trajectory(config, toy_data, monkeypatch, leave_out=1)
    np.testing.assert_allclose(frozen, stock, atol=1e-4, rtol=0)
    everything, _ = _frozen_trajectory(dataclasses.replace(config, freeze_layers=0), toy_data, monkeypatch)
    assert np.abs(everything - frozen).max() > 10 * 1e-4  # the frozen layers change the run beyond the tolerance
    fresh = start_session(dataclasses.replace(config, freeze_layers=0), toy_data)  # the same seed, untrained
    for before, after in zip(_lower(fresh.model, 1), lower):
        torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_upper_gradients_are_the_stock_ones(tiny_config, toy_data, monkeypatch):
    grads = []
    for count, off in ((1, ""), (0, "all")):
        monkeypatch.setenv(fast.ENV, off)
        s = start_session(dataclasses.replace(tiny_config, freeze_layers=count, freeze_word_embeddings=True,
                                              given=("freeze_layers",)), toy_data)
        s.model.train()
        batch = next(iter(s.loader))
        with s.rng:
            loss = batch_loss(s, s.model(**model_inputs(batch)).logits, batch["labels"])
            loss.backward()
        grads.append({n: p.grad.clone() for n, p in s.model.named_parameters() if p.grad is not None})
    frozen, stock = grads
    assert frozen and set(frozen) < set(stock)
    assert all(".layer.1." in name or "classifier" in name or "pooler" in name for name in frozen)
    for name in frozen:
        torch.testing.assert_close(frozen[name], stock[name], rtol=1e-4, atol=1e-6, msg=name)


def test_freezing_too_many_layers_says_how_many_there_are(tiny_config, toy_data):
    with pytest.raises(ValueError, match="has 2 encoder layers .* at most 1"):
        start_session(dataclasses.replace(tiny_config, freeze_layers=2, freeze_word_embeddings=True,
                                          given=("freeze_layers",)), toy_data)
    with pytest.raises(ValueError, match="freeze_layers must be 0"):
        dataclasses.replace(tiny_config, freeze_layers=-1)


def test_the_default_freezes_at_most_a_third_of_the_layers(tiny_config, toy_data):
    from bertdemo.training.freezing import planned_freeze

    assert [planned_freeze(2, False, n) for n in (2, 4, 6, 12)] == [0, 1, 2, 2]
    assert planned_freeze(5, True, 6) == 5  # a value a person chose is trained with as it is
    # trained word embeddings need the whole backward; weights learned from random ones have no features to keep
    assert planned_freeze(2, False, 6, train_embeddings=True) == 0
    assert planned_freeze(2, False, 6, from_scratch=True) == 0
    with pytest.raises(ValueError, match="Set freeze_layers to 0 to train the embeddings"):
        planned_freeze(2, True, 6, train_embeddings=True)
    s = start_session(dataclasses.replace(tiny_config, freeze_layers=2), toy_data)  # the default on 2 layers
    assert all(p.requires_grad for p in encoder_layers(s.model)[1][0].parameters())


def test_a_model_without_encoder_layers_is_refused():
    with pytest.raises(ValueError, match="Set freeze_layers to 0"):
        freeze_lower_layers(torch.nn.Linear(3, 3), 1)
    assert freeze_lower_layers(torch.nn.Linear(3, 3), 0) == 0


def test_the_scratch_model_trains_every_layer(toy_data):
    from bertdemo.config import SCRATCH_MODEL, TrainConfig

    s = start_session(TrainConfig(model=SCRATCH_MODEL, freeze_layers=2, max_length=32, min_steps=0), toy_data)
    assert all(p.requires_grad for p in encoder_layers(s.model)[1][0].parameters())  # random layers must learn


@pytest.mark.parametrize("family", ["distilbert", "electra", "roberta"])
def test_other_families_keep_nothing_trainable_below_the_frozen_layers(family):
    """Weights between the embeddings and layer 0 (ELECTRA's embeddings_project) or shared by every layer are
    frozen too: otherwise the backward would still run through the frozen layers to reach them."""
    from transformers import (DistilBertConfig, DistilBertForSequenceClassification, ElectraConfig,
                              ElectraForSequenceClassification, RobertaConfig, RobertaForSequenceClassification)

    small = dict(vocab_size=100, num_attention_heads=2, intermediate_size=32, max_position_embeddings=40)
    model = {"distilbert": lambda: DistilBertForSequenceClassification(DistilBertConfig(
                 vocab_size=100, dim=16, n_layers=3, n_heads=2, hidden_dim=32, max_position_embeddings=40)),
             "electra": lambda: ElectraForSequenceClassification(ElectraConfig(
                 embedding_size=8, hidden_size=16, num_hidden_layers=3, **small)),
             "roberta": lambda: RobertaForSequenceClassification(RobertaConfig(
                 hidden_size=16, num_hidden_layers=3, **small))}[family]()
    assert freeze_lower_layers(model, 2) == 1
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".layer.2." in name or "classifier" in name or "pooler" in name or "pre_classifier" in name
                             for name in trainable), trainable


def test_rounds_of_a_scratch_project_train_every_layer(tiny_run, tmp_path):
    import json
    import shutil

    from bertdemo.training.session import _learned_from_scratch

    assert not _learned_from_scratch(str(tiny_run)) and not _learned_from_scratch("default")
    copy = tmp_path / "round-2"
    shutil.copytree(tiny_run, copy)
    info = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**info, "base_model": str(tiny_run),
                                               "provenance": {**info.get("provenance", {}), "base_model": "scratch"}}))
    assert _learned_from_scratch(str(copy))  # the lineage, through a warm start, began with random weights


def test_too_many_frozen_layers_are_refused_before_a_job_exists(tiny_model_dir):
    from bertdemo.training.freezing import check_layer_count

    with pytest.raises(ValueError, match="has 2 encoder layers .* at most 1"):
        check_layer_count(str(tiny_model_dir), 2)
    check_layer_count(str(tiny_model_dir), 1)
    check_layer_count("scratch", 9)  # nothing to freeze there
    check_layer_count("some-org/a-hub-model", 9)  # no network asked at a click: the run says it, if it must
