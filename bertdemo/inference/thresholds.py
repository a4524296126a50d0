"""A multi-label run's decision thresholds: reading them, what moving one does to validation F1, and saving them.

A multi-label run keeps one threshold per label in its model's ``config.json`` (``"thresholds": {label: t}``, tuned
on validation when it was trained; ``Predictor`` applies them). Here a user moves them by hand: ``validation_set``
predicts the run's own validation rows (``data/validation.csv``) once and keeps the probabilities, so that
``label_f1`` and ``threshold_scores`` answer a slider move without the model; ``save_thresholds`` writes the new
vector back and drops the run's cached predictor so the next prediction uses it.

Not here: tuning (``bertdemo.multilabel_metrics.tune_thresholds``, run when training ends) and the metrics
themselves (``bertdemo.multilabel_metrics``).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from bertdemo.data.multilabel import DEFAULT_SEP, multi_hot, parse_cells
from bertdemo.inference.predict import forget_predictor, get_predictor
from bertdemo.multilabel_metrics import DEFAULT_THRESHOLD, decide, f1_figures, multilabel_metrics
from bertdemo.runs import read_json
from bertdemo.spreadsheet import FORMULA_START

CACHE_SIZE = 4  # runs whose validation probabilities are kept (N × labels floats each: small)


@dataclass(frozen=True)
class ValidationSet:
    """A run's validation rows with the run's probabilities for them."""
    labels: tuple[str, ...]
    texts: list[str]
    y: np.ndarray  # (N, L) 0/1: the labels each text carries
    probs: np.ndarray  # (N, L) each label's sigmoid probability, as the run predicts it


def run_thresholds(run_dir: str | Path) -> dict[str, float]:
    """{label: threshold} in label order, from the run's ``config.json`` (0.5 for a label without one)."""
    config = _read_config(run_dir)
    labels = _labels(config)
    saved = config.get("thresholds") or {}
    return {label: float(saved.get(label, DEFAULT_THRESHOLD)) for label in labels}


def save_thresholds(run_dir: str | Path, thresholds: Mapping[str, float]) -> dict[str, float]:
    """Write ``thresholds`` ({label: t}, 0 < t < 1; labels left out keep theirs) into the run's ``config.json``
    and return the full vector. Atomic: a temporary file in the same folder replaces the old one, so a crash leaves
    either the old file or the new one, never half of it. The run's cached predictor is dropped, so the app's next
    prediction reads the new thresholds.

    Where the run kept its validation rows, its ``metrics.json`` (and the headline figures in ``run.json``) are
    recomputed at the new thresholds, so the Evaluate view and the runs list describe the decisions the run now
    makes; the loss and the fixed-0.5 figures (``at_0_5``) do not depend on them and stay."""
    with _save_lock:  # read, change, write: two saves at once would each write the other's labels back
        return _save(Path(run_dir), thresholds)


def _save(run_dir: Path, thresholds: Mapping[str, float]) -> dict[str, float]:
    config = _read_config(run_dir)
    if config.get("problem_type") != "multi_label_classification":
        raise ValueError("This run gives each text one class (softmax): it has no per-label thresholds to save. "
                         "Train it on a multi-label file to get them.")
    current = run_thresholds(run_dir)
    unknown = [str(label) for label in thresholds if label not in current]
    if unknown:
        raise ValueError(f"The run has no label {', '.join(map(repr, unknown[:5]))}. Its labels: "
                         f"{', '.join(current)}.")
    for label, value in thresholds.items():
        t = float(value)
        if not 0.0 < t < 1.0 or not np.isfinite(t):
            raise ValueError(f"The threshold of {label!r} must be between 0 and 1, exclusive (got {value}): at 0 every "
                             "text would get the label, at 1 none would.")
        current[label] = round(t, 6)
    has_rows = (run_dir / "data" / "validation.csv").exists()
    validation = validation_set(run_dir) if has_rows else None  # probabilities do not depend on thresholds
    config["thresholds"] = current
    _write_json(run_dir / "config.json", config)  # first: predictions read it
    if validation is not None:
        _refresh_metrics(run_dir, validation_metrics(validation, current))
    forget_predictor(run_dir)
    forget_validation(run_dir)  # cheap to rebuild, and never stale if the weights were replaced too
    return current


def validation_set(run_dir: str | Path) -> ValidationSet:
    """The run's validation rows and its probabilities for them; predicted once per run and kept
    (``CACHE_SIZE`` runs). A ``ValueError`` when the run kept no validation rows or is not multi-label."""
    run_dir = Path(run_dir)
    key = _key(run_dir)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    predictor = get_predictor(run_dir)
    if not predictor.multi_label:
        raise ValueError("This run gives each text one class: thresholds belong to multi-label runs.")
    texts, sets = _validation_rows(run_dir)
    found = ValidationSet(labels=predictor.labels, texts=texts, y=multi_hot(sets, predictor.labels),
                          probs=predictor.predict_proba(texts))
    with _lock:
        _cache[key] = found
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def forget_validation(run_dir: str | Path) -> None:
    """Drop a run's kept validation probabilities."""
    with _lock:
        for key in [k for k in _cache if k[0] == str(Path(run_dir).resolve())]:
            _cache.pop(key)


