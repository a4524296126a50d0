"""Data intake: cleaning, the data report, the split, and each bad case's message."""
from __future__ import annotations

import pytest

from bertdemo.data import load_data, sort_labels
from bertdemo.models import load_tokenizer
from conftest import toy_rows, write_csv


def test_report_counts_dropped_rows_duplicates_and_conflicts(tmp_path):
    rows = toy_rows(per_class=10) + [("", "food"), ("orphan text", ""), ("I really like pizza today number 0x", "food"),
                                     ("I really like pizza today number 0x", "food"),
                                     ("the same words", "food"), ("the same words", "sport")]
    data = load_data(write_csv(tmp_path / "d.csv", rows), tokenizer=load_tokenizer("default"), max_length=8)
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
    a = load_data(toy_csv, seed=1)
    b = load_data(toy_csv, seed=1)
    c = load_data(toy_csv, seed=2)
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
    data = load_data(toy_csv, max_rows=30, seed=3)
    again = load_data(toy_csv, max_rows=30, seed=3)
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
    capped = load_data(toy_csv, max_rows=10_000)
    assert len(capped.train) == len(full.train) and len(capped.validation) == len(full.validation)
