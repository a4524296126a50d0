"""Data intake: cleaning, the data report, the split, and each bad case's message."""
from __future__ import annotations

import pytest

from bertdemo.config import TrainConfig
from bertdemo.data import labeled_data, load_data, sort_labels
from bertdemo.models import load_tokenizer
from conftest import toy_rows, write_csv


def test_report_counts_dropped_rows_duplicates_and_conflicts(tmp_path):
    rows = toy_rows(per_class=10) + [("", "food"), ("orphan text", ""), ("I really like pizza today number 0x", "food"),
                                     ("I really like pizza today number 0x", "food"),
                                     ("the same words", "food"), ("the same words", "sport")]
    data = load_data(write_csv(tmp_path / "d.csv", rows), TrainConfig(max_length=8), tokenizer=load_tokenizer("default"))
    report = data.report
    reasons = {d["reason"].split(" (")[0]: d["count"] for d in report.dropped}
    assert reasons == {"empty text": 1, "missing label": 1, "exact duplicate": 1}
    assert report.rows_total == len(rows) and report.rows_kept == len(rows) - 3
    assert report.conflicting_duplicates == [{"text": "the same words", "labels": ("food", "sport")}]
    assert report.class_counts == {"food": 12, "sport": 11, "weather": 10}
    assert len(report.token_lengths) == report.rows_kept
    assert report.truncated == sum(n > 8 for n in report.token_lengths) > 0
    assert report.train_rows + report.validation_rows == report.rows_kept
    assert any("different labels" in w for w in report.warnings)


def test_split_is_stratified_seeded_and_disjoint(toy_csv):
    a = load_data(toy_csv, TrainConfig(seed=1))
    b = load_data(toy_csv, TrainConfig(seed=1))
    c = load_data(toy_csv, TrainConfig(seed=2))
    assert a.validation["text"].tolist() == b.validation["text"].tolist()
    assert a.validation["text"].tolist() != c.validation["text"].tolist()
    assert set(a.validation["label"]) == set(a.labels)  # every class is validated
    assert not set(a.train["text"]) & set(a.validation["text"])
    assert a.report.train_validation_overlap == 0


def test_labels_are_sorted_numerically_when_numbers():
    assert sort_labels(["10", "2", "1"]) == ("1", "2", "10")
    assert sort_labels(["pos", "neg"]) == ("neg", "pos")


def test_numeric_labels_in_a_file(tmp_path):
    rows = [(t, {"food": "0", "sport": "1", "weather": "2"}[label]) for t, label in toy_rows(10)]
    data = load_data(write_csv(tmp_path / "n.csv", rows))
    assert data.labels == ("0", "1", "2")
    assert data.id2label == {0: "0", 1: "1", 2: "2"}


def test_one_class_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="only one class"):
        load_data(write_csv(tmp_path / "one.csv", [(f"text {i}", "a") for i in range(10)]))


def test_class_with_single_example_is_named(tmp_path):
    rows = [(f"text {i}", "a") for i in range(10)] + [("lonely", "b")]
    with pytest.raises(ValueError, match="class 'b' has only one example"):
        load_data(write_csv(tmp_path / "lonely.csv", rows))


def test_all_rows_empty_is_explained(tmp_path):
    with pytest.raises(ValueError, match="no usable rows"):
        load_data(write_csv(tmp_path / "blank.csv", [("", "a"), ("x", "")]))


def test_separate_validation_file_and_unknown_labels(tmp_path, toy_csv):
    val = write_csv(tmp_path / "val.csv", [("some pizza", "food"), ("rain again", "weather")])
    data = load_data(toy_csv, validation=val)
    assert data.report.validation_source == "val.csv" and len(data.validation) == 2
    assert len(data.train) == data.report.rows_kept
    bad = write_csv(tmp_path / "bad.csv", [("some pizza", "cooking")])
    with pytest.raises(ValueError, match="labels the training data lacks: 'cooking'"):
        load_data(toy_csv, validation=bad)


def test_max_rows_takes_a_seeded_sample(toy_csv):
    data = load_data(toy_csv, TrainConfig(max_train_rows=30, seed=3))
    again = load_data(toy_csv, TrainConfig(max_train_rows=30, seed=3))
    assert len(data.train) == 30
    assert data.train["text"].tolist() == again.train["text"].tolist()
    assert not set(data.train["text"]) & set(data.validation["text"])


def test_unknown_language_is_warned_about(tmp_path):
    rows = [(f"{'天气' if i % 2 else '足球'}非常好吗第{i}", "a" if i % 2 else "b") for i in range(20)]
    data = load_data(write_csv(tmp_path / "zh.csv", rows), tokenizer=load_tokenizer("default"))
    assert data.report.unknown_token_share > 0.1
    assert any("[UNK]" in w for w in data.report.warnings)


def test_max_rows_above_the_data_keeps_the_normal_split(toy_csv):
    full = load_data(toy_csv)
    capped = load_data(toy_csv, TrainConfig(max_train_rows=10_000))
    assert len(capped.train) == len(full.train) and len(capped.validation) == len(full.validation)


def test_rows_from_memory_give_what_the_same_file_gives(toy_csv):
    """The labeling store hands over rows, not files: the same rows must split, clean and report alike."""
    import pandas as pd

    config = TrainConfig(seed=5, validation_split=0.25)
    table = pd.read_csv(toy_csv, dtype=str)
    from_rows = labeled_data(table["text"].tolist(), table["label"].tolist(), config)
    from_file = load_data(toy_csv, config)
    assert from_rows.train.equals(from_file.train) and from_rows.validation.equals(from_file.validation)
    assert from_rows.labels == from_file.labels
    assert from_rows.report.class_counts == from_file.report.class_counts
    assert from_rows.report.source == "rows" and from_rows.report.encoding == ""
    assert len(from_rows.validation) == round(len(table) * 0.25)


def test_rows_with_a_held_out_set_and_a_sample(toy_csv):
    rows = toy_rows(per_class=20, seed=3)
    held = [("pizza and soup tonight", "food"), ("snow all week", "weather")]
    data = labeled_data([t for t, _ in rows], [label for _, label in rows], TrainConfig(max_train_rows=12, seed=1),
                        validation=([t for t, _ in held], [label for _, label in held]), validation_source="frozen")
    assert len(data.train) == 12 and data.validation["text"].tolist() == [t for t, _ in held]
    assert data.report.validation_source == "frozen"
    with pytest.raises(ValueError, match="labels the training data lacks: 'cars'"):
        labeled_data([t for t, _ in rows], [label for _, label in rows], validation=(["fast cars"], ["cars"]))
