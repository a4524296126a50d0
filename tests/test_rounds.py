"""A labeling round (issue 18): a retrain continues the project's last run where it can, with a step budget that
follows the data and early stopping on the frozen validation set's plateau; the simulation reports where it is
and stops within a step."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from bertdemo.events import DoneEvent, EvalEvent, StartEvent
from bertdemo.labeling.retrain import train_project
from bertdemo.labeling.rounds import COLD_SETTINGS, WARM_SETTINGS, continuable, plan_round
from bertdemo.labeling.simulate import CurvePoint, RoundProgress, al_curve, check_curve
from bertdemo.labeling.store import LabelStore
from bertdemo.labeling.transfer import import_rows
from bertdemo.runs import load_run_info
from conftest import toy_rows


@pytest.fixture()
def project(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite3")
    rows = toy_rows(per_class=12, seed=5)
    import_rows(store, "toy", [t for t, _ in rows], [label for _, label in rows])
    return store


def _round(store, config, workspace, previous=None, warm=True) -> tuple[StartEvent, DoneEvent]:
    events = list(train_project(store, "toy", config, previous=previous, warm=warm, workspace=workspace))
    start = next(e for e in events if isinstance(e, StartEvent))
    return start, events[-1]


def _encoder(run_dir) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(Path(run_dir) / "model.safetensors").items() if "encoder.layer.0." in k}


def test_a_round_continues_the_last_runs_weights(project, tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, epochs=3)
    _, first = _round(project, config, tmp_path / "ws")
    assert load_run_info(first.run_dir).provenance["warm_from"] is None
    # a learning rate too small to move a weight: what the round starts from is what it saves
    still = dataclasses.replace(config, learning_rate=1e-12, given=("learning_rate",))
    start, warm = _round(project, still, tmp_path / "ws", previous=first.run_dir)
    info = load_run_info(warm.run_dir)
    assert info.provenance["warm_from"] == Path(first.run_dir).name
    assert info.provenance["base_model"] == config.model  # the lineage, through the warm start
    assert any("continues from" in note for note in start.notes)
    before, after = _encoder(first.run_dir), _encoder(warm.run_dir)
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    _, cold = _round(project, still, tmp_path / "ws", previous=first.run_dir, warm=False)
    assert load_run_info(cold.run_dir).provenance["warm_from"] is None
    base = _encoder(cold.run_dir)
    assert not all(torch.allclose(before[k], base[k], atol=1e-6) for k in before)  # the base model's weights


def test_a_round_stops_early_on_a_validation_plateau(project, tiny_config, tmp_path):
    """The cold round's budget (min_steps) would take many epochs; with nothing left to learn (a learning rate
    that moves nothing) the frozen validation set's macro-F1 stops improving and the round ends after
    ``patience`` evaluations."""
    flat = dataclasses.replace(tiny_config, learning_rate=1e-12, patience=2, epochs=1, min_steps=0,
                               given=("learning_rate", "patience"))
    plan = plan_round(flat, ("food", "sport", "weather"), None)
    assert plan.config.min_steps == COLD_SETTINGS["min_steps"] and plan.config.epochs == 1
    events = list(train_project(project, "toy", flat, workspace=tmp_path / "ws"))
    start, done = events[0], events[-1]
    assert start.total_steps >= COLD_SETTINGS["min_steps"] and start.epochs > 3  # the budget raised the epochs
    assert done.stopped_early
    assert sum(isinstance(e, EvalEvent) for e in events) == 3  # the best, then two that were no better


def test_a_round_starts_over_when_the_last_run_cannot_be_continued(project, tiny_config, tmp_path, tiny_run):
    labels = ("food", "sport", "weather")
    assert continuable(None, "default", labels) == "the project has no run yet"
    assert "classes changed" in continuable(tiny_run, str(tiny_config.model), ("food", "sport", "travel"))
    assert "descends from" in continuable(tiny_run, "default", labels)
    plan = plan_round(dataclasses.replace(tiny_config, given=("model",)), ("food", "sport", "travel"), tiny_run)
    assert plan.warm_from is None and plan.config.model == tiny_config.model
    assert "classes changed" in plan.why_cold
    # the reason given is the real one also when the base comes from the lineage (no model chosen)
    lineage = plan_round(dataclasses.replace(tiny_config, model="default"), ("food", "sport", "travel"), tiny_run)
    assert lineage.config.model == tiny_config.model and "classes changed" in lineage.why_cold
    assert any("classes changed" in note and "travel" in note for note in plan.notes)
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run, damaged)
    (damaged / "run.json").write_text("{ not json")
    assert continuable(damaged, str(tiny_config.model), labels) == "its last run damaged cannot be read"
    assert plan_round(tiny_config, labels, damaged).warm_from is None
    # a base model nobody chose is the last run's own; a setting the person chose is kept
    chosen = dataclasses.replace(tiny_config, model="default", epochs=5, given=("epochs",))
    warm = plan_round(chosen, labels, tiny_run)
    assert warm.warm_from == tiny_run.name and warm.config.model == str(tiny_run)
    assert warm.config.epochs == 5 and warm.config.min_steps == WARM_SETTINGS["min_steps"]


def _curve(tiny_config, **kwargs):
    rows = toy_rows(per_class=10, seed=3)
    test = toy_rows(per_class=3, seed=4)
    # epochs and batch chosen (kept by the round plan): several steps per round, so Stop can land inside one
    config = dataclasses.replace(tiny_config, epochs=2, batch_size=4, patience=0, given=("epochs", "batch_size"))
    return al_curve([t for t, _ in rows], [label for _, label in rows], [t for t, _ in test],
                    [label for _, label in test], strategies=("random", "margin"), start=9, step=6, rounds=2,
                    seeds=(0,), config=config, **kwargs)


def test_the_simulation_says_where_it_is_and_trains_the_start_once(tiny_config):
    events = list(_curve(tiny_config))
    points = [e for e in events if isinstance(e, CurvePoint)]
    progress = [e for e in events if isinstance(e, RoundProgress)]
    assert [(p.strategy, p.labels) for p in points] == [("random", 9), ("random", 15), ("random", 21),
                                                       ("margin", 9), ("margin", 15), ("margin", 21)]
    trained_start = {p.strategy for p in progress if p.round == 0 and p.phase == "training"}
    assert trained_start == {"random"}  # the same start labels: trained once for both strategies
    assert all(p.warm for p in progress if p.round > 0 and p.phase == "training")
    assert {p.phase for p in progress} == {"training", "testing", "choosing"}
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 1
    line = next(p for p in progress if p.strategy == "margin" and p.round == 2 and p.phase == "training").line()
    assert line.startswith("seed 1 of 1 · margin · round 2 of 2 (21 labels) · training step")


def test_the_simulation_stops_within_a_training_step(tiny_config):
    seen: list = []

    def stop() -> bool:  # asked before every step: stop once the second round has begun training
        return any(isinstance(e, RoundProgress) and e.round == 1 and e.phase == "training" for e in seen)

    for event in _curve(tiny_config, should_stop=stop):
        seen.append(event)
    points = [e for e in seen if isinstance(e, CurvePoint)]
    assert [(p.strategy, p.labels) for p in points] == [("random", 9)]  # the round under way is dropped
    last = [e for e in seen if isinstance(e, RoundProgress)][-1]
    assert last.round == 1 and last.phase == "training" and last.step < last.steps


def test_margin_diverse_picks_uncertain_texts_that_are_not_alike():
    """Of the most uncertain texts, the diverse strategy takes one per cluster; plain margin takes the top ones
    even when they are near copies of each other."""
    from bertdemo.labeling.simulate import _query

    near_copies = [f"the match was played in the rain number {i}" for i in range(6)]
    others = ["a recipe for tomato soup", "snow is expected tomorrow", "the final score was two to one",
              "bake the bread for an hour"]
    pool = pd.DataFrame({"text": near_copies + others + ["plain text"] * 30, "label": "x"})

    class Model:  # near copies are the most uncertain; the others a little less; the filler sure
        thresholds = None

        def predict_proba(self, texts):
            margin = {**{t: 0.0 for t in near_copies}, **{t: 0.1 for t in others}}
            return np.array([[0.5 + margin.get(t, 0.9) / 2, 0.5 - margin.get(t, 0.9) / 2] for t in texts])

        def embed(self, texts):  # near copies share one vector
            return np.array([[1.0, 0.0] if t in near_copies else [0.0, 1.0 + i] for i, t in enumerate(texts)])

    plain = _query(pool, [], Model(), "margin", 4, seed=0)
    diverse = _query(pool, [], Model(), "margin_diverse", 4, seed=0)
    assert set(plain) <= set(range(6))  # four near copies
    assert len(set(diverse) & set(range(6))) == 1 and len(diverse) == 4
    with pytest.raises(ValueError, match="cannot rank a multi-label pool"):
        check_curve(100, ["margin_diverse"], start=10, step=10, rounds=1, multi_label=True)
