"""One validation pass of the engine: the frozen layers computed, against started from their kept output.

The engine scores its validation rows after every epoch. With the lowest layers frozen (the default), their output
for those rows is the same every time, so ``frozen_cache`` keeps it (``validation_logits(keep=True)``). This times
the two ways on the same session, alternated, and checks that the logits agree.

    python bench/validation_bench.py --data bench/out/bbc100/train.csv --train-rows 2500 --precision fp32
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hw  # noqa: E402
from common import median, write_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a text,label CSV: the engine splits off its validation rows")
    parser.add_argument("--train-rows", type=int, default=2500, help="seeded sample, as train_bench.py takes it")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--passes", type=int, default=4, help="pairs of passes, alternated")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="", help="JSON of every pass")
    args = parser.parse_args()

    from bertdemo.config import TrainConfig
    from bertdemo.data import load_data
    from bertdemo.training.evaluation import validation_logits
    from bertdemo.training.session import start_session

    with tempfile.TemporaryDirectory(prefix="bench-validation-") as scratch:
        split = write_split(Path(args.data), args.train_rows, args.seed, Path(scratch))
        config = TrainConfig(seed=args.seed, precision=args.precision, given=("precision",))
        session = start_session(config, load_data(split["train"], config, validation=split["validation"]))
    if session.frozen_cache is None:
        raise SystemExit("No kept frozen output in this session (no frozen layers, one epoch, a GPU, or "
                         "BERTDEMO_FAST_OFF=frozen_cache): nothing to compare.")
    computed, kept, gaps = [], [], []
    for _ in range(args.passes):
        start = time.perf_counter()
        stock, _ = validation_logits(session)  # the frozen layers run
        computed.append(time.perf_counter() - start)
        start = time.perf_counter()
        cached, _ = validation_logits(session, keep=True)  # the first call keeps; later ones start above the frozen
        kept.append(time.perf_counter() - start)
        gaps.append(float((stock - cached).abs().max()))
    result = {"machine": hw.machine_line(), "precision": session.precision.name,
              "validation_rows": split["validation_rows"], "computed_s": computed, "kept_s": kept,
              "first_kept_pass_keeps": True, "max_logit_gap": max(gaps),
              "median_computed_s": median(computed), "median_kept_s": median(kept[1:] or kept)}
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