def label_f1(validation: ValidationSet, label: str, threshold: float) -> float:
    """Validation F1 of one label when it applies from ``threshold`` up."""
    j = _index(validation, label)
    predicted = (validation.probs[:, j] >= float(threshold)).astype(int)
    return float(f1_score(validation.y[:, j].astype(int), predicted, zero_division=0))


def threshold_scores(validation: ValidationSet, thresholds: Mapping[str, float]) -> dict:
    """Validation micro- and macro-F1 and each label's F1 for a whole threshold vector ({label: t}; a label left
    out at 0.5)."""
    t = np.array([float(thresholds.get(label, DEFAULT_THRESHOLD)) for label in validation.labels])
    y_true, y_pred = validation.y.astype(int), decide(validation.probs, t)
    per_label = f1_score(y_true, y_pred, average=None, zero_division=0)
    return {**f1_figures(y_true, y_pred),  # the same figures as the run's metrics.json
            "f1": {label: float(f) for label, f in zip(validation.labels, per_label)}}


def validation_metrics(validation: ValidationSet, thresholds: Mapping[str, float]) -> dict:
    """The run's full multi-label validation metrics (``multilabel_metrics``) at ``thresholds``."""
    t = [float(thresholds.get(label, DEFAULT_THRESHOLD)) for label in validation.labels]
    return multilabel_metrics(validation.y, validation.probs, validation.labels, t, texts=validation.texts)


# helpers

_cache: "OrderedDict[tuple, ValidationSet]" = OrderedDict()
_lock = threading.Lock()  # guards _cache; never held while predicting
_save_lock = threading.Lock()  # one threshold save at a time (in this server)


def _key(run_dir: Path) -> tuple:
    """The run and when its weights and config last changed: a run replaced in place is predicted again."""
    stamps = tuple(os.stat(p).st_mtime_ns if p.exists() else 0
                   for p in (run_dir / "model.safetensors", run_dir / "config.json"))
    return (str(run_dir.resolve()), *stamps)


def _read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ValueError(f"{Path(run_dir).name} has no config.json: it is not a saved model. Load a run from the "
                         "Models tab (or give a run folder).")
    return json.loads(path.read_text(encoding="utf-8"))


def _labels(config: dict) -> list[str]:
    id2label = config.get("id2label") or {}
    return [id2label[k] for k in sorted(id2label, key=int)]


def _index(validation: ValidationSet, label: str) -> int:
    if label not in validation.labels:
        raise ValueError(f"Unknown label {label!r}. Choose one of: {', '.join(validation.labels)}.")
    return validation.labels.index(label)


def _validation_rows(run_dir: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    """(texts, label sets) of ``data/validation.csv``, as training wrote it (cells "a|b" or "none", in the
    separator of the training file)."""
    path = run_dir / "data" / "validation.csv"
    if not path.exists():
        raise ValueError(f"Run {run_dir.name} kept no validation rows (data/validation.csv), so moving a threshold "
                         "cannot show its validation F1. Train the run again to keep them.")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "text" not in table.columns or "label" not in table.columns:
        raise ValueError(f"{path.name} of run {run_dir.name} has no text and label columns: the run is damaged. "
                         "Train it again.")
    sep = ((read_json(run_dir, "data_report.json") or {}).get("label_format") or {}).get("sep") or DEFAULT_SEP
    sets = parse_cells(table["label"].tolist(), sep)
    keep = [i for i, s in enumerate(sets) if s is not None]
    return [_undefused(table["text"][i]) for i in keep], [sets[i] for i in keep]


def _undefused(text: str) -> str:
    """A text as training saw it: ``bertdemo.spreadsheet`` wrote "'=…" for a cell starting with "=" (and the other
    formula characters)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def _refresh_metrics(run_dir: Path, fresh: dict) -> None:
    """metrics.json at new thresholds (keeping what they do not change), and run.json's headline figures."""
    old = read_json(run_dir, "metrics.json") or {}
    kept = {k: old[k] for k in ("loss", "at_0_5") if k in old}
    _write_json(run_dir / "metrics.json", {**old, **fresh, **kept})
    info = read_json(run_dir, "run.json")
    if info and isinstance(info.get("metrics"), dict):
        info["metrics"] = {k: fresh.get(k, v) for k, v in info["metrics"].items()}
        _write_json(run_dir / "run.json", info)


def _write_json(path: Path, value) -> None:
    _write_atomically(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def _write_atomically(path: Path, content: str) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)  # mkstemp's file is private; keep the old file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
