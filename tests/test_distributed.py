"""The same training code under a multi-process launcher (2 CPU processes, gloo): one run, one report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bertdemo.runs import list_runs
from conftest import ROOT

pytestmark = pytest.mark.slow  # torchrun


# bf16 on CPU is a bf16 model with fp32 master weights (bertdemo.master_weights): DDP must all-reduce its grads
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_two_processes_train_one_run(tmp_path, toy_csv, tiny_model_dir, precision):
    workspace = tmp_path / "ws"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    torchrun = Path(sys.executable).with_name("torchrun")
    out = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "bertdemo", "train", str(toy_csv),
         "--model", str(tiny_model_dir), "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--max-length", "32",
         "--precision", precision, "--train-embeddings", "--workspace", str(workspace), "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    reports = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # only rank 0 reports
    runs = list_runs(workspace)
    assert [r.path for r in runs] == [json.loads(reports[0])["run"]]  # only rank 0 saves
    events = [json.loads(line) for line in (Path(runs[0].path) / "events.jsonl").read_text().splitlines()]
    start = events[0]
    assert start["num_processes"] == 2
    assert start["steps_per_epoch"] == -(-start["train_rows"] // (8 * 2))  # each process takes half the batches
