"""Saved runs: one folder per run in a workspace, written atomically, listed, zipped and deleted.

A run folder only ever appears complete (``Workspace.staging``): a crash or a Stop leaves at most a hidden
``.tmp-*`` folder, swept at the next start, never a run that looks finished. ``run.json`` marks a run; folders
without it are ignored.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bertdemo.spreadsheet import write_csv
from bertdemo.workspace import RUN_FILE, Workspace, as_workspace


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: str
    created: str  # ISO 8601, UTC
    base_model: str  # what the user chose: "default", "scratch", a hub id or a folder
    data_source: str  # the training file's name
    labels: tuple[str, ...]
    metrics: dict  # headline validation metrics: accuracy, macro_f1, loss
    status: str  # "complete"; "stopped" (the user stopped it: best checkpoint kept); "interrupted" (the server
    # stopped mid-training: the best checkpoint it had saved, made a run at the next start)
    train_config: dict = field(default_factory=dict)
    train_rows: int = 0
    validation_rows: int = 0
    train_seconds: float = 0.0
    provenance: dict = field(default_factory=dict)  # e.g. {"project", "snapshot"}: the labels it was trained on
    owner: str = ""  # who trained it: the app's logged-in user or browser, "cli:<user>" from the command line
    note: str = ""  # why the run is not complete, for the model card ("interrupted at step 120 …")
    multi_label: bool = False  # a sigmoid per label, decided by per-label thresholds (in the model's config.json)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _slug(text: str, limit: int = 32) -> str:
    text = Path(str(text)).name if ("/" in str(text) or os.sep in str(text)) else str(text)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:limit] or "run"


def new_run_name(data_source: str, model: str) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{_slug(Path(data_source).stem, 24)}-{_slug(model, 24)}"


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str), encoding="utf-8")


def save_run(workspace: Workspace | str | Path, *, name: str, model, tokenizer, info: RunInfo, train_config: dict,
             data_report: dict, metrics: dict, events: list[dict], train: pd.DataFrame | None = None,
             validation: pd.DataFrame | None = None) -> Path:
    """Write a complete run folder atomically and return its path."""
    workspace = as_workspace(workspace)
    final = workspace.root / f"{name}-{uuid.uuid4().hex[:6]}"  # unique even for two saves in the same second
    with workspace.staging(final.name) as tmp:
        model.save_pretrained(tmp)  # safetensors
        tokenizer.save_pretrained(tmp)
        _write_json(tmp / "train_config.json", train_config)
        _write_json(tmp / "data_report.json", data_report)
        _write_json(tmp / "metrics.json", metrics)
        with open(tmp / "events.jsonl", "w", encoding="utf-8") as handle:
            for event in events:
                handle.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        if train is not None:  # spreadsheet-safe: the run's zip hands these files to other people
            (tmp / "data").mkdir()
            write_csv(train, tmp / "data" / "train.csv")
            if validation is not None:
                write_csv(validation, tmp / "data" / "validation.csv")
        info = dataclasses.replace(info, name=final.name, path=str(final))
        (tmp / "README.md").write_text(model_card(info, metrics, data_report), encoding="utf-8")
        _write_json(tmp / RUN_FILE, info.to_dict())  # last: its presence marks a finished run
    return final


def model_card(info: RunInfo, metrics: dict, report: dict) -> str:
    per_class = metrics.get("per_class", {})
    rows = "\n".join(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
                     for label, m in per_class.items())
    if info.multi_label:
        return _multilabel_card(info, metrics, report, rows)
    return f"""---
library_name: transformers
pipeline_tag: text-classification
---
# {info.name}

A text classifier fine-tuned with bertdemo from `{info.base_model}` on `{info.data_source}`
({info.train_rows} training rows, {info.validation_rows} validation rows). Status: {info.status}{info.note and
" — " + info.note}.

Labels: {', '.join(info.labels)}

## Validation
Accuracy {metrics.get('accuracy', float('nan')):.4f}, macro-F1 {metrics.get('macro_f1', float('nan')):.4f}.

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

{_training_section(info, report)}

## Use
```python
from transformers import pipeline
classify = pipeline("text-classification", model="{info.name}")  # this folder, unzipped
classify("your text here")
```
Limitations: trained on a small dataset; check the confusion matrix and the misclassified examples
before relying on it.
"""


def _training_section(info: RunInfo, report: dict) -> str:
    """The card's "Training" section, the same for both kinds of run."""
    cfg = info.train_config
    return f"""## Training
Epochs {cfg.get('epochs')}, batch size {cfg.get('batch_size')}, learning rate {cfg.get('learning_rate')},
max length {cfg.get('max_length')}, seed {cfg.get('seed')}, {info.train_seconds:.1f} s.
Rows dropped from the data: {sum(d['count'] for d in report.get('dropped', []))}."""


