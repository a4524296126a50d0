"""Suspicious labels: how many deliberately flipped labels each method ranks in its top K (K = the number flipped).

Flips ``--noise`` of the training labels (seeded: each to another class, uniformly), then ranks every row by how
likely its label is wrong:
  baseline    the 20-line recipe: mean-pooled base MiniLM embeddings, 5-fold logistic regression, self-confidence
  engine      bertdemo.labeling.suspicious: k-fold fine-tuning of the default model, out-of-sample probabilities,
              each ranking in RANKINGS (all from the same probabilities), and the folds' probabilities averaged
              with the baseline's (weights 0.5 and 0.7 on the folds), ranked by self-confidence; then the
              nearest-neighbour vote (its own pass, timed apart), alone and averaged in as the engine does by
              default ("with_neighbours_self_confidence": the engine's answer, in folds + neighbours seconds)
Reports recall@K, precision@K is the same number, and the time each method took, on this machine.

    python bench/suspicious_bench.py --data trec --rows 3000
    python bench/suspicious_bench.py --data trec --rows 0 --folds 4
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import model_path, read_labeled, resolve_data, write_result  # noqa: E402


def flip(labels: list[str], share: float, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    names = sorted(set(labels))
    flipped = rng.choice(len(labels), size=round(share * len(labels)), replace=False)
    noisy = list(labels)
    for i in flipped:
        noisy[i] = rng.choice([n for n in names if n != labels[i]])
    return noisy, np.sort(flipped)


def baseline(texts: list[str], noisy: list[str], seed: int) -> np.ndarray:
    """The issue's 20-line baseline: (N, C) out-of-sample probabilities, classes in sorted order (its score is one
    minus the given label's column)."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_path()), AutoModel.from_pretrained(model_path()).eval()
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start:start + 64], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state  # (B, T, d)
            mask = batch["attention_mask"][..., None].float()
            vectors.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    x = np.concatenate(vectors)
    names = sorted(set(noisy))
    y = np.array([names.index(label) for label in noisy])
    return cross_val_predict(LogisticRegression(max_iter=2000), x, y, cv=5, method="predict_proba")


def self_confidence(probs: np.ndarray, noisy: list[str]) -> np.ndarray:
    names = sorted(set(noisy))
    y = np.array([names.index(label) for label in noisy])
    return 1.0 - probs[np.arange(len(y)), y]


