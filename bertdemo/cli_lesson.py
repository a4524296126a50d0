"""``python -m bertdemo lesson pretraining TRAIN.csv --test TEST.csv``: the lesson "what pretraining buys" on the
command line (``bertdemo.lesson``): random initialisation, pretrained here, and the embedded default, each
fine-tuned the same way at several label counts; a table of test accuracy, one row per arm.
"""
from __future__ import annotations

import json
import sys

from bertdemo.lesson import LessonConfig, parse_counts


def add_commands(sub) -> None:
    p = sub.add_parser("lesson", help='the lesson "what pretraining buys": three starting points, several label '
                                      "counts")
    p.add_argument("topic", choices=["pretraining"])
    p.add_argument("data", help="a labeled CSV/TSV/Excel file: its texts are pretrained on, a sample labeled")
    p.add_argument("--test", help="a labeled test file (default: 20%% of the data held out)")
    p.add_argument("--labels", default="100,500,2000",
                   help='label counts, comma-separated; "all" is every training row (slow on large files)')
    p.add_argument("--pretrain-minutes", type=float, default=LessonConfig.pretrain_minutes)
    p.add_argument("--size", default=LessonConfig.size, help="the pretrained model's size: tiny, mini or small")
    p.add_argument("--seeds", type=int, default=1, help="repeat with this many label samples (the mean is shown)")
    p.add_argument("--test-rows", type=int, default=LessonConfig.test_rows, help="score a sample of the test "
                   "file (0: all of it)")
    p.add_argument("--epochs", type=int, default=LessonConfig.epochs, help="fine-tuning passes, every arm alike")
    p.add_argument("--min-steps", type=int, default=LessonConfig.min_steps,
                   help="fine-tuning steps at least, every arm alike (small label counts get this many)")
    p.add_argument("--model", default="", help="a fourth arm: a Hugging Face id or folder")
    p.add_argument("--workspace", help="where the pretrained model is saved (under pretrained/)")
    p.add_argument("--json", action="store_true", help="print a JSON result as the last line")


def cmd_lesson(args) -> int:
    from bertdemo.lesson import LessonPoint, LessonProgress, LessonResult, lesson
    from bertdemo.labeling.simulate import hold_out, labeled_rows

    config = LessonConfig(labels=parse_counts(args.labels), pretrain_minutes=args.pretrain_minutes, size=args.size,
                          seeds=tuple(range(max(1, args.seeds))), test_rows=args.test_rows, extra_model=args.model,
                          epochs=args.epochs, min_steps=args.min_steps)
    texts, labels = labeled_rows(args.data)
    if args.test:
        test_texts, test_labels = labeled_rows(args.test)
    else:
        texts, labels, test_texts, test_labels = hold_out(texts, labels, 0.2)
    out = sys.stderr if args.json else sys.stdout
    result = None
    for event in lesson(texts, labels, test_texts, test_labels, config, workspace=args.workspace):
        if isinstance(event, LessonProgress):
            print(f"[{event.done}/{event.total}] {event.message}", file=out, flush=True)
        elif isinstance(event, LessonPoint):
            print(f"  {event.arm:<18} {event.labels:>6,} labels: accuracy {event.accuracy:.3f}  macro-F1 "
                  f"{event.macro_f1:.3f}  ({event.seconds:.0f} s)", file=out, flush=True)
        elif isinstance(event, LessonResult):
            result = event
    if result is None:
        print("error: the lesson ended before its pretraining saved a model", file=sys.stderr)
        return 1
    print(format_table(result.table), file=out)
    print(f"pretrained model: {result.pretrained}; the lesson took {result.seconds / 60:.1f} min", file=out)
    if args.json:
        print(json.dumps({"table": result.table, "pretrained": result.pretrained,
                          "pretrain_metrics": result.pretrain_metrics, "seconds": result.seconds}))
    return 0


def format_table(table: dict) -> str:
    """Test accuracy, one row per arm, one column per label count."""
    head = f"{'test accuracy':<18}" + "".join(f"{n:>10,}" for n in table["labels"])
    rows = [f"{arm:<18}" + "".join(f"{a:>10.3f}" if a is not None else f"{'':>10}" for a in accs)
            for arm, accs in table["arms"].items()]
    return "\n".join([head, *rows])
