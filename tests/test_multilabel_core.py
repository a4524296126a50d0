"""Multi-label intake, split, loss, thresholds and metrics: the engine pieces every multi-label stage uses."""
from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score, hamming_loss

from bertdemo.config import TrainConfig
from bertdemo.data import load_data
from bertdemo.data.multilabel import iterative_split, multi_hot, parse_cell
from bertdemo.multilabel_metrics import decide, multilabel_metrics, tune_thresholds
from conftest import write_csv

# intake


def test_label_cells_with_the_separator_make_a_multi_label_file(toy_ml_csv):
    data = load_data(toy_ml_csv, TrainConfig(max_length=32))
    assert data.multi_label and data.report.multi_label
    assert data.labels == ("food", "sport", "weather")
    assert all(isinstance(s, tuple) for s in data.train["label"])
    table = pd.read_csv(toy_ml_csv)
    # every kept row is counted once per label it carries; "none" rows carry none and are kept
    expected = {label: int(table["label"].str.split("|").apply(lambda ls: label in ls).sum())
                for label in data.labels}
    assert data.report.class_counts == expected
    assert int(data.report.labels_per_text["0"]) == int((table["label"] == "none").sum())
    assert sum(data.report.labels_per_text.values()) == len(data.train) + len(data.validation)
    co = np.array(data.report.cooccurrence)
    assert co.shape == (3, 3) and (co == co.T).all() and list(np.diag(co)) == list(expected.values())


def test_a_single_label_file_stays_single_label(toy_csv):
    data = load_data(toy_csv, TrainConfig(max_length=32))
    assert not data.multi_label and isinstance(data.train["label"].iloc[0], str)


def test_another_separator_and_its_typo(tmp_path):
    rows = [(f"text {i}", ["a;b", "b", "c;a", "none"][i % 4]) for i in range(40)]
    path = write_csv(tmp_path / "semi.csv", rows)
    data = load_data(path, TrainConfig(), label_sep=";")
    assert data.multi_label and data.labels == ("a", "b", "c") and data.label_format["sep"] == ";"
    unread = load_data(path, TrainConfig())  # ";" is not looked for: the report says what to do
    assert not unread.multi_label and any("--label-sep ';'" in w for w in unread.report.warnings)
    with pytest.raises(ValueError, match=r"holds the separator '\|', but cells hold ';'.*--label-sep ';'"):
        load_data(path, TrainConfig(), label_sep="|")
    for bad in ("", " ", ",", '"'):
        with pytest.raises(ValueError, match="separator"):
            load_data(path, TrainConfig(), label_sep=bad)


def test_one_or_several_labels_per_text_can_be_forced(tmp_path):
    path = write_csv(tmp_path / "pipes.csv", [(f"text {i}", ["Arts|Culture", "Sports"][i % 2]) for i in range(40)])
    assert load_data(path, TrainConfig()).multi_label  # a cell with "|" reads as a set unless told otherwise
    single = load_data(path, TrainConfig(), multi_label=False)
    assert not single.multi_label and single.labels == ("Arts|Culture", "Sports")
    plain = write_csv(tmp_path / "plain.csv", [(f"text {i}", ["a", "b"][i % 2]) for i in range(40)])
    forced = load_data(plain, TrainConfig(), multi_label=True)  # no set has two labels yet: still label sets
    assert forced.multi_label and forced.train["label"].iloc[0] in (("a",), ("b",))
    with pytest.raises(ValueError, match="Choose one or the other"):
        load_data(path, TrainConfig(), multi_label=False, label_sep=";")


def test_zero_one_label_columns_given_or_found(tmp_path):
    rng = np.random.default_rng(0)
    flags = rng.integers(0, 2, size=(60, 3))
    table = pd.DataFrame({"comment_text": [f"comment {i}" for i in range(60)],
                          "toxic": flags[:, 0], "insult": flags[:, 1], "threat": flags[:, 2]})
    path = tmp_path / "comments.csv"
    table.to_csv(path, index=False)
    given = load_data(path, TrainConfig(), label_cols=["toxic", "insult", "threat"])
    found = load_data(path, TrainConfig())  # no label column: the 0/1 columns are the labels
    for data in (given, found):
        assert data.multi_label and data.labels == ("insult", "threat", "toxic")
        assert data.label_format["label_cols"] == ["toxic", "insult", "threat"]
        assert data.report.class_counts == {"toxic": int(flags[:, 0].sum()), "insult": int(flags[:, 1].sum()),
                                            "threat": int(flags[:, 2].sum())}


