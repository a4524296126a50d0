"""The training loop: event order, learning, Stop, reproducibility, saved runs."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, StartEvent, StepEvent
from bertdemo.runs import list_runs, load_run_info
from bertdemo.training import train


def _events(config, data, workspace, should_stop=lambda: False):
    return list(train(config, data, should_stop=should_stop, workspace=workspace))


def test_events_arrive_in_order_and_the_loss_falls(tiny_config, toy_data, tmp_path):
    events = _events(tiny_config, toy_data, tmp_path)
    assert isinstance(events[0], StartEvent) and isinstance(events[-1], DoneEvent)
    steps = [e for e in events if isinstance(e, StepEvent)]
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert [s.step for s in steps] == list(range(1, events[0].total_steps + 1))
    assert all(math.isfinite(s.loss) and s.learning_rate >= 0 and s.examples_per_s > 0 for s in steps)
    assert len(evals) == tiny_config.epochs  # one evaluation per epoch in this config
    first, last = steps[: len(steps) // 4], steps[-len(steps) // 4:]
    assert sum(s.loss for s in last) / len(last) < 0.7 * sum(s.loss for s in first) / len(first)
    done = events[-1]
    assert done.metrics["accuracy"] >= 0.9  # the toy task is learnable
    assert done.real_tokens <= done.padded_tokens
    assert done.metrics["macro_f1"] == max(e.macro_f1 for e in evals)  # the best checkpoint is what was saved


def test_saved_run_is_complete_and_reloads_with_pipeline(tiny_run, toy_data):
    from transformers import pipeline

    names = {p.name for p in tiny_run.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "train_config.json", "data_report.json",
            "metrics.json", "events.jsonl", "run.json", "README.md"} <= names
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["id2label"] == {"0": "food", "1": "sport", "2": "weather"}
    info = load_run_info(tiny_run)
    assert info.status == "complete" and info.labels == ("food", "sport", "weather")
    events = [json.loads(line) for line in (tiny_run / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "StartEvent" and any(e["event"] == "EvalEvent" for e in events)
    classify = pipeline("text-classification", model=str(tiny_run))
    out = classify("we talked about football again", top_k=None)
    assert {o["label"] for o in out} == {"food", "sport", "weather"}
    assert max(out, key=lambda o: o["score"])["label"] == "sport"


def test_stop_mid_run_keeps_best_checkpoint_and_leaves_no_half_run(tiny_config, toy_data, tmp_path):
    config = dataclasses.replace(tiny_config, evals_per_epoch=2)
    seen = []

    def should_stop():
        return len(seen) >= 12

    events = []
    for event in train(config, toy_data, should_stop=should_stop, workspace=tmp_path):
        events.append(event)
        if isinstance(event, StepEvent):
            seen.append(event)
    assert isinstance(events[-1], CancelledEvent)
    assert events[-1].step == 12  # stopped within one step
    assert any(isinstance(e, EvalEvent) for e in events)
    run_dir = Path(events[-1].run_dir)
    assert load_run_info(run_dir).status == "stopped"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert [r.path for r in list_runs(tmp_path)] == [str(run_dir)]


def test_stop_before_any_step_saves_nothing(tiny_config, toy_data, tmp_path):
    events = _events(tiny_config, toy_data, tmp_path, should_stop=lambda: True)
    assert isinstance(events[-1], CancelledEvent) and events[-1].run_dir is None
    assert list(tmp_path.iterdir()) == []


def test_stop_before_the_first_evaluation_evaluates_and_keeps_what_was_learned(tiny_config, toy_data, tmp_path):
    """One evaluation per epoch is the default: a Stop mid-epoch must not throw that epoch's work away."""
    steps = []
    events = []
    for event in train(tiny_config, toy_data, should_stop=lambda: len(steps) >= 3, workspace=tmp_path):
        events.append(event)
        if isinstance(event, StepEvent):
            steps.append(event)
    assert events[0].steps_per_epoch > 3  # the stop really came before the epoch's evaluation
    assert [type(e) for e in events[-2:]] == [EvalEvent, CancelledEvent]
    assert events[-2].step == 3 and events[-2].is_best
    assert load_run_info(Path(events[-1].run_dir)).status == "stopped"