def recall_at_k(scores: np.ndarray, flipped: np.ndarray) -> float:
    top = np.argsort(-scores, kind="stable")[: len(flipped)]
    return float(len(set(top.tolist()) & set(flipped.tolist())) / len(flipped))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["trec"])
    parser.add_argument("--rows", type=int, default=3000, help="seeded sample of the training file (0: all)")
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--folds", type=int, default=0, help="folds for the engine (0: its default)")
    parser.add_argument("--fold-epochs", type=int, default=0, help="epochs per fold (0: FOLD_SETTINGS)")
    parser.add_argument("--fold-min-steps", type=int, default=None, help="min_steps per fold (default: FOLD_SETTINGS)")
    parser.add_argument("--freeze-layers", type=int, default=None, help="freeze_layers per fold (default: FOLD_SETTINGS)")
    parser.add_argument("--second-look", type=float, default=0.0,
                        help="also measure the second look on this share of the most suspect rows (0: not)")
    parser.add_argument("--neighbours", type=int, default=None,
                        help="k of the nearest-neighbour vote (default: the engine's; 0: not measured)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from bertdemo.labeling import suspicious
    from hw import machine_line

    train_path, _, _ = resolve_data(args.data)
    texts, labels = read_labeled(train_path)
    if args.rows and args.rows < len(texts):
        keep = np.random.default_rng(args.seed).choice(len(texts), size=args.rows, replace=False)
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    noisy, flipped = flip(labels, args.noise, args.seed)
    result = {"machine": machine_line(), "data": args.data, "rows": len(texts), "flipped": len(flipped)}
    base_probs = None
    if not args.no_baseline:
        started = time.perf_counter()
        base_probs = baseline(texts, noisy, args.seed)
        result["baseline"] = {"recall_at_k": recall_at_k(self_confidence(base_probs, noisy), flipped),
                              "seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps({"baseline": result["baseline"]}), file=sys.stderr, flush=True)
    started = time.perf_counter()
    folds = args.folds or suspicious.DEFAULT_FOLDS
    from bertdemo.config import TrainConfig

    fold_settings = {**suspicious.FOLD_SETTINGS, **({"epochs": args.fold_epochs} if args.fold_epochs else {}),
                     **({"min_steps": args.fold_min_steps} if args.fold_min_steps is not None else {}),
                     **({"freeze_layers": args.freeze_layers} if args.freeze_layers is not None else {})}
    chosen = ("freeze_layers",) if args.freeze_layers is not None else ()  # used as typed, as the CLI does
    fold_config = TrainConfig(**fold_settings, given=chosen)
    for event in suspicious.out_of_sample_probabilities(texts, noisy, fold_config, folds=folds,
                                                        second_look=0.0, neighbours=0):
        if isinstance(event, suspicious.FoldProgress):
            if event.step == event.steps:
                print(f"fold {event.fold}/{event.folds} done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
        else:
            probs = event
    seconds = round(time.perf_counter() - started, 1)
    result["engine"] = {"folds": folds, "fold_settings": fold_settings, "seconds": seconds, "rankings": {}}
    for method in suspicious.RANKINGS:
        ranked = suspicious.rank_suspects(texts, noisy, probs, method)
        scores = np.zeros(len(texts))
        for position, suspect in enumerate(ranked):
            scores[suspect.row] = len(ranked) - position
        result["engine"]["rankings"][method] = recall_at_k(scores, flipped)
    from bertdemo.labeling import neighbours as knn

    k = knn.NEIGHBOURS if args.neighbours is None else args.neighbours
    votes = None
    if k:  # the engine's default: the folds averaged with the nearest-neighbour vote
        started = time.perf_counter()
        for event in suspicious.neighbour_votes(texts, noisy, fold_config, k=k):
            votes = event if not isinstance(event, suspicious.FoldProgress) else votes
        neighbour_seconds = round(time.perf_counter() - started, 1)
        result["engine"]["neighbours"] = {"k": k, "weight": knn.WEIGHT, "seconds": neighbour_seconds,
                                          "total_seconds": round(seconds + neighbour_seconds, 1)}
        rankings = result["engine"]["rankings"]
        rankings["neighbours_only_self_confidence"] = recall_at_k(self_confidence(votes, noisy), flipped)
        rankings["with_neighbours_self_confidence"] = recall_at_k(
            self_confidence(knn.with_neighbours(probs, votes), noisy), flipped)
        print(json.dumps({"neighbours": result["engine"]["neighbours"],
                          "with_neighbours": rankings["with_neighbours_self_confidence"]}), file=sys.stderr)
    again = None
    if args.second_look:  # lever: the most suspect rows scored again by a model trained without them
        started = time.perf_counter()
        for event in suspicious.second_look_probabilities(texts, noisy, probs, fold_config,
                                                          share=args.second_look):
            again = event if not isinstance(event, suspicious.FoldProgress) else None
        if again is not None:
            seen = ~np.isnan(again[:, 0])
            result["engine"]["second_look"] = {"share": args.second_look, "rows": int(seen.sum()),
                                               "seconds": round(time.perf_counter() - started, 1),
                                               "flipped_among_rows": int(np.isin(np.flatnonzero(seen), flipped).sum())}
            for name, mixed in (("mean", suspicious.with_second_look(probs, again)),
                                ("replace", np.where(seen[:, None], again, probs))):
                result["engine"]["rankings"][f"second_look_{name}_self_confidence"] = recall_at_k(
                    self_confidence(mixed, noisy), flipped)
    if base_probs is not None:  # lever: the fine-tuned folds' probabilities averaged with the baseline's
        assert list(suspicious.sort_labels(noisy)) == sorted(set(noisy)), "class orders differ"
        for weight in (0.5, 0.7):
            mixed = weight * probs + (1 - weight) * base_probs
            result["engine"]["rankings"][f"ensemble_{weight}_self_confidence"] = recall_at_k(
                self_confidence(mixed, noisy), flipped)
    if args.out:  # the probabilities themselves, for rankings tried after the run
        names = sorted(set(noisy))
        np.savez(str(args.out).removesuffix(".json") + ".npz", folds=probs, flipped=flipped,
                 given=np.array([names.index(label) for label in noisy]),
                 **({"baseline": base_probs} if base_probs is not None else {}),
                 **({"neighbours": votes} if votes is not None else {}),
                 **({"second_look": again} if args.second_look and again is not None else {}))
    text = write_result(result, args.out, "suspicious")
    print(text)


if __name__ == "__main__":
    main()
