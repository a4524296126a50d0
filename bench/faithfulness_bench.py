"""Faithfulness of every explanation the app shows, on a run of the user's own kind, under deletion and [MASK].

Trains (or takes ``--run``) a run on SST-2 (20,000 seeded rows, 1 epoch, default model), then scores ``--texts``
test texts with every method in ``bertdemo.explain.methods.METHODS`` plus two gradient×input variants that
test why plain gradient×input can score below random:
  grad_x_input_neg     the same scores, negated (a sign slip would make this one faithful)
  grad_x_input_hidden  gradient×input at the embedding layer's output (after its LayerNorm) instead of the word
                       embeddings: BERT's post-embedding LayerNorm makes the model blind to the scale of its input,
                       so the word-embedding product mostly measures the position and type vectors
Per method and operator: mean comprehensiveness, sufficiency, τ with occlusion, the share of texts where it
beats random, and the time per text; plus the time of all methods against integrated gradients alone.

    python bench/faithfulness_bench.py --data sst2 --texts 500
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, read_labeled, resolve_data, write_result  # noqa: E402


def train_run(data: list[str], workspace: str, rows: int) -> str:
    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data
    from bertdemo.events import DoneEvent
    from bertdemo.training import train

    train_path, _, default_rows = resolve_data(data)
    config = TrainConfig(epochs=1, max_train_rows=rows or default_rows)
    done = [e for e in train(config, load_data(train_path, config), workspace=workspace)
            if isinstance(e, DoneEvent)][-1]
    return done.run_dir


def hidden_grad_x_input(model, ids, target: int) -> np.ndarray:
    """gradient×input at the output of BERT's embedding layer (after its LayerNorm), fp32 transformers model."""
    import torch

    captured = {}

    def keep(module, inputs, output):  # the run's weights are frozen for inference: a leaf to differentiate at
        leaf = output.detach().requires_grad_()
        captured["h"] = leaf
        return leaf

    handle = model.bert.embeddings.register_forward_hook(keep)
    try:
        logits = model(input_ids=torch.tensor([ids])).logits
        logits[0, target].backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    h = captured["h"]
    return (h * h.grad).sum(-1)[0].detach().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["sst2"])
    parser.add_argument("--run", help="a saved run (default: train one on --data)")
    parser.add_argument("--rows", type=int, default=0, help="training rows for the run (0: the data set's default)")
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--workspace", default=str(REPO / "bench" / "out" / "faithfulness-ws"),
                        help="where the trained run is kept (reuse it with --run)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from bertdemo.explain.faithfulness import OPERATORS, faithfulness
    from bertdemo.explain.methods import METHODS, explain
    from bertdemo.inference.predict import Predictor
    from hw import machine_line

    _, test_path, _ = resolve_data(args.data)
    texts = read_labeled(test_path)[0][: args.texts]
    if True:  # (the run is kept in --workspace: a later failure does not cost the training again)
        started = time.perf_counter()
        run = args.run or train_run(args.data, args.workspace, args.rows)
        print(f"run: {run}", file=sys.stderr, flush=True)
        train_seconds = time.perf_counter() - started
        predictor = Predictor.from_run(run)
        fp32 = predictor.eager_model()
        names = [*METHODS, "grad_x_input_neg", "grad_x_input_hidden"]
        rows = {op: {name: [] for name in names} for op in OPERATORS}
        timing = {"all_methods_s": [], "integrated_gradients_s": [], "tokens": []}
        for n, text in enumerate(texts):
            started = time.perf_counter()
            base = explain(predictor, text)  # every method, scored with deletion: what the app computes
            timing["all_methods_s"].append(time.perf_counter() - started)
            timing["integrated_gradients_s"].append(base.seconds["integrated_gradients"])
            timing["tokens"].append(len(base.tokens))
            ids = predictor.encode([text])["input_ids"][0].tolist()
            target = predictor.labels.index(base.target)
            scores = dict(base.scores)
            scores["grad_x_input_neg"] = -scores["grad_x_input"]
            scores["grad_x_input_hidden"] = hidden_grad_x_input(fp32, ids, target)
            for op in OPERATORS:
                scored = faithfulness(predictor, ids, base.special, target, scores, operator=op,
                                      occlusion=scores["occlusion"])
                for name in names:
                    rows[op][name].append(scored[name])
            if (n + 1) % 50 == 0:
                print(f"{n + 1}/{len(texts)} texts", file=sys.stderr, flush=True)
        cost_by_length = cost(predictor, read_labeled(test_path)[0])
    table = {op: {name: summary(results) for name, results in rows[op].items()} for op in OPERATORS}
    result = {"machine": machine_line(), "run": str(run), "train_seconds": round(train_seconds, 1),
              "texts": len(texts), "table": table,
              "cost": {"all_methods_p50_ms": round(1000 * float(np.median(timing["all_methods_s"])), 1),
                       "integrated_gradients_p50_ms": round(1000 * float(np.median(timing["integrated_gradients_s"])), 1),
                       "ratio_p50": round(float(np.median(np.array(timing["all_methods_s"]) /
                                                          np.array(timing["integrated_gradients_s"]))), 2),
                       "median_tokens": float(np.median(timing["tokens"]))},
              "cost_by_length": cost_by_length}
    text = write_result(result, args.out, "faithfulness")
    print(text)


def cost(predictor, pool: list[str]) -> dict:
    """All methods with their faithfulness against integrated gradients alone, at 12 and 64 word-pieces (p50 over
    three texts, three times each, alternating)."""
    from bertdemo.explain.attributions import attributions
    from bertdemo.explain.methods import explain
    from predict_bench import texts_near

    out = {}
    for length in (12, 64):
        texts = texts_near(predictor.tokenizer, pool, length, 3)
        explain(predictor, texts[0])  # warm-up
        ig, everything = [], []
        for _ in range(3):
            for text in texts:
                started = time.perf_counter()
                attributions(predictor, text, method="integrated_gradients")
                ig.append(time.perf_counter() - started)
                started = time.perf_counter()
                explain(predictor, text)
                everything.append(time.perf_counter() - started)
        out[length] = {"integrated_gradients_p50_ms": round(1000 * float(np.median(ig)), 1),
                       "all_methods_p50_ms": round(1000 * float(np.median(everything)), 1),
                       "ratio": round(float(np.median(everything) / np.median(ig)), 2)}
    return out


def summary(results) -> dict:
    taus = [r.tau_occlusion for r in results if r.tau_occlusion is not None]
    return {"comprehensiveness": round(float(np.mean([r.comprehensiveness for r in results])), 4),
            "sufficiency": round(float(np.mean([r.sufficiency for r in results])), 4),
            "random_comprehensiveness": round(float(np.mean([r.random_comprehensiveness for r in results])), 4),
            "tau_occlusion": round(float(np.mean(taus)), 3) if taus else None,
            "beats_random": round(float(np.mean([r.beats_random for r in results])), 3)}


if __name__ == "__main__":
    main()