def _multilabel_card(info: RunInfo, metrics: dict, report: dict, rows: str) -> str:
    """The model card of a multi-label run: its F1 figures, its thresholds and how to apply them."""
    thresholds = metrics.get("thresholds", {})
    shown = ", ".join(f"{label} {t:.3f}" for label, t in thresholds.items())
    status = f"Status: {info.status}" + (f" — {info.note}" if info.note else "")
    return f"""---
library_name: transformers
pipeline_tag: text-classification
---
# {info.name}

A multi-label text classifier (a sigmoid per label) fine-tuned with bertdemo from `{info.base_model}` on
`{info.data_source}` ({info.train_rows} training rows, {info.validation_rows} validation rows). {status}.

Labels: {', '.join(info.labels)}. A text carries every label whose probability reaches the label's threshold,
tuned on validation and kept in `config.json` (`"thresholds"`): {shown}.

## Validation
Micro-F1 {metrics.get('micro_f1', float('nan')):.4f}, macro-F1 {metrics.get('macro_f1', float('nan')):.4f},
subset accuracy (every label right) {metrics.get('accuracy', float('nan')):.4f}, Hamming loss
{metrics.get('hamming_loss', float('nan')):.4f}.

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

{_training_section(info, report)}

## Use
```python
from transformers import AutoConfig, pipeline
classify = pipeline("text-classification", model="{info.name}", top_k=None, function_to_apply="sigmoid")
thresholds = AutoConfig.from_pretrained("{info.name}").thresholds
labels = [s["label"] for s in classify("your text here") if s["score"] >= thresholds[s["label"]]]
```
Thresholds saved later in the app are in `config.json`; this card shows those it was trained with.
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


def lineage(info: RunInfo) -> str:
    """The base model a run descends from, through any warm starts (a labeling round records it in the run's
    provenance; a run trained from its base names it as ``base_model``)."""
    return str(info.provenance.get("base_model") or info.base_model)


def lineage_of(run_dir: str | Path | None) -> str | None:
    """``lineage`` of the run saved at ``run_dir``, or None when there is no readable run there."""
    if run_dir is None or not (Path(run_dir) / RUN_FILE).is_file():
        return None
    try:
        return lineage(load_run_info(run_dir))
    except ValueError:
        return None


def read_json(run_dir: str | Path, name: str):
    path = Path(run_dir) / name
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def weights_ok(run_dir: str | Path) -> bool:
    """True when the run's model.safetensors is whole: its header parses and the file is as long as the header
    says (a cheap check of truncation and garbage, without loading a tensor)."""
    path = Path(run_dir) / "model.safetensors"
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if length <= 0 or 8 + length > size or length > 100 * 2**20:
                return False
            header = json.loads(handle.read(length))
        ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
        return bool(ends) and 8 + length + max(ends) == size
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


def list_runs(workspace: Workspace | str | Path | None = None) -> list[RunInfo]:
    """Saved runs in the workspace, newest first; a run whose weights are missing or damaged is listed with
    status "damaged" (so it can be seen and deleted), folders that are not runs are skipped."""
    root = as_workspace(workspace).root
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if child.name.startswith(".") or not (child / RUN_FILE).exists():
            continue
        try:
            info = load_run_info(child)
        except ValueError:
            continue
        runs.append(info if weights_ok(child) else dataclasses.replace(info, status="damaged"))
    return sorted(runs, key=lambda r: (r.created, r.name), reverse=True)


def find_run(name_or_path: str, workspace: Workspace | str | Path | None = None) -> Path:
    """A run folder from a path or a run name in the workspace (the CLI's lookup: any path on this machine)."""
    path = Path(name_or_path).expanduser()
    if (path / RUN_FILE).exists():
        return path
    candidate = as_workspace(workspace).root / str(name_or_path)
    if (candidate / RUN_FILE).exists():
        return candidate
    raise ValueError(f"No saved run at {name_or_path!r}. `python -m bertdemo runs` lists the saved runs; "
                     "pass a run folder or a run name.")


def run_in(workspace: Workspace | str | Path | None, value: str | Path | None) -> Path:
    """The run folder ``value`` names, refused unless it is a saved run directly inside ``workspace``."""
    run_dir = as_workspace(workspace).child(value, what="run")
    if not (run_dir / RUN_FILE).is_file():
        raise ValueError(f"{Path(str(value)).name} is not a run in this app's workspace. Pick one from the list.")
    return run_dir


def delete_run(run_dir: str | Path, workspace: Workspace | str | Path | None = None) -> None:
    """Delete a saved run of ``workspace`` (default: the folder it is in); anything else is refused."""
    run_dir = Path(run_dir)
    workspace = as_workspace(workspace if workspace is not None else run_dir.parent)
    workspace.remove(run_in(workspace, run_dir))


def zip_run(run_dir: str | Path, dest_dir: str | Path | None = None) -> Path:
    """Zip a run folder (the zip holds one folder named like the run) and return the zip's path, in ``dest_dir``
    or in a download folder that is pruned later."""
    run_dir = Path(run_dir)
    load_run_info(run_dir)
    dest = Path(dest_dir) if dest_dir is not None else Workspace(run_dir.parent).download_dir()
    dest.mkdir(parents=True, exist_ok=True)
    archive = shutil.make_archive(str(dest / run_dir.name), "zip", root_dir=run_dir.parent, base_dir=run_dir.name)
    return Path(archive)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
