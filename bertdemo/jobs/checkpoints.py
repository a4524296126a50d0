"""A training job's best checkpoint on disk, and what becomes of it when the server dies mid-training.

While a job trains, each new best checkpoint is written as a complete run into the job's own hidden folder
(``<workspace>/.jobs/<job id>/``; ``train(..., checkpoints=...)`` does the writing, atomically, replacing the
previous one). When the job ends normally the folder is removed: the run saved at the end is the real one. When
the server is killed instead, the next start finds the folder of a job the table still calls running and
``promote`` makes its checkpoint a run of the workspace, marked "interrupted at step N" in ``run.json`` and the
model card: a rename on the same file system, so a second crash leaves either the checkpoint or the run, never half
of one.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from bertdemo.runs import load_run_info, model_card, read_json, weights_ok
from bertdemo.workspace import RUN_FILE, Workspace, as_workspace, fsync_dir

JOBS_DIR = ".jobs"


def checkpoint_space(workspace: Workspace | str | Path | None, job_id: str) -> Workspace:
    """The job's checkpoint folder, as a workspace of its own (its writes are staged like any run's)."""
    return Workspace(as_workspace(workspace).root / JOBS_DIR / job_id)


def latest_checkpoint(workspace: Workspace | str | Path | None, job_id: str) -> Path | None:
    root = checkpoint_space(workspace, job_id).root
    if not root.is_dir():
        return None
    whole = [p for p in root.iterdir() if not p.name.startswith(".") and (p / RUN_FILE).exists() and weights_ok(p)]
    return max(whole, key=lambda p: p.stat().st_mtime, default=None)


def promote(workspace: Workspace | str | Path | None, job_id: str, *, at_step: int | None) -> Path | None:
    """Make the job's best checkpoint a run of the workspace marked interrupted; None when it had saved none."""
    workspace = as_workspace(workspace)
    source = latest_checkpoint(workspace, job_id)
    if source is None:
        return None
    info = load_run_info(source)
    best_step = _best_step(source)
    note = (f"interrupted at step {at_step}" if at_step else "interrupted") + \
        " (the server stopped while it trained); these are the weights of its best evaluation" + \
        (f", at step {best_step}" if best_step else "")
    final = workspace.root / source.name
    info = dataclasses.replace(info, status="interrupted", note=note, name=final.name, path=str(final))
    (source / "README.md").write_text(model_card(info, read_json(source, "metrics.json") or {},
                                                 read_json(source, "data_report.json") or {}), encoding="utf-8")
    marker = source / RUN_FILE
    tmp = marker.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info.to_dict(), indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, marker)
    os.replace(source, final)
    fsync_dir(workspace.root)
    return final


def hold_server_lock(workspace: Workspace | str | Path | None):
    """An exclusive lock on the workspace's jobs for this process's lifetime (the kernel drops it when the
    process dies, also by ``kill -9``); None when another live server holds it."""
    from bertdemo.workspace import try_lock

    root = as_workspace(workspace).root / JOBS_DIR
    root.mkdir(parents=True, exist_ok=True)
    return try_lock(root / ".server.lock")


def discard(workspace: Workspace | str | Path | None, job_id: str) -> None:
    shutil.rmtree(checkpoint_space(workspace, job_id).root, ignore_errors=True)


def leftover_jobs(workspace: Workspace | str | Path | None) -> list[str]:
    """Job ids that still have a checkpoint folder."""
    root = as_workspace(workspace).root / JOBS_DIR
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _best_step(run_dir: Path) -> int | None:
    try:
        with open(run_dir / "events.jsonl", encoding="utf-8") as handle:
            best = [e["step"] for e in map(json.loads, handle) if e.get("event") == "EvalEvent" and e.get("is_best")]
        return best[-1] if best else None
    except (OSError, ValueError, KeyError):
        return None
