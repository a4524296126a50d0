"""Saved runs: one folder per run in a workspace, written atomically, listed, zipped and deleted.

A run folder only ever appears complete: everything is written into a hidden temporary folder beside it,
which is then renamed in one step. A crash or a Stop leaves at most a ``.tmp-*`` folder, never a run that
looks finished. ``run.json`` marks a run; folders without it are ignored.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

RUN_FILE = "run.json"
WORKSPACE_ENV = "BERTDEMO_WORKSPACE"


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: str
    created: str  # ISO 8601, UTC
    base_model: str  # what the user chose: "default", "scratch", a hub id or a folder
    data_source: str  # the training file's name
    labels: tuple[str, ...]
    metrics: dict  # headline validation metrics: accuracy, macro_f1, loss
    status: str  # "complete", or "stopped" when the user stopped training and the best checkpoint was kept
    train_config: dict = field(default_factory=dict)
    train_rows: int = 0
    validation_rows: int = 0
    train_seconds: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def default_workspace() -> Path:
    """``$BERTDEMO_WORKSPACE`` if set, else ``./workspace``."""
    return Path(os.environ.get(WORKSPACE_ENV) or "workspace")


def _slug(text: str, limit: int = 32) -> str:
    text = Path(str(text)).name if ("/" in str(text) or os.sep in str(text)) else str(text)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:limit] or "run"


def new_run_name(data_source: str, model: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{_slug(Path(data_source).stem, 24)}-{_slug(model, 24)}"


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def save_run(workspace: str | Path, *, name: str, model, tokenizer, info: RunInfo, train_config: dict,
             data_report: dict, metrics: dict, events: list[dict], train: pd.DataFrame | None = None,
             validation: pd.DataFrame | None = None) -> Path:
    """Write a complete run folder atomically and return its path."""
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    final = workspace / f"{name}-{uuid.uuid4().hex[:6]}"  # unique even for two saves in the same second
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=workspace))
    try:
        model.save_pretrained(tmp)  # safetensors
        tokenizer.save_pretrained(tmp)
        _write_json(tmp / "train_config.json", train_config)
        _write_json(tmp / "data_report.json", data_report)
        _write_json(tmp / "metrics.json", metrics)
        with open(tmp / "events.jsonl", "w", encoding="utf-8") as handle:
            for event in events:
                handle.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        if train is not None:
            (tmp / "data").mkdir()
            train.to_csv(tmp / "data" / "train.csv", index=False)
            if validation is not None:
                validation.to_csv(tmp / "data" / "validation.csv", index=False)
        info = dataclasses.replace(info, name=final.name, path=str(final))
        (tmp / "README.md").write_text(model_card(info, metrics, data_report), encoding="utf-8")
        _write_json(tmp / RUN_FILE, info.to_dict())  # last: its presence marks a finished run
        _fsync_tree(tmp)  # the data must be on disk before the rename makes the run visible
        os.replace(tmp, final)
        _fsync_dir(workspace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        else:
            _fsync_dir(path)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms (Windows) cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def model_card(info: RunInfo, metrics: dict, report: dict) -> str:
    per_class = metrics.get("per_class", {})
    rows = "\n".join(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
                     for label, m in per_class.items())
    cfg = info.train_config
    return f"""---
library_name: transformers
pipeline_tag: text-classification
---
# {info.name}

A text classifier fine-tuned with bertdemo from `{info.base_model}` on `{info.data_source}`
({info.train_rows} training rows, {info.validation_rows} validation rows). Status: {info.status}.

Labels: {', '.join(info.labels)}

## Validation
Accuracy {metrics.get('accuracy', float('nan')):.4f}, macro-F1 {metrics.get('macro_f1', float('nan')):.4f}.

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

## Training
Epochs {cfg.get('epochs')}, batch size {cfg.get('batch_size')}, learning rate {cfg.get('learning_rate')},
max length {cfg.get('max_length')}, seed {cfg.get('seed')}, {info.train_seconds:.1f} s.
Rows dropped from the data: {sum(d['count'] for d in report.get('dropped', []))}.

## Use
```python
from transformers import pipeline
classify = pipeline("text-classification", model="{info.path}")
classify("your text here")
```
Limitations: trained on a small dataset; check the confusion matrix and the misclassified examples
before relying on it.
"""


def load_run_info(run_dir: str | Path) -> RunInfo:
    run_dir = Path(run_dir)
    marker = run_dir / RUN_FILE
    if not marker.exists():
        raise ValueError(f"{run_dir} is not a saved bertdemo run (no {RUN_FILE}). Choose a folder from the "
                         "workspace (`python -m bertdemo runs` lists them).")
    try:
        values = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{marker} is unreadable ({err}); the run is damaged — delete it and train again.") from err
    try:
        known = {f.name for f in dataclasses.fields(RunInfo)}
        values = {k: v for k, v in values.items() if k in known}
        values["labels"] = tuple(values.get("labels", ()))
        values["path"] = str(run_dir)  # the folder may have moved since it was saved
        values["name"] = run_dir.name
        return RunInfo(**values)
    except (TypeError, AttributeError) as err:
        raise ValueError(f"{marker} is incomplete ({err}); the run is damaged — delete it and train again.") from err


def read_json(run_dir: str | Path, name: str):
    path = Path(run_dir) / name
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def list_runs(workspace: str | Path | None = None) -> list[RunInfo]:
    """Complete runs in the workspace, newest first; damaged folders are skipped."""
    workspace = Path(workspace or default_workspace())
    if not workspace.is_dir():
        return []
    runs = []
    for child in workspace.iterdir():
        if child.name.startswith(".") or not (child / RUN_FILE).exists():
            continue
        try:
            runs.append(load_run_info(child))
        except ValueError:
            continue
    return sorted(runs, key=lambda r: (r.created, r.name), reverse=True)


def find_run(name_or_path: str, workspace: str | Path | None = None) -> Path:
    """A run folder from a path or a run name in the workspace."""
    path = Path(name_or_path).expanduser()
    if (path / RUN_FILE).exists():
        return path
    candidate = Path(workspace or default_workspace()) / str(name_or_path)
    if (candidate / RUN_FILE).exists():
        return candidate
    raise ValueError(f"No saved run at {name_or_path!r}. `python -m bertdemo runs` lists the saved runs; "
                     "pass a run folder or a run name.")


def delete_run(run_dir: str | Path) -> None:
    """Delete a saved run (only folders that are runs: it refuses anything else)."""
    run_dir = Path(run_dir)
    load_run_info(run_dir)  # refuses folders that are not runs
    # Rename first so a half-deleted folder never looks like a run.
    trash = run_dir.with_name(f".del-{run_dir.name}-{uuid.uuid4().hex[:6]}")
    os.replace(run_dir, trash)
    shutil.rmtree(trash, ignore_errors=True)


def zip_run(run_dir: str | Path, dest_dir: str | Path | None = None) -> Path:
    """Zip a run folder (the zip holds one folder named like the run) and return the zip's path."""
    run_dir = Path(run_dir)
    load_run_info(run_dir)
    dest = Path(dest_dir or tempfile.mkdtemp(prefix="bertdemo-zip-"))
    dest.mkdir(parents=True, exist_ok=True)
    archive = shutil.make_archive(str(dest / run_dir.name), "zip", root_dir=run_dir.parent, base_dir=run_dir.name)
    return Path(archive)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