def test_a_label_column_that_is_not_zero_one_is_named(tmp_path):
    table = pd.DataFrame({"text": ["a", "b", "c"], "x": [0, 1, 2], "y": [1, 0, 1]})
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"Label column 'x' is not 0/1: it holds '2' \(rows 4\)"):
        load_data(path, TrainConfig(), label_cols=["x", "y"])
    with pytest.raises(ValueError, match="No column named 'z'"):
        load_data(path, TrainConfig(), label_cols=["x", "z"])
    named = pd.DataFrame({"text": ["a", "b", "c"], "none": [0, 1, 0], "y|z": [1, 0, 1], "y": [0, 0, 1]})
    named.to_csv(path, index=False)
    with pytest.raises(ValueError, match="may not be called 'none'"):
        load_data(path, TrainConfig(), label_cols=["none", "y"])
    with pytest.raises(ValueError, match="holds the separator"):
        load_data(path, TrainConfig(), label_cols=["y|z", "y"])


def test_none_with_labels_is_refused_and_empty_cells_are_unlabeled(tmp_path):
    assert parse_cell("none") == () and parse_cell("NONE") == () and parse_cell("") is None
    assert parse_cell(" b | a |a ") == ("a", "b")
    rows = [(f"text {i}", ["a|b", "b", ""][i % 3]) for i in range(30)] + [("odd one", "none|a")]
    with pytest.raises(ValueError, match=r"Row 32: .*'none' alone"):
        load_data(write_csv(tmp_path / "none.csv", rows), TrainConfig())
    data = load_data(write_csv(tmp_path / "empty.csv", rows[:30]), TrainConfig())
    assert len(data.train) + len(data.validation) == 20  # the 10 empty cells are not labeled yet
    assert any("missing label" in d["reason"] for d in data.report.dropped)


def test_a_text_with_every_label_is_kept_and_warned_about(tmp_path):
    rows = [(f"text {i}", "a|b|c" if i % 3 == 0 else ["a", "b|c"][i % 2]) for i in range(60)]
    data = load_data(write_csv(tmp_path / "every.csv", rows), TrainConfig())
    assert data.report.labels_per_text["3"] == 20
    assert any("carry every label" in w for w in data.report.warnings)


def test_rare_labels_are_named(tmp_path):
    rows = [(f"text {i}", "a|b" if i % 2 else "a") for i in range(40)] + [("rare one", "a|zebra")]
    data = load_data(write_csv(tmp_path / "rare.csv", rows), TrainConfig())
    assert data.report.rare_labels == ["zebra"]
    assert any("'zebra'" in w and "cannot be learned" in w for w in data.report.warnings)


# the split


def test_the_iterative_split_keeps_every_labels_share():
    rng = np.random.default_rng(3)
    prevalence = np.array([0.5, 0.3, 0.1, 0.05, 0.02, 0.01])
    y = (rng.random((3000, 6)) < prevalence).astype(int)
    train, val = iterative_split(y, 600, seed=0)
    assert len(val) == 600 and len(train) == 2400 and len(np.intersect1d(train, val)) == 0
    assert sorted(np.r_[train, val].tolist()) == list(range(3000))
    share = np.abs(y[train].mean(axis=0) - y[val].mean(axis=0))
    assert share.max() < 0.01  # a random split of 600 rows is off by ~0.02 on the commoner labels
    counts = y[val].sum(axis=0)
    np.testing.assert_allclose(counts, y.sum(axis=0) * 0.2, atol=2)  # each label's count, to within 2 texts


def test_the_split_of_a_file_is_stratified_and_seeded(toy_ml_data, toy_ml_csv):
    again = load_data(toy_ml_csv, TrainConfig(max_length=32))
    assert toy_ml_data.validation["text"].tolist() == again.validation["text"].tolist()
    labels = toy_ml_data.labels
    train = multi_hot(toy_ml_data.train["label"].tolist(), labels).mean(axis=0)
    val = multi_hot(toy_ml_data.validation["label"].tolist(), labels).mean(axis=0)
    assert np.abs(train - val).max() < 0.05


# loss


def test_the_training_loss_is_transformers_own_multi_label_loss(tiny_model_dir):
    from bertdemo.models import load_classifier
    from bertdemo.training.session import batch_loss

    model = load_classifier(str(tiny_model_dir), ("a", "b", "c", "d"), multi_label=True)
    assert model.config.problem_type == "multi_label_classification"
    ids = torch.randint(1000, 2000, (5, 7))
    labels = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.float)
    out = model(input_ids=ids, labels=labels)  # transformers picks BCEWithLogitsLoss for this problem type
    session = types.SimpleNamespace(multi_label=True, class_weights=None)
    torch.testing.assert_close(batch_loss(session, out.logits, labels), out.loss)
    weighted = types.SimpleNamespace(multi_label=True, class_weights=torch.tensor([1.0, 3.0, 1.0, 1.0]))
    assert batch_loss(weighted, out.logits, labels) != out.loss  # positive weights change it


