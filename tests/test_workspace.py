"""The workspace: the path guard, folders that appear complete or not at all, and the sweep of what crashed
writers leave — never touching a folder a live process is still writing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bertdemo import workspace as ws_module
from bertdemo.workspace import Workspace, prune_downloads
from conftest import ROOT

WRITER = textwrap.dedent("""
    import sys, time
    from bertdemo.workspace import Workspace
    with Workspace(sys.argv[1]).staging(sys.argv[2]) as tmp:
        (tmp / "model.safetensors").write_bytes(b"x" * 1000)
        print("writing", flush=True)
        time.sleep(60)
""")


def _start_writer(root: Path, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), name], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "writing"  # the staging folder and its lock exist now
    return proc


def test_guard_takes_names_and_paths_inside_and_refuses_everything_else(tmp_path):
    ws = Workspace(tmp_path / "ws")
    (ws.root / "run-a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (ws.root / "link").symlink_to(tmp_path / "outside")
    assert ws.child("run-a") == (ws.root / "run-a").resolve()
    assert ws.child(str(ws.root / "run-a")) == (ws.root / "run-a").resolve()
    for bad in ("../outside", str(tmp_path / "outside"), "/etc", "link", "run-a/../../outside", ".tmp-x", "", None):
        with pytest.raises(ValueError) as err:
            ws.child(bad)
        assert str(tmp_path) not in str(err.value)  # the message reveals no server folders


def test_staging_appears_whole_or_not_at_all(tmp_path):
    ws = Workspace(tmp_path)
    with ws.staging("run-1") as tmp:
        (tmp / "a.txt").write_text("a")
        assert not (tmp_path / "run-1").exists()
    assert (tmp_path / "run-1" / "a.txt").read_text() == "a"
    with pytest.raises(RuntimeError):
        with ws.staging("run-2") as tmp:
            (tmp / "a.txt").write_text("a")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-1"]  # no half run, no lock file left


def test_sweep_removes_a_killed_writers_folder_but_not_a_live_ones(tmp_path):
    ws = Workspace(tmp_path)
    live = _start_writer(tmp_path, "live-run")
    killed = _start_writer(tmp_path, "killed-run")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        staged = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
        assert len(staged) == 2 and all(name.startswith(".tmp-") for name in staged)
        removed = ws.sweep()
        assert len(removed) == 1 and "killed-run" in removed[0]
        left = [p.name for p in tmp_path.iterdir()]
        assert any("live-run" in name and not name.endswith(".lock") for name in left)  # still being written
        assert not any("killed-run" in name for name in left)  # its lock file went with it
    finally:
        live.kill()
        live.wait(timeout=30)
    assert len(ws.sweep()) == 1 and list(tmp_path.iterdir()) == []


def test_sweep_removes_leftovers_of_older_versions_and_interrupted_deletes(tmp_path):
    (tmp_path / ".tmp-20261101-run-abc123-xyz").mkdir()  # what an earlier version's crash left (no lock)
    (tmp_path / ".del-run-123456").mkdir()
    (tmp_path / "a-real-run").mkdir()
    assert len(Workspace(tmp_path).sweep()) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["a-real-run"]


def test_downloads_are_pruned_by_age(tmp_path, monkeypatch):
    monkeypatch.setattr(ws_module.tempfile, "gettempdir", lambda: str(tmp_path))
    ws = Workspace(tmp_path / "ws")
    old = ws.download_dir()
    (old / "run.zip").write_bytes(b"zip")
    stale = time.time() - ws_module.DOWNLOAD_TTL_S - 60
    os.utime(old, (stale, stale))
    fresh = ws.download_dir()  # handing out a folder prunes the old ones
    assert fresh.exists() and not old.exists()
    assert prune_downloads(max_age_s=-1) >= 1 and not fresh.exists()


def test_a_relative_workspace_removes_the_folders_it_lists(tmp_path, monkeypatch):
    """`python app.py` uses ./workspace: a job's second best checkpoint removes the first one it listed (a
    relative path once read as relative to the root, and training failed with "not a run in this app's
    workspace")."""
    monkeypatch.chdir(tmp_path)
    checkpoints = Workspace("workspace/.jobs/job1")
    (checkpoints.root / "run-a").mkdir(parents=True)
    for folder in checkpoints.root.iterdir():
        checkpoints.remove(folder)
    assert not any(checkpoints.root.iterdir())
    assert Workspace("workspace").child("run-b") == tmp_path / "workspace" / "run-b"
