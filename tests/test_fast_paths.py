"""Each fast path against the stock path it replaces, with it switched off by ``BERTDEMO_FAST_OFF``.

Training is compared by its loss trajectory over 20 optimizer steps on the embedded MiniLM cut to two layers:
pretrained, so the loss falls from ~1.1 to below 0.1 within those steps — a path that dropped or garbled its updates
would leave the trajectory by far more than the tolerances here (checked below with a no-learning control).
Tolerances (measured differences in brackets, on CPU):
- CPU training kernels at dropout 0, fp32, vs transformers' SDPA model: 1e-4 per step [4e-7], on short texts
  (explicit attention maths) and on texts of 40+ word-pieces (SDPA's fused kernel, also differentiated);
- the first-token top layer vs every position: 1e-4 per step [~1e-7], gradients 1e-4 relative;
- the frozen layers' kept output vs computing them every epoch: 1e-4 per step [~1e-7];
- bf16 master weights vs stock bf16 autocast, and vs plain fp32: 0.05 per step [0.011 and 0.007; autocast itself
  is 0.006 from fp32]. Where the loss falls fastest, bf16 rounding moves a step's loss most.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from bertdemo import fast
from bertdemo.training.loaders import model_inputs
from bertdemo.training.precision import Autocast, MasterWeightsBf16, Plain
from bertdemo.training.session import batch_loss, start_session, training_step

pytestmark = pytest.mark.slow  # 20-step trainings per path

STEPS = 20
ML_STEPS = 60  # BCE on a fresh per-label head falls more slowly and more noisily (batches of 8 texts, 3 labels)
ML_LEARNING_RATE = 1e-3


@pytest.fixture(scope="module")
def mini_bert(tmp_path_factory) -> str:
    """The embedded MiniLM with only its first two (pretrained) layers, saved as a local model folder."""
    from transformers import BertForSequenceClassification

    from bertdemo.models import default_model_path, load_tokenizer

    path = tmp_path_factory.mktemp("mini-bert")
    with torch.random.fork_rng():  # the new head's weights: the same whatever tests ran before in this process
        torch.manual_seed(0)
        model = BertForSequenceClassification.from_pretrained(default_model_path(), num_hidden_layers=2, num_labels=3)
    model.save_pretrained(path)
    load_tokenizer("default").save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def mini_config(mini_bert):
    from bertdemo.config import TrainConfig

    return TrainConfig(model=mini_bert, batch_size=8, learning_rate=5e-4, warmup_ratio=0.0, max_length=32,
                       precision="fp32", patience=0, min_steps=0)


@pytest.fixture(params=["single-label", "multi-label"])
def any_data(request, toy_data, toy_ml_data):
    """Each training path is checked with both losses: cross-entropy over classes and BCE per label."""
    return toy_data if request.param == "single-label" else toy_ml_data


def trajectory(config, data, monkeypatch, off: str = "") -> tuple[np.ndarray, object]:
    """Training losses of the first STEPS steps with the fast paths named in ``off`` switched off."""
    monkeypatch.setenv(fast.ENV, off)
    steps = ML_STEPS if data.multi_label else STEPS
    if data.multi_label and config.learning_rate > 1e-6:  # a rate at which BCE falls within ML_STEPS steps
        config = dataclasses.replace(config, learning_rate=ML_LEARNING_RATE)
    s = start_session(config, data)
    s.model.train()
    batches = itertools.islice(itertools.chain.from_iterable(itertools.repeat(s.loader)), steps)
    losses = np.array([training_step(s, batch, config.max_grad_norm) for batch in batches])
    return losses, s


def test_the_switch_names_paths_and_refuses_typos(monkeypatch):
    monkeypatch.setenv(fast.ENV, "")
    assert all(fast.enabled(name) for name in fast.FAST_PATHS)
    monkeypatch.setenv(fast.ENV, "lean_forward, cpu_kernels")
    assert [fast.enabled(name) for name in fast.FAST_PATHS] == [True, False, False, True, True]
    monkeypatch.setenv(fast.ENV, "all")
    assert not any(fast.enabled(name) for name in fast.FAST_PATHS)
    monkeypatch.setenv(fast.ENV, "lean-forward")
    with pytest.raises(ValueError, match="unknown fast paths: lean-forward"):
        fast.enabled("lean_forward")


def test_cpu_training_kernels_follow_the_stock_fp32_trajectory(mini_config, any_data, monkeypatch):
    fast_losses, s = trajectory(mini_config, any_data, monkeypatch)
    assert s.model.config._attn_implementation == "bertdemo_cpu_training"
    stock, s = trajectory(mini_config, any_data, monkeypatch, off="all")
    assert s.model.config._attn_implementation == "sdpa" and isinstance(s.precision, Plain)
    quarter = len(stock) // 4
    # it learns: a trajectory that tells paths apart (BCE over 3 labels falls less surely in these 60 steps: the
    # last quarter was measured between 0.55x and 0.76x the first from one process to the next)
    assert stock[-quarter:].mean() < (0.85 if any_data.multi_label else 0.75) * stock[:quarter].mean()
    np.testing.assert_allclose(fast_losses, stock, atol=1e-4, rtol=0)


def first_batch_gradients(config, data, monkeypatch, off: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Every parameter's gradient after one backward of the first training batch (and that batch), with the fast
    paths named in ``off`` switched off."""
    monkeypatch.setenv(fast.ENV, off)
    s = start_session(config, data)
    s.model.train()
    batch = next(iter(s.loader))
    with s.rng:  # the run's own random state: both sessions draw the same dropout masks
        loss = batch_loss(s, s.model(**model_inputs(batch)).logits, batch["labels"])
        loss.backward()
    return {n: p.grad.clone() for n, p in s.model.named_parameters() if p.grad is not None}, batch


