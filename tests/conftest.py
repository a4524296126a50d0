"""Shared fixtures: a tiny random BERT (fast) and toy data a model can actually learn.

The tiny model uses the embedded default tokenizer, so everything stays offline.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EN = ROOT / "data" / "news_topics_en.csv"
SAMPLE_ZH = ROOT / "data" / "reviews_zh.csv"

_TOPICS = {
    "food": ["pizza", "pasta", "soup", "bread", "cheese", "salad", "noodles", "cake"],
    "sport": ["football", "tennis", "hockey", "rugby", "golf", "cricket", "boxing", "rowing"],
    "weather": ["rain", "snow", "storm", "sunshine", "fog", "wind", "thunder", "frost"],
}
_FRAMES = ["I really like {w} and {v} today", "the {w} was on the news with {v}", "we talked about {w} and {v}",
           "nobody expected the {w} or the {v}", "there is {w} everywhere, and {v}", "my friend loves {w} and {v}"]


def toy_rows(per_class: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for label, words in _TOPICS.items():
        for i in range(per_class):
            w, v = rng.sample(words, 2)  # two words of the class: a clear signal even for a tiny random BERT
            rows.append((rng.choice(_FRAMES).format(w=w, v=v) + f" number {i}", label))
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows, header=("text", "label"), encoding="utf-8", delimiter=",") -> Path:
    import csv

    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def toy_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("toy") / "toy.csv", toy_rows())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 64) saved with the default model's tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from bertdemo.models import load_tokenizer

    tokenizer = load_tokenizer("default")
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=128)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    path = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_config(tiny_model_dir):
    from bertdemo.config import TrainConfig

    return TrainConfig(model=str(tiny_model_dir), epochs=10, batch_size=8, learning_rate=1e-3, max_length=32,
                       scheduler="constant_with_warmup",
                       evals_per_epoch=1, patience=0, precision="fp32", freeze_word_embeddings=False, min_steps=0)


@pytest.fixture(scope="session")
def toy_data(toy_csv):
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data

    return load_data(toy_csv, TrainConfig(max_length=32))


@pytest.fixture(scope="session")
def tiny_run(tiny_config, toy_data, tmp_path_factory) -> Path:
    """A saved run of the tiny model trained on the toy data."""
    from bertdemo.events import DoneEvent
    from bertdemo.training import train

    workspace = tmp_path_factory.mktemp("workspace")
    events = list(train(tiny_config, toy_data, workspace=workspace))
    assert isinstance(events[-1], DoneEvent)
    return Path(events[-1].run_dir)


def toy_multilabel_rows(n: int = 150, seed: int = 0) -> list[tuple[str, str]]:
    """Texts naming words of 0-3 topics, labelled with those topics ("food|sport"; "none" for no topic)."""
    rng = random.Random(seed)
    names = sorted(_TOPICS)
    rows = []
    for i in range(n):
        chosen = sorted(rng.sample(names, rng.choice([0, 1, 1, 2, 2, 3])))
        words = [rng.choice(_TOPICS[name]) for name in chosen] + rng.sample(["the", "a", "today", "we", "news"], 2)
        rng.shuffle(words)
        rows.append((" ".join(words) + f" number {i}", "|".join(chosen) or "none"))
    return rows


@pytest.fixture(scope="session")
def toy_ml_csv(tmp_path_factory) -> Path:
    """A multi-label CSV: text,label with label cells like "food|sport" and "none"."""
    return write_csv(tmp_path_factory.mktemp("toy-ml") / "tickets.csv", toy_multilabel_rows())


@pytest.fixture(scope="session")
def toy_ml_data(toy_ml_csv):
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data

    return load_data(toy_ml_csv, TrainConfig(max_length=32))


@pytest.fixture(scope="session")
def tiny_ml_run(tiny_config, toy_ml_data, tmp_path_factory) -> Path:
    """A saved multi-label run (sigmoid per label, tuned thresholds) of the tiny model on the toy label sets."""
    from bertdemo.events import DoneEvent
    from bertdemo.training import train

    import dataclasses

    workspace = tmp_path_factory.mktemp("workspace-ml")
    config = dataclasses.replace(tiny_config, learning_rate=3e-3, epochs=20)  # BCE learns slower than softmax here
    events = list(train(config, toy_ml_data, workspace=workspace))
    assert isinstance(events[-1], DoneEvent)
    return Path(events[-1].run_dir)