def test_abandoned_generator_leaves_no_run(tiny_config, toy_data, tmp_path):
    gen = train(tiny_config, toy_data, workspace=tmp_path)
    for event in gen:
        if isinstance(event, EvalEvent):
            break
    gen.close()  # what a closed browser tab does to a streaming handler
    assert list_runs(tmp_path) == []
    assert [p for p in tmp_path.iterdir()] == []


def test_same_seed_same_metrics(tiny_config, toy_data, tmp_path):
    config = dataclasses.replace(tiny_config, epochs=2)
    a = _events(config, toy_data, tmp_path / "a")
    b = _events(config, toy_data, tmp_path / "b")
    losses = lambda events: [e.loss for e in events if isinstance(e, StepEvent)]  # noqa: E731
    assert losses(a) == losses(b)
    assert a[-1].metrics["accuracy"] == b[-1].metrics["accuracy"]
    c = _events(dataclasses.replace(config, seed=7), toy_data, tmp_path / "c")
    assert losses(c) != losses(a)


def test_training_neither_reseeds_nor_draws_from_the_global_generator(tiny_config, toy_data, tmp_path):
    """Other threads drawing random numbers between the steps (a request, another run) change nothing in this
    run, and the run changes nothing in what they draw."""
    import torch

    config = dataclasses.replace(tiny_config, epochs=2)
    quiet = _events(config, toy_data, tmp_path / "a")
    torch.manual_seed(123)
    drawn, noisy = [], []
    for event in train(config, toy_data, workspace=tmp_path / "b"):
        noisy.append(event)
        drawn.append(torch.rand(2))  # someone else's draws, between this run's steps
    torch.manual_seed(123)
    assert all(torch.equal(d, torch.rand(2)) for d in drawn)  # as if no run had trained meanwhile
    losses = lambda events: [e.loss for e in events if isinstance(e, StepEvent)]  # noqa: E731
    assert losses(noisy) == losses(quiet) and noisy[-1].metrics == quiet[-1].metrics


def test_a_seeded_block_leaves_the_global_generator_as_it_was():
    import torch

    from bertdemo.seeding import TorchRng, seeded

    torch.manual_seed(5)
    before = torch.get_rng_state()
    with seeded(3):
        first = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), before)
    with seeded(3):
        assert torch.equal(torch.rand(3), first)  # the same seed, the same draws
    rng = TorchRng(3)
    with rng:
        assert torch.equal(torch.rand(3), first)
    with rng:  # goes on where it stopped, as one generator would
        second = torch.rand(3)
    reference = torch.Generator().manual_seed(3)
    torch.rand(3, generator=reference)
    assert torch.equal(second, torch.rand(3, generator=reference)) and torch.equal(torch.get_rng_state(), before)


def test_from_scratch_model_trains_its_own_vocabulary(toy_data, tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, model="scratch", epochs=1, learning_rate=1e-3)
    events = _events(config, toy_data, tmp_path)
    done = events[-1]
    assert isinstance(done, DoneEvent)
    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(done.run_dir).get_vocab()
    assert "pizza" in vocab and len(vocab) < 2000  # learned from the toy texts, not the 30k BERT vocab