def test_cpu_training_kernels_give_the_stock_gradients(mini_config, any_data, monkeypatch):
    grads = [first_batch_gradients(mini_config, any_data, monkeypatch, off)[0] for off in ("", "cpu_kernels")]
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def long_data():
    """Toy texts of 40+ word-pieces: four rows of one class run together, so that training attention takes SDPA's
    fused kernel (cpu_training_kernels.FUSED_FROM) instead of the explicit maths that short texts take."""
    from conftest import toy_rows

    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data

    by_label: dict[str, list[str]] = {}
    for text, label in toy_rows(per_class=160):
        by_label.setdefault(label, []).append(text)
    rows = [(" and ".join(texts[i:i + 4]), label) for label, texts in by_label.items() for i in range(0, 160, 4)]
    return load_data(pd.DataFrame(rows, columns=["text", "label"]), TrainConfig(max_length=64))


def test_long_texts_take_the_fused_attention_and_follow_the_stock_trajectory_and_gradients(mini_config, long_data,
                                                                                           monkeypatch):
    from bertdemo.fast import cpu_training_kernels

    config = dataclasses.replace(mini_config, max_length=64)
    fused = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting(query, key, *args, **kwargs):  # the keys' length: the first-token top layer has one query
        fused.append(torch.is_grad_enabled() and query.requires_grad and key.shape[-2])
        return sdpa(query, key, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    fast_losses, s = trajectory(config, long_data, monkeypatch)
    assert s.model.config._attn_implementation == "bertdemo_cpu_training"
    assert min(x for x in fused if x) >= cpu_training_kernels.FUSED_FROM  # differentiated, long: the fused kernel
    assert sum(1 for x in fused if x) >= STEPS
    stock, _ = trajectory(config, long_data, monkeypatch, off="all")
    quarter = len(stock) // 4
    assert stock[-quarter:].mean() < 0.75 * stock[:quarter].mean()  # it learns
    np.testing.assert_allclose(fast_losses, stock, atol=1e-4, rtol=0)
    grads = [first_batch_gradients(config, long_data, monkeypatch, off)[0] for off in ("", "cpu_kernels")]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_the_frozen_layers_kept_output_follows_the_stock_trajectory(mini_config, any_data, monkeypatch):
    config = dataclasses.replace(mini_config, freeze_layers=1, given=("freeze_layers",))
    kept, s = trajectory(config, any_data, monkeypatch)
    cache, per_epoch = s.frozen_cache, len(s.loader)
    assert cache is not None and len(cache.frozen) == 1
    total = len(kept)
    assert total > per_epoch  # the trajectory reaches the second epoch, where the kept states are used
    assert (cache.misses, cache.hits) == (per_epoch, total - per_epoch)
    assert len(cache.kept) == len(any_data.train)
    stock, s = trajectory(config, any_data, monkeypatch, off="frozen_cache")
    assert s.frozen_cache is None
    np.testing.assert_allclose(kept, stock, atol=1e-4, rtol=0)

    # a budget for a few texts only: those batches start from kept states, the others compute, the result is the same
    from bertdemo.fast import frozen_cache

    monkeypatch.setattr(frozen_cache, "BUDGET_CAP", 20 * 384 * 4 * 12)
    partial, s = trajectory(config, any_data, monkeypatch)
    assert 0 < len(s.frozen_cache.kept) < len(any_data.train) and s.frozen_cache.used <= frozen_cache.BUDGET_CAP
    assert s.frozen_cache.hits < total - per_epoch
    np.testing.assert_allclose(partial, stock, atol=1e-4, rtol=0)


def test_validation_passes_after_the_first_start_from_the_kept_output_and_score_the_same(mini_config, any_data,
                                                                                        monkeypatch):
    from bertdemo.training.evaluation import validation_logits

    config = dataclasses.replace(mini_config, freeze_layers=1, given=("freeze_layers",))
    monkeypatch.setenv(fast.ENV, "")
    s = start_session(config, any_data)
    cache = s.frozen_cache
    first, labels = validation_logits(s, keep=True)
    assert len(cache.kept) == len(any_data.validation) and cache.hits == 0
    s.model.train()  # the weights above the frozen layers move; the kept validation states stay right
    for batch in itertools.islice(itertools.chain.from_iterable(itertools.repeat(s.loader)), len(s.loader) + 2):
        training_step(s, batch, config.max_grad_norm)
    assert len(cache.kept) == len(any_data.train) + len(any_data.validation)  # training and validation keys apart
    hits = cache.hits
    kept, kept_labels = validation_logits(s, keep=True)
    assert cache.hits - hits == len(s.val_loader)  # every validation batch started above the frozen layers
    computed, _ = validation_logits(s)  # a single pass (the default): the frozen layers run
    assert cache.hits - hits == len(s.val_loader)
    torch.testing.assert_close(kept, computed, atol=1e-5, rtol=0)
    assert torch.equal(kept_labels, labels)
    assert not torch.allclose(kept, first, atol=1e-3)  # training moved the logits, so the check above compares news


def test_validation_rows_are_kept_only_once_every_training_row_had_its_turn(mini_config, toy_data, monkeypatch,
                                                                              tmp_path):
    """A training batch starts above the frozen layers only when all its rows are kept, so a validation mid-way
    through the first epoch must not take the budget the rest of that epoch's training rows need."""
    import bertdemo.training.loop as loop

    kept_flags = []
    real = loop.validate

    def recording(session, labels, *, keep=False):
        kept_flags.append(keep)
        return real(session, labels, keep=keep)

    monkeypatch.setattr(loop, "validate", recording)
    config = dataclasses.replace(mini_config, freeze_layers=1, epochs=2, evals_per_epoch=2,
                                 given=("freeze_layers", "epochs", "evals_per_epoch"))
    events = list(loop.train(config, toy_data, workspace=tmp_path))
    assert events[-1].run_dir is not None
    assert kept_flags == [False, True, True, True]  # mid-epoch 1: not kept; from the end of epoch 1 on: kept


def test_the_kept_output_is_for_models_whose_embeddings_feed_layer_0_and_a_copy_of_the_model_runs_stock(
        mini_config, toy_data, monkeypatch):
    import copy

    from transformers import BertConfig, BertForSequenceClassification, ElectraConfig, ElectraForSequenceClassification

    from bertdemo.fast.frozen_cache import supports

    sizes = dict(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    assert supports(BertForSequenceClassification(BertConfig(**sizes)))
    # ELECTRA projects its embeddings (32 wide here) up to the layers' width: a kept layer input would not fit
    assert not supports(ElectraForSequenceClassification(ElectraConfig(embedding_size=32, **sizes)))

    monkeypatch.setenv(fast.ENV, "")
    s = start_session(dataclasses.replace(mini_config, freeze_layers=1, given=("freeze_layers",)), toy_data)
    assert s.frozen_cache is not None
    # a checkpoint's copy of the model gets the stock forwards, not ones that run the live model and read its cache
    twin = copy.deepcopy(s.model)
    assert twin.bert.embeddings.forward.__self__ is twin.bert.embeddings
    assert twin.bert.encoder.layer[0].forward.__self__ is twin.bert.encoder.layer[0]
    batch = next(iter(s.loader))
    with torch.no_grad():
        torch.testing.assert_close(twin(**model_inputs(batch)).logits, s.model(**model_inputs(batch)).logits)


def test_the_frozen_layers_output_is_kept_only_where_it_is_the_same_every_epoch(mini_config, toy_data, monkeypatch):
    monkeypatch.setenv(fast.ENV, "")
    frozen = dataclasses.replace(mini_config, freeze_layers=1, given=("freeze_layers",))
    assert start_session(frozen, toy_data).frozen_cache is not None
    assert start_session(dataclasses.replace(frozen, epochs=1), toy_data).frozen_cache is None  # nothing to reuse
    assert start_session(dataclasses.replace(frozen, dropout=0.1), toy_data).frozen_cache is None  # other each time
    assert start_session(mini_config, toy_data).frozen_cache is None  # a 2-layer model: nothing frozen by default


def test_bf16_master_weights_follow_autocast_and_fp32(mini_config, any_data, monkeypatch):
    bf16 = dataclasses.replace(mini_config, precision="bf16")
    masters, s = trajectory(bf16, any_data, monkeypatch)
    assert isinstance(s.precision, MasterWeightsBf16)
    autocast, s = trajectory(bf16, any_data, monkeypatch, off="master_weights")
    assert isinstance(s.precision, Autocast)
    fp32, _ = trajectory(mini_config, any_data, monkeypatch, off="all")
    # step by step over the first STEPS; over the longer multi-label trajectory, bf16 rounding moves single spiky
    # batches more than that, so its last quarter is compared as a whole
    np.testing.assert_allclose(masters[:STEPS], autocast[:STEPS], atol=0.05, rtol=0)
    np.testing.assert_allclose(masters[:STEPS], fp32[:STEPS], atol=0.05, rtol=0)
    quarter = len(masters) // 4
    assert abs(masters[-quarter:].mean() - fp32[-quarter:].mean()) < 0.05
    frozen, _ = trajectory(dataclasses.replace(mini_config, learning_rate=1e-9), any_data, monkeypatch, off="all")
    # a path that lost its updates would fail the checks above: 5x their tolerance away (multi-label BCE falls
    # from 0.69 to ~0.45 in these steps, single-label cross-entropy far lower)
    assert np.abs(frozen - masters).max() > 0.25


def test_predictions_without_the_lean_forward_are_the_same(tiny_run, monkeypatch):
    from bertdemo.inference.predict import Predictor

    texts = ["pizza and cheese", "a long tennis match that went on and on", "fog"]
    lean = Predictor.from_run(tiny_run, precision="fp32")
    monkeypatch.setenv(fast.ENV, "lean_forward")
    stock = Predictor.from_run(tiny_run, precision="fp32")
    assert lean.uses_lean_forward and not stock.uses_lean_forward
    np.testing.assert_allclose(lean.predict_proba(texts), stock.predict_proba(texts), rtol=1e-4, atol=1e-5)


def test_multi_label_predictions_without_the_lean_forward_are_the_same(tiny_ml_run, monkeypatch):
    from bertdemo.inference.predict import Predictor

    texts = ["pizza and rain", "tennis in the snow with cake", "news"]
    lean = Predictor.from_run(tiny_ml_run, precision="fp32")
    monkeypatch.setenv(fast.ENV, "lean_forward")
    stock = Predictor.from_run(tiny_ml_run, precision="fp32")
    assert lean.multi_label and lean.uses_lean_forward and not stock.uses_lean_forward
    probs = lean.predict_proba(texts)
    assert not np.allclose(probs.sum(axis=1), 1.0)  # sigmoids, not a softmax
    np.testing.assert_allclose(probs, stock.predict_proba(texts), rtol=1e-4, atol=1e-5)


def test_first_token_top_layer_follows_the_every_position_trajectory(mini_config, any_data, monkeypatch):
    first, s = trajectory(mini_config, any_data, monkeypatch)
    top = s.model.bert.encoder.layer[-1]
    assert type(top).__name__ == "FirstTokenBertLayer" and type(s.model.bert.encoder.layer[0]).__name__ == "BertLayer"
    every, s = trajectory(mini_config, any_data, monkeypatch, off="first_token_top")
    assert type(s.model.bert.encoder.layer[-1]).__name__ == "BertLayer"
    np.testing.assert_allclose(first, every, atol=1e-4, rtol=0)
    frozen, _ = trajectory(dataclasses.replace(mini_config, learning_rate=1e-9), any_data, monkeypatch)
    assert np.abs(frozen - first).max() > 0.25  # they learn: a path that lost its updates would be far outside 1e-4


def test_first_token_top_layer_gives_every_gradient_of_the_stock_model(mini_config, toy_data, monkeypatch):
    (first, batch), (every, _) = (first_batch_gradients(mini_config, toy_data, monkeypatch, off)
                                  for off in ("", "first_token_top"))
    assert not bool(batch["attention_mask"].all())  # padded texts: the top layer's mask row is sliced right
    grads = [first, every]
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_run_trained_with_the_first_token_top_layer_reloads_as_a_stock_model(tiny_run):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_run)
    assert {type(layer).__name__ for layer in model.bert.encoder.layer} == {"BertLayer"}


def test_first_token_top_layer_leaves_models_it_does_not_know_alone():
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    from bertdemo.fast.first_token_top import use_first_token_top

    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    masked = BertForMaskedLM(config)  # reads every position
    assert not use_first_token_top(masked)
    assert type(masked.bert.encoder.layer[-1]).__name__ == "BertLayer"
    relative = BertForSequenceClassification(BertConfig(**{**config.to_dict(), "position_embedding_type": "relative_key"}))
    assert not use_first_token_top(relative)
    plain = BertForSequenceClassification(config)
    assert use_first_token_top(plain) and use_first_token_top(plain)  # a second call keeps the swap
    assert type(plain.bert.encoder.layer[-1]).__name__ == "FirstTokenBertLayer"


def test_lean_predictions_with_and_without_the_first_token_top_layer_are_the_same(tiny_run, monkeypatch):
    from bertdemo.inference.predict import Predictor

    texts = ["pizza and cheese", "a long tennis match that went on and on", "fog"]
    first = Predictor.from_run(tiny_run, precision="fp32")
    monkeypatch.setenv(fast.ENV, "first_token_top")
    every = Predictor.from_run(tiny_run, precision="fp32")
    assert first.uses_lean_forward and every.uses_lean_forward
    assert first._lean._first_token_top and not every._lean._first_token_top
    np.testing.assert_allclose(first.predict_proba(texts), every.predict_proba(texts), rtol=1e-5, atol=1e-6)
