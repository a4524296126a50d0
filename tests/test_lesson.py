"""The lesson "what pretraining buys": its settings, its table, the random arm that differs from the pretrained one
only in its weights, Stop, and the whole lesson through the command line on a small file."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bertdemo.cli_lesson import format_table
from bertdemo.lesson import (ALL, HERE, RANDOM, LessonConfig, LessonPoint, LessonResult, lesson, lesson_table,
                             parse_counts)
from tests.conftest import toy_rows, write_csv


def test_label_counts_read_numbers_and_all_and_refuse_the_rest():
    assert parse_counts("100, 500,all") == (100, 500, ALL)
    with pytest.raises(ValueError, match='numbers and "all"'):
        parse_counts("100,lots")
    with pytest.raises(ValueError, match="label counts must be 10 or more"):
        LessonConfig(labels=(5,))
    with pytest.raises(ValueError, match="pretrain_minutes must be more than 0"):
        LessonConfig(pretrain_minutes=0)


def test_the_table_averages_seeds_per_arm_and_label_count():
    points = [LessonPoint(RANDOM, 0, 100, 0.5, 0.4, 1.0), LessonPoint(RANDOM, 1, 100, 0.7, 0.6, 1.0),
              LessonPoint(HERE, 0, 100, 0.8, 0.8, 1.0), LessonPoint(HERE, 0, 500, 0.9, 0.9, 1.0)]
    table = lesson_table(points)
    assert table["labels"] == [100, 500]
    assert table["arms"] == {RANDOM: [0.6, None], HERE: [0.8, 0.9]}
    assert table["spread"][RANDOM][0] == [0.5, 0.7]
    printed = format_table(table)
    assert "random init" in printed and "0.600" in printed and "0.900" in printed


def test_the_random_arm_has_the_pretrained_shape_and_vocabulary_but_not_its_weights(tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from bertdemo.lesson import _random_twin
    from bertdemo.pretraining import PretrainConfig, pretrain

    texts = [t for t, _ in toy_rows(per_class=30)]
    config = PretrainConfig(size="tiny", minutes=0, max_steps=5, max_length=32, evals=1, precision="fp32")
    folder = list(pretrain(config, texts, workspace=tmp_path))[-1].run_dir
    twin = _random_twin(folder, tmp_path / "twin")
    a, b = AutoModelForMaskedLM.from_pretrained(folder), AutoModelForMaskedLM.from_pretrained(twin)
    assert a.config.to_dict() | {"_name_or_path": ""} == b.config.to_dict() | {"_name_or_path": ""}
    assert AutoTokenizer.from_pretrained(folder).get_vocab() == AutoTokenizer.from_pretrained(twin).get_vocab()
    assert not torch.equal(a.bert.encoder.layer[0].attention.self.query.weight,
                           b.bert.encoder.layer[0].attention.self.query.weight)


def test_stop_during_pretraining_ends_the_lesson_without_a_result(tmp_path):
    texts, labels = zip(*toy_rows(per_class=20))
    config = LessonConfig(labels=(20,), pretrain_minutes=1, size="tiny", test_rows=20, min_steps=0)
    calls = []
    events = list(lesson(texts, labels, texts, labels, config, workspace=tmp_path,
                         should_stop=lambda: calls.append(1) or len(calls) > 3))
    assert not any(isinstance(e, (LessonPoint, LessonResult)) for e in events)


@pytest.mark.slow
def test_the_cli_lesson_fine_tunes_every_arm_at_every_count(tmp_path):
    train = write_csv(tmp_path / "train.csv", toy_rows(per_class=30, seed=1))
    test = write_csv(tmp_path / "test.csv", toy_rows(per_class=10, seed=2))
    out = subprocess.run([sys.executable, "-m", "bertdemo", "lesson", "pretraining", str(train), "--test", str(test),
                          "--labels", "20,all", "--pretrain-minutes", "0.1", "--size", "tiny", "--workspace",
                          str(tmp_path / "ws"), "--min-steps", "0", "--epochs", "2", "--test-rows", "20", "--json"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    table = result["table"]
    assert table["labels"] == [20, len(toy_rows(per_class=30, seed=1))]
    assert set(table["arms"]) == {"random init", "pretrained here", "embedded default"}
    assert all(0 <= a <= 1 for accs in table["arms"].values() for a in accs)
    assert table["arms"]["embedded default"][-1] > 0.6  # a pretrained model learns the toy task
    assert "[6/6]" not in out.stderr and "[5/6] fine-tuning embedded default" in out.stderr
    bad = subprocess.run([sys.executable, "-m", "bertdemo", "lesson", "pretraining", str(train), "--labels", "x"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and 'numbers and "all"' in bad.stderr