def test_bad_config_is_a_clear_error():
    from bertdemo.config import TrainConfig

    with pytest.raises(ValueError, match="epochs must be at least 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="dropout must be in"):
        TrainConfig(dropout=1.0)


@pytest.mark.parametrize("rate", [0.0, 0.3, None])
def test_dropout_setting_reaches_every_dropout_layer(tiny_config, toy_data, rate):
    """0 turns dropout off (the default), a rate sets every layer, None keeps the model's own (0.1 here)."""
    import torch

    from bertdemo.training.session import start_session

    session = start_session(dataclasses.replace(tiny_config, dropout=rate), toy_data)
    rates = {m.p for m in session.model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.1 if rate is None else rate}


def test_missing_local_model_names_the_offline_alternatives(toy_data, tmp_path):
    from bertdemo.config import TrainConfig

    with pytest.raises(ValueError, match='"default"'):
        list(train(TrainConfig(model=str(tmp_path / "nope")), toy_data, workspace=tmp_path))
    with pytest.raises(ValueError, match="no network|misspelt"):
        list(train(TrainConfig(model="no-such-org/no-such-model-xyz"), toy_data, workspace=tmp_path))


def test_a_failed_save_leaves_no_run_and_no_temporary_folder(tiny_config, toy_data, tmp_path, monkeypatch):
    from bertdemo import runs

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs, "_write_json", broken)
    with pytest.raises(OSError, match="No space left"):
        list(train(dataclasses.replace(tiny_config, epochs=1), toy_data, workspace=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_damaged_run_json_is_skipped_in_listings(tiny_run, tmp_path):
    import shutil

    broken = tmp_path / "broken-run"
    shutil.copytree(tiny_run, broken)
    (broken / "run.json").write_text('{"name": "x"}')
    shutil.copytree(tiny_run, tmp_path / "good-run")
    assert [r.name for r in list_runs(tmp_path)] == ["good-run"]
    with pytest.raises(ValueError, match="damaged"):
        load_run_info(broken)


def test_stop_pressed_during_an_evaluation_ends_after_it_and_keeps_it(tiny_config, toy_data, tmp_path, monkeypatch):
    from bertdemo.training import loop

    pressed = []
    real = loop.validate

    def validate_and_press(*args, **kwargs):
        metrics = real(*args, **kwargs)
        pressed.append(True)  # Stop arrives while the evaluation runs
        return metrics

    monkeypatch.setattr(loop, "validate", validate_and_press)
    events = list(train(tiny_config, toy_data, should_stop=lambda: bool(pressed), workspace=tmp_path))
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert len(evals) == 1 and isinstance(events[-1], CancelledEvent)  # no second evaluation of the same weights
    assert events[-1].step == evals[0].step and load_run_info(Path(events[-1].run_dir)).status == "stopped"


def test_stop_pressed_during_the_save_does_not_cut_the_save(tiny_config, toy_data, tmp_path, monkeypatch):
    from bertdemo import runs

    pressed = []
    real = runs.save_run

    def save_and_press(*args, **kwargs):
        pressed.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "save_run", save_and_press)
    events = list(train(dataclasses.replace(tiny_config, epochs=1), toy_data, should_stop=lambda: bool(pressed),
                        workspace=tmp_path))
    assert isinstance(events[-1], DoneEvent) and pressed
    assert load_run_info(Path(events[-1].run_dir)).status == "complete"
    assert [p.name for p in tmp_path.iterdir()] == [Path(events[-1].run_dir).name]


MEMORY_BUDGET = 4 * 2**30  # bytes of address space: torch and the model fit, an 8,000-text batch does not


def test_max_length_beyond_the_models_positions_is_refused(tiny_config, toy_data, tmp_path):
    with pytest.raises(ValueError, match="longer than this model reads \\(128 word-pieces\\)"):
        list(train(dataclasses.replace(tiny_config, max_length=512), toy_data, workspace=tmp_path))


def test_running_out_of_memory_is_a_message_that_says_what_to_lower(tmp_path, toy_csv, tiny_model_dir):
    """A real allocation failure: the CLI under an address-space limit, with a batch far too large for it."""
    import resource
    import subprocess
    import sys

    from conftest import ROOT

    long_rows = tmp_path / "long.csv"
    long_rows.write_text("text,label\n" + "".join(f"{'word ' * 150} {i},{'ab'[i % 2]}\n" for i in range(8000)))
    # 8,000: with fused attention (long fp32 texts) no (B, H, T, T) tensor is kept, and 3,000 texts fitted

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BUDGET, MEMORY_BUDGET))

    out = subprocess.run([sys.executable, "-m", "bertdemo", "train", str(long_rows), "--model", str(tiny_model_dir),
                          "--batch-size", "8000", "--max-length", "128", "--epochs", "1", "--min-steps", "0", "--precision", "fp32",
                          "--limit", "max_batch_size=100000", "--workspace", str(tmp_path / "ws")],
                         capture_output=True, text=True, cwd=ROOT, preexec_fn=limit_memory, timeout=600)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "ran out of memory" in out.stderr and "Lower the batch size or max_length" in out.stderr
    assert not (tmp_path / "ws").exists() or not any((tmp_path / "ws").iterdir())
