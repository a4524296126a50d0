"""The command line, as scripts and benchmarks call it."""
from __future__ import annotations

import pytest

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

pytestmark = pytest.mark.slow  # command-line subprocesses


def _cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bertdemo", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_train_json_predict_and_runs(tmp_path, toy_csv, tiny_model_dir):
    test_file = tmp_path / "test.csv"
    test_file.write_text("text,label\nsome pizza again,food\nthe rain and the fog,weather\ntennis all day,sport\n")
    out = _cli("train", str(toy_csv), "--model", str(tiny_model_dir), "--epochs", "10", "--batch-size", "8",
               "--lr", "1e-3", "--max-length", "32", "--precision", "fp32", "--train-embeddings",
               "--dropout", "0.1", "--test", str(test_file), "--workspace", str(tmp_path / "ws"), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(summary["validation"]) >= {"accuracy", "macro_f1"} and set(summary["test"]) >= {"accuracy", "macro_f1"}
    assert summary["train_seconds"] > 0 and summary["train_examples_per_s"] > 0
    assert summary["train_rows"] == 96 and 0 < summary["real_tokens"] <= summary["padded_tokens"]
    run = summary["run"]
    assert json.loads((Path(run) / "train_config.json").read_text())["dropout"] == 0.1

    pred = _cli("predict", run, "pizza and soup", "snow and frost", "--json")
    assert pred.returncode == 0, pred.stderr
    rows = json.loads(pred.stdout)
    assert [r["text"] for r in rows] == ["pizza and soup", "snow and frost"]
    for row in rows:
        assert set(row["probabilities"]) == {"food", "sport", "weather"}
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
        assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)

    listed = _cli("runs", "--workspace", str(tmp_path / "ws"), "--json")
    assert [r["path"] for r in json.loads(listed.stdout)] == [run]

    explained = _cli("explain", run, "tennis all day", "--json")
    assert explained.returncode == 0, explained.stderr
    detail = json.loads(explained.stdout)
    assert detail["tokens"][0] == "[CLS]" and len(detail["attributions"]) == len(detail["tokens"])


def test_bad_input_exits_non_zero_with_one_line(tmp_path):
    (tmp_path / "one.csv").write_text("text,label\na,x\nb,x\nc,x\n")
    out = _cli("train", str(tmp_path / "one.csv"), "--workspace", str(tmp_path / "ws"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "only one class" in out.stderr
    missing = _cli("predict", str(tmp_path / "nope"), "hello")
    assert missing.returncode == 2 and "No saved run" in missing.stderr


def test_every_training_setting_is_a_flag_with_its_help_from_the_config():
    from bertdemo.cli import _parser, config_from_args
    from bertdemo.config import TrainConfig, field_comments, setting_names

    help_text = _cli("train", "--help").stdout
    for name in setting_names():
        assert "--" + name.replace("_", "-") in help_text, name
    assert field_comments()["weight_decay"].split(",")[0] in " ".join(help_text.split())  # help = the comment
    args = _parser().parse_args(["train", "x.csv", "--weight-decay", "0.1", "--scheduler", "cosine", "--warmup-ratio",
                                 "0.2", "--lr", "3e-5", "--no-freeze-word-embeddings", "--dropout", "model",
                                 "--max-grad-norm", "0.5"])
    config = config_from_args(args)
    chosen = dict(weight_decay=0.1, scheduler="cosine", warmup_ratio=0.2, learning_rate=3e-5,
                  freeze_word_embeddings=False, dropout=None, max_grad_norm=0.5)
    assert config == TrainConfig(**chosen, given=tuple(chosen))  # each flag typed is recorded as chosen
    assert config_from_args(_parser().parse_args(["train", "x.csv", "--train-embeddings"])).freeze_word_embeddings is False
    assert config_from_args(_parser().parse_args(["train", "x.csv"])) == TrainConfig()


def test_the_file_is_checked_before_any_model_is_loaded(tmp_path):
    (tmp_path / "one.csv").write_text("text,label\na,x\nb,x\nc,x\n")
    out = _cli("train", str(tmp_path / "one.csv"), "--model", "no-such-org/no-such-model-xyz")
    assert out.returncode == 2 and "only one class" in out.stderr  # not the model's "no network" error


def test_explain_prints_every_method_with_its_faithfulness_as_json_lines(tiny_run, tmp_path):
    texts = tmp_path / "texts.csv"
    texts.write_text("id,text\n1,we talked about tennis again\n2,the storm came with thunder\n")
    out = _cli("explain", str(tiny_run), "--file", str(texts), "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [line["text"] for line in lines] == ["we talked about tennis again", "the storm came with thunder"]
    methods = {"integrated_gradients", "grad_x_input", "occlusion", "attention_cls", "rollout_cls"}
    for line in lines:
        assert set(line) >= {"tokens", "probabilities", "target", "methods", "shown_first", "operator"}
        assert set(line["methods"]) == methods and line["shown_first"] in methods and line["operator"] == "deletion"
        for method in line["methods"].values():
            assert len(method["scores"]) == len(line["tokens"])
            assert set(method["faithfulness"]) == {"comprehensiveness", "sufficiency", "random_comprehensiveness",
                                                   "random_sufficiency", "tau_occlusion"}
        best = max(line["methods"], key=lambda m: line["methods"][m]["faithfulness"]["comprehensiveness"])
        assert line["shown_first"] == best
    subset = _cli("explain", str(tiny_run), "tennis", "--methods", "occlusion,rollout_cls", "--operator", "mask",
                  "--json")
    one = json.loads(subset.stdout.strip())
    assert set(one["methods"]) == {"occlusion", "rollout_cls"} and one["operator"] == "mask"
    text = _cli("explain", str(tiny_run), "tennis and rain")
    assert text.returncode == 0 and "shown first:" in text.stdout and "comp" in text.stdout
    bad = _cli("explain", str(tiny_run), "tennis", "--methods", "lime")
    assert bad.returncode == 2 and "Unknown explanation methods lime" in bad.stderr
