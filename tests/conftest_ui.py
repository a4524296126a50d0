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
def app_url(tmp_path_factory, ui_model_dir):
    """The app, launched in-process on 127.0.0.1 with an empty workspace; yields its URL, the workspace and the
    app (for tests that act as a page would). The tiny model's folder is one the Model field may load from (as an
    operator would allow a folder of models)."""
    from bertdemo.ui import build_app, launch_app

    workspace = tmp_path_factory.mktemp("workspace")
    demo = build_app(workspace, model_dirs=(Path(ui_model_dir).parent,))
    launch_app(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo.local_url, workspace, demo
    demo.close()
    shutil.rmtree(workspace, ignore_errors=True)


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url[0], verbose=False)


class AppProcess:
    """``python app.py`` in a process of its own, as a newcomer starts it; killed or stopped by the test."""

    def __init__(self, workspace, log_path, *args: str):
        import subprocess
        import sys
        import time
        import urllib.request

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        self._log = open(log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "app.py", "--workspace", str(workspace), "--port", str(self.port),
                                      *args], cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"})
        deadline = time.time() + 180
        while time.time() < deadline and self.proc.poll() is None:
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("the app did not start: " + open(log_path).read()[-3000:])

    def kill9(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self._log.close()


# Jobs through the API, as a gradio_client script drives them: start, then follow by id.

def start_training(client, **settings) -> str:
    """``/start_training`` in this client's session (its loaded data); returns the job id."""
    _, job_id, _ = client.predict(**settings, api_name="/start_training")
    assert job_id, "no job id came back"
    return job_id


def job_status(client, job_id: str, since: int = 0) -> dict:
    return client.predict(job_id, since, api_name="/job_status")


def wait_job(client, job_id: str, *, timeout: float = 300, until=None) -> dict:
    """Poll ``/job_status`` until the job has ended (or ``until(status)`` holds); the status with every event."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        status = job_status(client, job_id)
        if status["state"] not in ("queued", "running") or (until is not None and until(status)):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {status['state']} after {timeout} s: {status['line']}")


def train_to_end(client, timeout: float = 300, **settings) -> dict:
    return wait_job(client, start_training(client, **settings), timeout=timeout)
