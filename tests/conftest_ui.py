"""Fixtures for the UI tests (loaded with ``pytest_plugins``): a tiny BERT, the app on a free port, a client.

The tiny model is a randomly initialised 2-layer BERT (hidden size 32) with the embedded default model's
tokenizer, saved as a local folder — the app accepts a folder as "Model", so training it takes seconds
on two CPU cores while every code path (events, saving, attention, attributions) is the real one.
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "news_topics_en.csv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ui_model_dir(tmp_path_factory) -> str:
    """A 2-layer, 2-head BERT with random weights and a real WordPiece tokenizer, as a local model folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from bertdemo.models import load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer("default")
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    path = tmp_path_factory.mktemp("tiny-bert")
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> str:
    """The first 120 rows of the bundled English sample: enough for every class, quick to train on."""
    import pandas as pd

    path = tmp_path_factory.mktemp("data") / "news_small.csv"
    pd.read_csv(SAMPLE).groupby("label").head(30).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app, launched in-process on 127.0.0.1 with an empty workspace; yields its URL."""
    from bertdemo.ui import build_app, launch_app

    workspace = tmp_path_factory.mktemp("workspace")
    demo = build_app(workspace)
    launch_app(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo.local_url, workspace
    demo.close()
    shutil.rmtree(workspace, ignore_errors=True)


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url[0], verbose=False)
