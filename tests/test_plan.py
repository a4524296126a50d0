"""The small-data plan: how many steps, which batch size and whether the loss weights the classes, for data sets
of the sizes a labeling loop produces; and the notes that tell the user what changed."""
from __future__ import annotations

import pandas as pd

from bertdemo.config import TrainConfig
from bertdemo.data import labeled_data
from bertdemo.training.plan import MAX_PLANNED_EPOCHS, SMALL_BATCH, plan_batch_size, plan_training


def _data(counts: dict[str, int]):
    texts = [f"{label} text number {i}" for label, n in counts.items() for i in range(n)]
    labels = [label for label, n in counts.items() for _ in range(n)]
    return labeled_data(texts, labels, TrainConfig(validation_split=0.2, seed=1))


def test_a_small_set_gets_small_batches_and_enough_epochs_for_min_steps():
    config = TrainConfig(batch_size=32, epochs=3, min_steps=300)
    batch, notes = plan_batch_size(config, train_rows=160)
    assert batch == SMALL_BATCH and "small data set" in notes[0]
    plan = plan_training(config, _data({"a": 100, "b": 100}), steps_per_epoch=10, batch_size=batch, notes=notes)
    assert plan.epochs == 30 and plan.epochs * 10 >= 300 and any("30 epochs instead of 3" in n for n in plan.notes)
    assert plan.class_weights is None  # balanced classes: no weights


def test_a_large_set_or_min_steps_off_trains_as_configured():
    config = TrainConfig(batch_size=32, epochs=3, min_steps=300)
    assert plan_batch_size(config, train_rows=20_000) == (32, [])
    plan = plan_training(config, _data({"a": 60, "b": 60}), steps_per_epoch=625)
    assert (plan.epochs, plan.class_weights, plan.notes) == (3, None, ())
    off = TrainConfig(batch_size=32, epochs=3, min_steps=0)
    assert plan_batch_size(off, train_rows=50) == (32, [])
    assert plan_training(off, _data({"a": 30, "b": 10}), steps_per_epoch=2).epochs == 3


def test_epochs_are_capped_for_a_handful_of_rows():
    plan = plan_training(TrainConfig(min_steps=300), _data({"a": 5, "b": 5}), steps_per_epoch=1)
    assert plan.epochs == MAX_PLANNED_EPOCHS and "the most it raises them to" in " ".join(plan.notes)


def test_auto_class_weights_only_for_small_skewed_sets_and_they_balance_the_classes():
    skewed = _data({"common": 120, "rare": 20})
    plan = plan_training(TrainConfig(min_steps=300), skewed, steps_per_epoch=7)
    counts = pd.Series(skewed.train["label"]).value_counts()
    weights = dict(zip(skewed.labels, plan.class_weights))
    assert weights["rare"] > weights["common"]
    assert abs(weights["rare"] * counts["rare"] - weights["common"] * counts["common"]) < 1e-6  # equal total weight
    assert any("rarest" in n for n in plan.notes)
    big = plan_training(TrainConfig(min_steps=300), skewed, steps_per_epoch=400)  # not small: as configured
    assert big.class_weights is None
    assert plan_training(TrainConfig(class_weights="none"), skewed, steps_per_epoch=7).class_weights is None
    assert plan_training(TrainConfig(class_weights="balanced"), skewed, steps_per_epoch=400).class_weights is not None


def test_a_chosen_batch_size_and_epochs_are_kept_and_the_notes_say_what_the_plan_would_have_done():
    """`train --epochs 1 --batch-size 32` on a small set trains 1 epoch at batch 32, not the plan's 16 and more."""
    config = TrainConfig(batch_size=32, epochs=1, min_steps=300, given=("batch_size", "epochs"))
    batch, notes = plan_batch_size(config, train_rows=3200)
    assert batch == 32 and "as chosen" in notes[0] and str(SMALL_BATCH) in notes[0]
    plan = plan_training(config, _data({"a": 100, "b": 100}), steps_per_epoch=100, batch_size=batch, notes=notes)
    assert (plan.batch_size, plan.epochs) == (32, 1) and any("1 epochs as chosen" in n for n in plan.notes)
    only_batch = TrainConfig(batch_size=32, epochs=1, min_steps=300, given=("batch_size",))  # epochs are the plan's
    assert plan_training(only_batch, _data({"a": 100, "b": 100}), steps_per_epoch=100, batch_size=32).epochs == 3


def test_the_settings_a_person_chose_in_the_app_are_those_changed_from_the_defaults():
    from bertdemo.config import chosen_settings

    defaults = TrainConfig().to_dict()
    assert chosen_settings({**defaults, "epochs": 1, "batch_size": 32}) == ("epochs",)  # 32 is the default
    assert TrainConfig.from_dict(TrainConfig(given=["epochs"]).to_dict()).given == ("epochs",)  # a saved run's
    import pytest

    with pytest.raises(ValueError, match="unknown settings bogus"):
        TrainConfig(given=("bogus",))
