"""Small label sets: which training defaults keep every class alive when a labeling loop has 50-1,500 labels.

Trains the engine on seeded samples of a labeled file (``--sizes``), under each candidate setting (``--configs``:
a name and TrainConfig fields), and scores each run on the test file: accuracy, macro-F1, and the classes the
model never predicts. All runs of one size and seed train on the same rows.

    python bench/small_data_bench.py --data trec --sizes 200,500,1500 --seeds 42,43
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, median, read_labeled, resolve_data, scores  # noqa: E402

CONFIGS = {  # name -> TrainConfig fields changed from the engine's defaults
    "defaults": {},
    "old defaults": {"min_steps": 0, "class_weights": "none"},
    "min_steps=150": {"min_steps": 150, "class_weights": "none"},
    "min_steps=300": {"min_steps": 300, "class_weights": "none"},
    "class weights": {"min_steps": 0, "class_weights": "auto"},
    "min_steps=150 + class weights": {"min_steps": 150, "class_weights": "auto"},
    "min_steps=300 + class weights": {"min_steps": 300, "class_weights": "auto"},
    "min_steps=300 + class weights + batch 16": {"min_steps": 300, "class_weights": "auto", "batch_size": 16},
    "min_steps=300 + class weights + batch 8": {"min_steps": 300, "class_weights": "auto", "batch_size": 8},
}


def run_one(train_path: Path, test: tuple[list, list], size: int, seed: int, fields: dict) -> dict:
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data
    from bertdemo.events import DoneEvent, StartEvent
    from bertdemo.inference.predict import Predictor
    from bertdemo.training import train

    config = dataclasses.replace(TrainConfig(seed=seed, max_train_rows=size), **fields)
    data = load_data(train_path, config)
    with tempfile.TemporaryDirectory(prefix="bench-small-") as workspace:
        started = time.perf_counter()
        events = list(train(config, data, workspace=workspace))
        seconds = time.perf_counter() - started
        start, done = events[0], events[-1]
        assert isinstance(start, StartEvent) and isinstance(done, DoneEvent)
        predictor = Predictor.from_run(done.run_dir)
        predicted = [predictor.labels[i] for i in predictor.predict_proba(test[0]).argmax(1)]
    return {"size": size, "seed": seed, "train_rows": len(data.train), "epochs": start.epochs,
            "steps": start.total_steps, "notes": list(start.notes), "seconds": round(seconds, 1),
            "test": scores(test[1], predicted),
            "never_predicted": sorted(set(data.labels) - set(predicted)),
            "validation_macro_f1": done.metrics["macro_f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["trec"], help="trec, sst2, or TRAIN TEST")
    parser.add_argument("--sizes", default="200,500,1500", help="training rows to sample (comma-separated)")
    parser.add_argument("--seeds", default="42,43")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="names from CONFIGS, comma-separated")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from hw import machine_line

    train_path, test_path, _ = resolve_data(args.data)
    test = read_labeled(test_path)
    names = args.configs.split(",")
    runs = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name in names:  # configurations alternate, so drift on a shared machine hits all alike
                result = {"config": name, **run_one(train_path, test, size, seed, CONFIGS[name])}
                runs.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
    table = {}
    for size in sorted({r["size"] for r in runs}):
        for name in names:
            mine = [r for r in runs if r["size"] == size and r["config"] == name]
            table[f"{size} rows / {name}"] = {
                "accuracy": median([r["test"]["accuracy"] for r in mine]),
                "macro_f1": median([r["test"]["macro_f1"] for r in mine]),
                "never_predicted": sorted({c for r in mine for c in r["never_predicted"]}),
                "steps": median([r["steps"] for r in mine]), "seconds": median([r["seconds"] for r in mine])}
    result = {"machine": machine_line(), "data": args.data, "runs": runs, "table": table}
    out = Path(args.out or REPO / "bench" / "out" / f"small-data-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for key, row in table.items():
        print(f"{key:<45} acc {row['accuracy']:.3f}  macro-F1 {row['macro_f1']:.3f}  steps {row['steps']:.0f}  "
              f"{row['seconds']:.0f} s  never predicted: {', '.join(row['never_predicted']) or '-'}")


if __name__ == "__main__":
    main()
