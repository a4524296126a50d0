"""Scoring an unlabeled pool for the uncertainty queue, one lever at a time (issue 18): the seconds to give every
text of the pool its class probabilities, and how far each lever's margin ranking moves from the order before's.

Levers: batches of texts sorted by characters (``Predictor.predict_proba`` before) at three batch sizes, sorted by
word-pieces (``predict_proba`` now), the model's own forward, and dynamic int8 linears. Each lever is timed
``--repeats`` times, alternating; the median is reported with the overlap of its top-K margin picks with the
order before's (K = ``--k``, the labels a round asks for).

    python bench/pool_score_bench.py --run workspace/RUN --pool bench/out/bbc/train.csv --rows 5000
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, read_labeled, write_result  # noqa: E402

from bertdemo.inference.predict import Predictor  # noqa: E402
from bertdemo.labeling.queues import uncertainty  # noqa: E402


@torch.inference_mode()
def by_characters(predictor: Predictor, texts: list[str], batch_size: int) -> np.ndarray:
    """The order ``predict_proba`` used before for many texts (and still uses for one batch): texts sorted by
    characters, each batch tokenized and padded on its own."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), len(predictor.labels)), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        batch = predictor.encode([texts[i] for i in idx])
        logits = predictor._lean(**batch) if predictor._lean else predictor.model(**batch).logits
        out[idx] = torch.softmax(logits.float(), dim=-1).numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from hw import machine_line

    texts = read_labeled(args.pool)[0]
    texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:args.rows]]
    predictor = Predictor.from_run(args.run)
    plain = Predictor.from_run(args.run, lean=False)
    quantized = torch.ao.quantization.quantize_dynamic(plain.model, {torch.nn.Linear}, dtype=torch.qint8)
    int8 = Predictor(quantized, plain.tokenizer, max_length=plain.max_length, lean=False)

    levers = {  # predict_proba batches by word-pieces now (the default); by_characters is the order before
        "lean, by characters, 64 (the default before)": lambda: by_characters(predictor, texts, 64),
        "lean, by characters, 128": lambda: by_characters(predictor, texts, 128),
        "lean, by characters, 32": lambda: by_characters(predictor, texts, 32),
        "lean, by word-pieces, 64 (the default now)": lambda: predictor.predict_proba(texts),
        "transformers forward, by word-pieces, 64": lambda: plain.predict_proba(texts),
        "dynamic int8, by word-pieces, 64": lambda: int8.predict_proba(texts),
    }
    seconds: dict[str, list[float]] = {name: [] for name in levers}
    picks: dict[str, set] = {}
    for _ in range(args.repeats):
        for name, run in levers.items():
            began = time.perf_counter()
            probs = run()
            seconds[name].append(time.perf_counter() - began)
            picks[name] = set(np.argsort(-uncertainty(probs, "margin"), kind="stable")[:args.k].tolist())
    base = picks["lean, by characters, 64 (the default before)"]
    rows = {name: {"seconds": round(median(s), 2), "texts_per_s": round(len(texts) / median(s), 1),
                   "top_k_overlap": round(len(picks[name] & base) / args.k, 3)} for name, s in seconds.items()}
    result = {"machine": machine_line(), "rows": len(texts), "threads": torch.get_num_threads(), "levers": rows}
    write_result(result, args.out, "pool-score")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
