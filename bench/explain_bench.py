"""The scored explanation panel, streamed: how soon the first explanation exists, and the full scored table,
against integrated gradients alone, at 12 and 64 word-pieces (issue 15, "the page never waits").

Per text, in turn (so drift on a shared machine hits all alike): integrated gradients alone
(``attributions``); the stream (``explain_stream``: the time of each item, the first being integrated gradients
and the last the full scored table); and the explanation as it was computed before it streamed (the reference of
tests/test_explain_stream.py). Ratios are of p50s measured in the same run. Also: the sequences each forwards
through the prediction model, and what drawing the first item costs the page (``ui.tabs.explain``'s builders).

    python bench/explain_bench.py --data sst2 --rows 3000            # trains a 1-epoch run first
    python bench/explain_bench.py --run workspace/RUN --repeats 5
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, read_labeled, resolve_data, write_result  # noqa: E402

LENGTHS = (12, 64)


class Counted:
    """Counts the sequences and word-pieces a predictor's ``predict_proba_ids`` is asked for."""

    def __init__(self, predictor):
        self.sequences = self.pieces = 0
        self._original = predictor.predict_proba_ids
        predictor.predict_proba_ids = self

    def __call__(self, sequences, *args, **kwargs):
        self.sequences += len(sequences)
        self.pieces += sum(len(s) for s in sequences)
        return self._original(sequences, *args, **kwargs)


def stream_times(predictor, text: str) -> list[float]:
    """Seconds from the call to each streamed item."""
    from bertdemo.explain.methods import explain_stream

    started, out = time.perf_counter(), []
    for _ in explain_stream(predictor, text):
        out.append(time.perf_counter() - started)
    return out


def render_first(predictor, text: str) -> float:
    """Seconds to build the panel's outputs for the first streamed item (summary, table, highlight, spans)."""
    from bertdemo.explain.methods import explain_stream
    from bertdemo.ui.tabs.explain import (deletion_figure, explanation_summary, faithfulness_table, highlight_spans,
                                          score_spans)

    first = next(iter(explain_stream(predictor, text)))
    started = time.perf_counter()
    explanation_summary(first), faithfulness_table(first), deletion_figure(first)
    highlight_spans(first, first.shown_first, "words"), score_spans(first.tokens, first.scores[first.shown_first])
    return time.perf_counter() - started


def bench_length(predictor, pool: list[str], length: int, texts: int, repeats: int) -> dict:
    from bertdemo.explain.attributions import attributions
    from predict_bench import texts_near
    from tests.test_explain_stream import _explain_before_streaming

    chosen = texts_near(predictor.tokenizer, pool, length, texts)
    for text in chosen[:1]:  # warm-up: kernel choice, the first oneDNN calls
        attributions(predictor, text), stream_times(predictor, text), _explain_before_streaming(predictor, text)
    ig, stream, before = [], [], []
    for _ in range(repeats):
        for text in chosen:
            started = time.perf_counter()
            attributions(predictor, text, method="integrated_gradients")
            ig.append(time.perf_counter() - started)
            stream.append(stream_times(predictor, text))
            started = time.perf_counter()
            _explain_before_streaming(predictor, text)
            before.append(time.perf_counter() - started)
    forwarded = {}
    for name, run in (("stream", lambda t: stream_times(predictor, t)),
                      ("before", lambda t: _explain_before_streaming(predictor, t))):
        counter = Counted(predictor)
        try:
            run(chosen[0])
        finally:
            del predictor.predict_proba_ids  # the instance attribute goes; the method is back
        forwarded[name] = {"sequences": counter.sequences, "word_pieces": counter.pieces}
    p50 = lambda xs: float(np.median(xs))  # noqa: E731
    ig_ms = 1000 * p50(ig)
    items = min(len(s) for s in stream)
    item_ms = [round(1000 * p50([s[i] for s in stream]), 1) for i in range(items)]
    first_ms, full_ms, before_ms = item_ms[0], item_ms[-1], 1000 * p50(before)
    return {"word_pieces": [len(predictor.tokenizer(t)["input_ids"]) for t in chosen], "runs": len(ig),
            "integrated_gradients_p50_ms": round(ig_ms, 1), "stream_items_p50_ms": item_ms,
            "first_p50_ms": first_ms, "full_p50_ms": full_ms, "before_streaming_p50_ms": round(before_ms, 1),
            "first_ratio": round(first_ms / ig_ms, 2), "full_ratio": round(full_ms / ig_ms, 2),
            "before_ratio": round(before_ms / ig_ms, 2),
            "render_first_ms": round(1000 * p50([render_first(predictor, t) for t in chosen]), 1),
            "forwarded": forwarded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["sst2"])
    parser.add_argument("--run", help="a saved run (default: train one on --data)")
    parser.add_argument("--rows", type=int, default=3000, help="training rows for the run it trains")
    parser.add_argument("--texts", type=int, default=3, help="texts per length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workspace", default=str(REPO / "bench" / "out" / "explain-ws"))
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    from bertdemo.inference.predict import Predictor
    from faithfulness_bench import train_run
    from hw import machine_line

    run = args.run or train_run(args.data, args.workspace, args.rows)
    print(f"run: {run}", file=sys.stderr, flush=True)
    predictor = Predictor.from_run(run)
    _, test_path, _ = resolve_data(args.data)
    pool = read_labeled(test_path)[0]
    result = {"machine": machine_line(), "run": str(run), "precision": predictor.precision,
              "lean_forward": predictor.uses_lean_forward}
    for length in LENGTHS:
        result[str(length)] = bench_length(predictor, pool, length, args.texts, args.repeats)
        print(f"{length} word-pieces done", file=sys.stderr, flush=True)
    print(write_result(result, args.out, "explain"))


if __name__ == "__main__":
    main()