def test_positive_weights_per_label_for_a_skewed_small_set(toy_ml_data):
    import dataclasses

    from bertdemo.training.plan import MAX_POS_WEIGHT, plan_training

    plan = plan_training(TrainConfig(class_weights="balanced"), toy_ml_data, steps_per_epoch=10)
    y = multi_hot(toy_ml_data.train["label"].tolist(), toy_ml_data.labels)
    expected = np.clip((len(y) - y.sum(axis=0)) / y.sum(axis=0), 1, MAX_POS_WEIGHT)
    np.testing.assert_allclose(plan.class_weights, expected)
    assert plan_training(dataclasses.replace(TrainConfig(), class_weights="none"), toy_ml_data, 10).class_weights is None


# thresholds and metrics


def test_tuned_thresholds_maximise_each_labels_f1():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 4)) < [0.5, 0.2, 0.05, 0.0]).astype(int)
    probs = np.clip(0.35 * y + rng.random((300, 4)) * 0.6, 0, 1)
    tuned = tune_thresholds(y, probs)
    assert tuned[3] == 0.5  # no positive validation text: nothing to tune on
    for label in range(3):
        best = f1_score(y[:, label], probs[:, label] >= tuned[label])
        grid = max(f1_score(y[:, label], probs[:, label] >= t) for t in np.linspace(0.05, 0.95, 181))
        assert best >= grid - 1e-9
    assert f1_score(y, decide(probs, tuned), average="macro", zero_division=0) > \
        f1_score(y, decide(probs), average="macro", zero_division=0)


def test_multi_label_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(1)
    y = (rng.random((200, 5)) < 0.3).astype(int)
    probs = np.clip(0.5 * y + rng.random((200, 5)) * 0.55, 0, 1)
    thresholds = np.array([0.5, 0.4, 0.6, 0.3, 0.7])
    pred = (probs >= thresholds).astype(int)
    m = multilabel_metrics(y, probs, list("abcde"), thresholds, texts=[f"t{i}" for i in range(200)])
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    absent = np.c_[y, np.zeros(200, dtype=int)]  # a sixth label no text has, rightly never predicted
    with_absent = multilabel_metrics(absent, np.c_[probs, np.full(200, 0.01)], list("abcdef"), [*thresholds, 0.5])
    assert with_absent["macro_f1"] == pytest.approx(m["macro_f1"])  # not dragged down by a label with no F1
    assert m["samples_f1"] == pytest.approx(f1_score(y, pred, average="samples", zero_division=0))
    assert m["subset_accuracy"] == pytest.approx((pred == y).all(axis=1).mean())
    assert m["hamming_loss"] == pytest.approx(hamming_loss(y, pred))
    assert m["per_class"]["c"]["f1"] == pytest.approx(f1_score(y[:, 2], pred[:, 2]))
    assert m["per_class"]["c"]["support"] == int(y[:, 2].sum())
    (tn, fp), (fn, tp) = m["label_confusion"]["d"]
    assert (tp, fp, fn) == (int(((pred[:, 3] == 1) & (y[:, 3] == 1)).sum()), int(((pred[:, 3] == 1) & (y[:, 3] == 0)).sum()),
                            int(((pred[:, 3] == 0) & (y[:, 3] == 1)).sum()))
    wrongness = [e["wrongness"] for e in m["misclassified"]]
    assert wrongness == sorted(wrongness, reverse=True) and len(wrongness) == int((pred != y).any(axis=1).sum())
    first = m["misclassified"][0]
    assert set(first["missed"]) | set(first["extra"]) and set(first["predicted"]) == \
        (set(first["labels"]) - set(first["missed"])) | set(first["extra"])


def test_a_multi_label_run_saves_its_thresholds_and_predicts_sets(tiny_ml_run, toy_ml_data):
    from bertdemo.inference.predict import Predictor
    from bertdemo.runs import load_run_info

    config = json.loads((tiny_ml_run / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert set(config["thresholds"]) == set(toy_ml_data.labels)
    metrics = json.loads((tiny_ml_run / "metrics.json").read_text())
    assert metrics["thresholds"] == config["thresholds"] and metrics["micro_f1"] > 0.6
    assert load_run_info(tiny_ml_run).multi_label
    predictor = Predictor.from_run(tiny_ml_run)
    np.testing.assert_allclose(predictor.thresholds, [config["thresholds"][k] for k in predictor.labels])
    probs = predictor.predict_proba(["pizza cake and football", "the news today"])
    assert probs.shape == (2, 3) and ((probs > 0) & (probs < 1)).all()
    sets = predictor.decide(probs)
    assert sets[0] == tuple(label for label, p, t in zip(predictor.labels, probs[0], predictor.thresholds) if p >= t)
    saved = pd.read_csv(tiny_ml_run / "data" / "validation.csv", keep_default_na=False)
    assert set(saved["label"]) <= {"none", "food", "sport", "weather", "food|sport", "food|weather", "sport|weather",
                                   "food|sport|weather"}
