"""``python -m bertdemo pretrain TEXTS.csv``: masked-LM pretraining on the command line, with the same engine and
events as the app (``bertdemo.pretraining``). Labels in the file are ignored, so unlabeled files work. The saved
folder is what ``train --model FOLDER`` fine-tunes from and ``pipeline("fill-mask")`` loads.
"""
from __future__ import annotations

import argparse
import json
import sys

from bertdemo.pretraining.config import OBJECTIVES, SCRATCH, SIZES, PretrainConfig


def add_commands(sub) -> None:
    p = sub.add_parser("pretrain", help="masked-language-model pretraining on a file of texts (labels ignored)")
    p.add_argument("data", help="CSV/TSV/Excel file with a text column")
    p.add_argument("--text-col", default="", help="the text column (found by name if omitted)")
    p.add_argument("--from", dest="start", default=SCRATCH,
                   help='"scratch" (a new BERT, vocabulary learned from the texts) or a model to go on '
                        'pretraining: "default", a Hugging Face id or a folder')
    p.add_argument("--size", default=PretrainConfig.size, choices=sorted(SIZES), help="scratch model size: " +
                   ", ".join(f"{k} = {v[0]} layers × {v[1]} hidden × {v[2]} heads" for k, v in SIZES.items()))
    p.add_argument("--layers", type=int, default=0, help="override the size's layers")
    p.add_argument("--hidden", type=int, default=0, help="override the size's hidden size")
    p.add_argument("--heads", type=int, default=0, help="override the size's attention heads")
    p.add_argument("--objective", default="mlm", choices=OBJECTIVES)
    p.add_argument("--whole-word-mask", action="store_true", help="mask all pieces of a word together")
    p.add_argument("--minutes", type=float, default=PretrainConfig.minutes,
                   help="time budget; the learning rate reaches its end when the time does (0: --max-steps decides)")
    p.add_argument("--epochs", type=int, default=PretrainConfig.epochs, help="at most this many passes")
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=PretrainConfig.batch_size)
    p.add_argument("--learning-rate", type=float, default=0.0, help="0: 1e-3 from scratch, 1e-4 continuing")
    p.add_argument("--max-length", type=int, default=PretrainConfig.max_length)
    p.add_argument("--seed", type=int, default=PretrainConfig.seed)
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--workspace", help="where models are saved (under pretrained/)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def cmd_pretrain(args) -> int:
    from tqdm import tqdm

    from bertdemo.cli_common import cli_owner
    from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, StartEvent, StepEvent
    from bertdemo.pretraining import pretrain
    from bertdemo.pretraining.corpus import read_texts

    config = PretrainConfig(start=args.start, size=args.size, layers=args.layers, hidden=args.hidden,
                            heads=args.heads, objective=args.objective, whole_word_mask=args.whole_word_mask,
                            minutes=args.minutes, epochs=args.epochs, max_steps=args.max_steps,
                            batch_size=args.batch_size, learning_rate=args.learning_rate,
                            max_length=args.max_length, seed=args.seed, precision=args.precision)
    texts = read_texts(args.data, args.text_col)
    out = sys.stderr if args.json else sys.stdout
    bar, done = None, None
    from pathlib import Path

    for event in pretrain(config, texts, workspace=args.workspace, source=Path(args.data).name, owner=cli_owner()):
        if isinstance(event, StartEvent):
            budget = f"{config.minutes:g} min" if config.minutes else f"{event.total_steps} steps"
            print(f"pretraining {event.model} on {event.device} ({event.precision}) for {budget}", file=out)
            for note in event.notes:
                print(f"  {note}", file=out)
            bar = tqdm(total=1000, file=out, unit="‰", dynamic_ncols=True, mininterval=1.0,
                       bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
        elif isinstance(event, StepEvent):
            shown = round(1000 * event.step / max(1, event.total_steps))
            bar.update(max(0, min(1000, shown) - bar.n))
            bar.set_postfix(step=event.step, loss=f"{event.loss:.3f}", refresh=False)
        elif isinstance(event, EvalEvent):
            bar.write(f"  held out @ step {event.step}: MLM loss {event.val_loss:.4f}  masked-token accuracy "
                      f"{event.accuracy:.1%}", file=out)
        elif isinstance(event, (DoneEvent, CancelledEvent)):
            done = event
    if bar is not None:
        bar.close()
    if isinstance(done, CancelledEvent) or done is None or not done.run_dir:
        print("error: pretraining ended without a saved model", file=sys.stderr)
        return 1
    m = done.metrics
    print(f"saved {done.run_dir}\n  held-out MLM loss {m['mlm_loss']:.4f}, masked-token accuracy "
          f"{m['mlm_accuracy']:.1%}, {m['steps']} steps, {m['tokens_per_s']:,.0f} tokens/s\n"
          f"  fine-tune it: python -m bertdemo train DATA.csv --model {done.run_dir}", file=out)
    if args.json:
        print(json.dumps({"model": done.run_dir, "metrics": m, "seconds": round(done.train_seconds, 2)}))
    return 0
