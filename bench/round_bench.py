"""One labeling round, as the Label tab's Retrain runs it: train on a project's labels, then score the unlabeled pool
for the next uncertainty queue (issue 18: under 60 s for 400 labels and a 5,000-text pool on a 2-core AVX2 CPU, at
test accuracy within 1 point of the round as it was).

Per seed: ``--labels`` labeled rows drawn from the training file, of which the first ``--previous`` were labeled
before the last round (its model is trained first with the engine's defaults, untimed, for the warm-start arms); the validation set is frozen
from those as a project does at its first retrain (``validation_split`` of them, stratified); ``--pool`` more rows
are the unlabeled pool; ``--test-rows`` rows of the test file score each arm. Each arm is a set of ``TrainConfig``
overrides, optionally ``warm`` (start from the previous round's weights) and ``round`` (the engine's own round
plan, ``labeling.rounds``, with the overrides as the person's choices); arms alternate within a seed.

    python bench/bbc_news.py --out bench/out/bbc
    python bench/round_bench.py --data bench/out/bbc/train.csv bench/out/bbc/test.csv --seeds 1,2,3 \\
        --arm before: --arm round:round,warm
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, read_labeled, write_result  # noqa: E402

from bertdemo.config import TrainConfig  # noqa: E402
from bertdemo.data import frames_data, sort_labels  # noqa: E402
from bertdemo.events import DoneEvent, StartEvent  # noqa: E402
from bertdemo.inference.evaluate import evaluate_rows  # noqa: E402
from bertdemo.inference.predict import Predictor  # noqa: E402
from bertdemo.labeling.queues import uncertainty  # noqa: E402
from bertdemo.labeling.rounds import plan_round  # noqa: E402


def parse_arm(spec: str) -> tuple[str, dict]:
    """``name:key=value,key=value,warm`` (values parsed as JSON where they parse)."""
    name, _, rest = spec.partition(":")
    options: dict = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            options[key] = True
            continue
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


def arm_config(options: dict, seed: int) -> tuple[TrainConfig, bool, bool]:
    """(the config, warm?, the engine's own round plan?) of an arm."""
    options = dict(options)
    warm = bool(options.pop("warm", False))
    engine_round = bool(options.pop("round", False))
    return TrainConfig(seed=seed, given=tuple(options) if engine_round else (), **options), warm, engine_round


def train_once(config: TrainConfig, train: pd.DataFrame, validation: pd.DataFrame, labels, workspace: str):
    from bertdemo.training import train as engine_train

    data = frames_data(train, validation, labels, source="round-bench", max_length=config.max_length,
                       validation_source="frozen")
    steps = 0
    for event in engine_train(config, data, workspace=workspace):
        if isinstance(event, StartEvent):
            steps = event.total_steps
        if isinstance(event, DoneEvent):
            return event, steps
    raise RuntimeError("training ended without a run")


def one_seed(texts, labels, test_texts, test_labels, args, seed: int, arms: list[tuple[str, dict]]) -> list[dict]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    labeled, pool = order[:args.labels], order[args.labels:args.labels + args.pool]
    frame = pd.DataFrame({"text": texts, "label": labels})
    names = sort_labels(frame["label"].iloc[labeled])
    earlier, new = frame.iloc[labeled[:args.previous]], frame.iloc[labeled[args.previous:]]
    from sklearn.model_selection import train_test_split

    kept, validation = train_test_split(earlier, test_size=TrainConfig().validation_split, random_state=seed,
                                        stratify=earlier["label"])
    pool_texts = frame["text"].iloc[pool].tolist()
    test = rng.choice(len(test_texts), size=min(args.test_rows, len(test_texts)), replace=False)
    tt, tl = [test_texts[i] for i in test], [test_labels[i] for i in test]
    results = []
    with tempfile.TemporaryDirectory(prefix="round-bench-") as workspace:
        previous = None
        for name, options in arms:
            config, warm, engine_round = arm_config(options, seed)
            if warm and previous is None:  # the previous round, with the engine's defaults: untimed
                previous = train_once(TrainConfig(seed=seed), kept, validation, names, workspace)[0].run_dir
            began = time.perf_counter()
            if engine_round:  # what Retrain does: labeling.rounds decides (warm only where it can continue)
                config = plan_round(config, names, previous if warm else None, warm=warm).config
            elif warm:
                config = dataclasses.replace(config, model=previous)
            done, steps = train_once(config, pd.concat([kept, new]), validation, names, workspace)
            trained = time.perf_counter()
            predictor = Predictor.from_run(done.run_dir)
            scores = uncertainty(predictor.predict_proba(pool_texts if args.score else pool_texts[:1]), "margin")
            scored = time.perf_counter()
            metrics = evaluate_rows(predictor, tt, tl)
            results.append({"arm": name, "seed": seed, "warm": warm, "steps": steps,
                            "train_s": round(trained - began, 1), "score_s": round(scored - trained, 1),
                            "round_s": round(scored - began, 1), "accuracy": round(metrics["accuracy"], 4),
                            "macro_f1": round(metrics["macro_f1"], 4), "stopped_early": done.stopped_early,
                            "top_margin_score": round(float(np.max(scores)), 4)})
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs=2, required=True, metavar=("TRAIN", "TEST"))
    parser.add_argument("--labels", type=int, default=400)
    parser.add_argument("--previous", type=int, default=300)
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--arm", action="append", default=[], help="name:key=value,...[,warm][,round]")
    parser.add_argument("--no-score", dest="score", action="store_false",
                        help="skip scoring the pool (an accuracy sweep: score_s is then meaningless)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from hw import machine_line

    texts, labels = read_labeled(args.data[0])
    test_texts, test_labels = read_labeled(args.data[1])
    arms = [parse_arm(a) for a in (args.arm or ["before:"])]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        rows += one_seed(texts, labels, test_texts, test_labels, args, seed, arms)
    summary = {}
    for name, _ in arms:
        mine = [r for r in rows if r["arm"] == name]
        summary[name] = {k: median([r[k] for r in mine]) for k in ("round_s", "train_s", "score_s", "steps",
                                                                    "accuracy", "macro_f1")}
        summary[name]["accuracy_mean"] = round(float(np.mean([r["accuracy"] for r in mine])), 4)
    result = {"machine": machine_line(), "args": vars(args), "rows": rows, "summary": summary}
    write_result(result, args.out, "round")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
