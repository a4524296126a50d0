"""Shared pieces of the benchmarks: the data split every configuration trains on, token counts, scores.

Not a training loop: the engine trains through its CLI, the peers in ``bench/peers.py``. What lives here must
be computed identically for all of them, so the comparison is about training speed and nothing else.
"""
from __future__ import annotations

import dataclasses
import json
import resource
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/x.py` from the repo root imports bertdemo without installing it
    sys.path.insert(0, str(REPO))

DATASETS = {  # --data NAME -> (train, test, default --train-rows; 0 = all)
    "sst2": (REPO.parent / "shared/data/sst2/train.csv", REPO.parent / "shared/data/sst2/test.csv", 20_000),
    "trec": (REPO.parent / "shared/data/trec/train.csv", REPO.parent / "shared/data/trec/test.csv", 0),
}

# helpers


def engine_defaults() -> dict:
    """The engine's training defaults: every peer is run with these, so a changed default moves all alike."""
    from bertdemo.config import TrainConfig

    return TrainConfig().to_dict()


def model_path(name: str = "default") -> str:
    from bertdemo.models import resolve_model

    return resolve_model(name)


def resolve_data(data: list[str]) -> tuple[Path, Path, int]:
    """``["sst2"]`` / ``["trec"]`` / ``[TRAIN, TEST]`` -> (train, test, default row count)."""
    if len(data) == 1 and data[0] in DATASETS:
        return DATASETS[data[0]]
    if len(data) == 2:
        return Path(data[0]), Path(data[1]), 0
    raise ValueError(f"--data takes sst2, trec or two paths TRAIN TEST (got {' '.join(data)!r}).")


def write_split(train_path: Path, rows: int, seed: int, out_dir: Path) -> dict:
    """Split ``train_path`` exactly as the engine does by default and write train.csv / validation.csv.

    Every configuration then trains on the same rows (the engine's cleaning drops empty rows and exact
    duplicates; the peers get the cleaned rows too) and the engine checkpoints on a validation set held out
    of the training file, never on the test set.
    """
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data

    data = load_data(train_path, TrainConfig(max_train_rows=rows, seed=seed))
    out_dir.mkdir(parents=True, exist_ok=True)
    data.train.to_csv(out_dir / "train.csv", index=False)
    data.validation.to_csv(out_dir / "validation.csv", index=False)
    return {"train": str(out_dir / "train.csv"), "validation": str(out_dir / "validation.csv"),
            "train_rows": len(data.train), "validation_rows": len(data.validation), "labels": list(data.labels)}


def read_labeled(path: str | Path):
    """(texts, labels as str) of a text,label CSV, read and cleaned by the engine's own code, so every
    configuration trains and is scored on exactly the rows the engine would use."""
    from bertdemo.data import clean_rows, read_table

    table = read_table(path)
    rows = clean_rows(table["text"], table["label"]).rows
    return rows["text"].tolist(), rows["label"].tolist()


def token_lengths(texts: list[str], tokenizer, max_length: int) -> np.ndarray:
    """Word-pieces per text including [CLS]/[SEP], capped at ``max_length`` (what a model actually sees)."""
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))


def scores(y_true, y_pred) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro"))}


def peak_rss_mb_self() -> float:
    """This process's peak resident set, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict) -> None:
    """Print the result as the last stdout line, the way ``python -m bertdemo train --json`` does."""
    print(json.dumps(result, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o) else str(o)),
          flush=True)


def write_result(result: dict, out: str, stem: str) -> str:
    """Write ``result`` as JSON to ``out`` (default bench/out/STEM-TIMESTAMP.json) and return the text."""
    import time

    text = json.dumps(result, indent=1)
    path = Path(out or REPO / "bench" / "out" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return text


def median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None
