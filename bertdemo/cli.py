"""Command line: ``python -m bertdemo train|predict|explain|evaluate|runs|project|al-curve|jobs|pretrain|lesson``. Same engine and
events as the app; the labeling commands are in ``bertdemo.cli_labeling``, the server's jobs in ``bertdemo.cli_jobs``,
pretraining in ``bertdemo.cli_pretrain``, the lesson in ``bertdemo.cli_lesson``, and what they share (the training flags, the progress bar, who the CLI is)
in ``bertdemo.cli_common``.

``train``'s settings are generated from ``TrainConfig``'s fields, with their help taken from the field comments,
so a new setting is a flag without touching this file. Errors in the user's input print one line and exit with
status 2; ``--json`` makes the last stdout line a JSON object for scripts and benchmarks (progress goes to stderr
then).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from bertdemo.cli_common import (add_config_flags, add_label_flags, cli_owner, config_from_args, data_lines,
                                 label_args, train_with_progress)
from bertdemo.cli_jobs import add_commands as add_job_commands
from bertdemo.cli_jobs import cmd_jobs
from bertdemo.cli_labeling import add_commands as add_labeling_commands
from bertdemo.cli_labeling import cmd_al_curve, cmd_project
from bertdemo.cli_lesson import add_commands as add_lesson_commands
from bertdemo.cli_lesson import cmd_lesson
from bertdemo.cli_pretrain import add_commands as add_pretrain_commands
from bertdemo.cli_pretrain import cmd_pretrain

EXPLAIN_METHODS = ("integrated_gradients", "grad_x_input", "occlusion", "attention_cls", "rollout_cls")  # short names the README and the benchmarks use


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bertdemo", description="Fine-tune and explain BERT classifiers.")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="also load pickled pytorch_model.bin weights (they can run code: trusted files only)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="raise or lower a limit of bertdemo.limits.Limits, e.g. --limit max_file_mb=500")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="fine-tune a classifier on a labeled CSV/TSV")
    t.add_argument("data", help="CSV/TSV with a text and a label column (or label sets: --label-sep, --label-cols)")
    t.add_argument("--text-col", help="text column (found by name if omitted)")
    t.add_argument("--label-col", help="label column (found by name if omitted)")
    add_label_flags(t)
    t.add_argument("--validation", help="a separate validation file (else a stratified split is held out)")
    t.add_argument("--test", help="a held-out labeled file scored once after training")
    add_config_flags(t)
    t.add_argument("--workspace", help="where runs are saved (default ./workspace or $BERTDEMO_WORKSPACE)")
    t.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    p = sub.add_parser("predict", help="class probabilities for texts")
    p.add_argument("run", help="a run folder or run name")
    p.add_argument("texts", nargs="+")
    p.add_argument("--workspace")
    p.add_argument("--json", action="store_true")

    e = sub.add_parser("explain", help="every explanation of a text, with its faithfulness (deletion test)")
    e.add_argument("run")
    e.add_argument("text", nargs="?", help="the text (or --file)")
    e.add_argument("--file", help="a CSV/TSV with a text column: one explanation per row")
    e.add_argument("--methods", default=",".join(EXPLAIN_METHODS),
                   help=f"comma-separated subset of {', '.join(EXPLAIN_METHODS)}")
    e.add_argument("--operator", default="deletion", choices=["deletion", "mask"],
                   help="how the faithfulness test removes word-pieces")
    e.add_argument("--target", "--label", dest="target",
                   help="the class (multi-label: the label) to explain (default: the most probable one)")
    e.add_argument("--workspace")
    e.add_argument("--json", action="store_true", help="one JSON object per text (JSON lines)")

    v = sub.add_parser("evaluate", help="score a run on a labeled test file (multi-label runs: label sets)")
    v.add_argument("run", help="a run folder or run name")
    v.add_argument("test", help="a labeled CSV/TSV the run did not train on")
    v.add_argument("--text-col", help="text column (found by name if omitted)")
    v.add_argument("--label-col", help="label column (found by name if omitted)")
    add_label_flags(v)
    v.add_argument("--workspace")
    v.add_argument("--json", action="store_true", help="print the metrics as one JSON object")

    r = sub.add_parser("runs", help="list saved runs")
    r.add_argument("--workspace")
    r.add_argument("--json", action="store_true")
    add_labeling_commands(sub, add_config_flags)
    add_job_commands(sub)
    add_pretrain_commands(sub)
    add_lesson_commands(sub)
    for command in _leaf_parsers(sub):  # the top-level flags also work after the command, where people type them
        command.add_argument("--allow-pickle", action="store_true", dest="allow_pickle_after", help=argparse.SUPPRESS)
        command.add_argument("--limit", action="append", default=[], dest="limit_after", metavar="NAME=VALUE",
                             help="as before the command: raise or lower a limit, e.g. --limit max_file_mb=500")
    return parser


def _leaf_parsers(sub) -> list[argparse.ArgumentParser]:
    leaves = []
    for command in dict.fromkeys(sub.choices.values()):
        nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        leaves.extend(_leaf_parsers(nested[0]) if nested else [command])
    return leaves


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    commands = {"train": cmd_train, "predict": cmd_predict, "explain": cmd_explain, "evaluate": cmd_evaluate,
                "runs": cmd_runs,
                "project": cmd_project, "al-curve": cmd_al_curve, "jobs": cmd_jobs,
                "pretrain": cmd_pretrain, "lesson": cmd_lesson}
    try:
        from bertdemo.limits import apply_overrides

        apply_overrides([*args.limit, *getattr(args, "limit_after", [])])
        if args.allow_pickle or getattr(args, "allow_pickle_after", False):
            os.environ["BERTDEMO_ALLOW_PICKLE"] = "1"
        _quiet_transformers()
        return commands[args.command](args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # unreadable file, full disk, no permission: still one line, no traceback
        fix = ("Free some disk space, or use another --workspace; nothing half-written was left" if err.errno == 28
               else "Check the path and its permissions")
        print(f"error: {err.strerror or err} ({err.filename or 'file'}). {fix}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no half-written run was left behind", file=sys.stderr)
        return 130


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def cmd_train(args) -> int:
    from bertdemo.data import load_data, measure_tokens
    from bertdemo.models import report_tokenizer

    from bertdemo.limits import Limits

    config = config_from_args(args)
    Limits.current().check_training(config)
    # Under `accelerate launch`/torchrun only rank 0 reports. Read from the environment: creating accelerate's
    # state here, before train() makes its Accelerator, would fix it to one process on CPUs.
    main_process = int(os.environ.get("RANK", "0")) == 0
    out = (sys.stderr if args.json else sys.stdout) if main_process else open(os.devnull, "w")
    # every check on the file before any model is loaded
    data = load_data(args.data, config, text_col=args.text_col, label_col=args.label_col,
                     validation=args.validation, **label_args(args))
    tokenizer = report_tokenizer(config.model)  # None for "scratch": it learns its vocabulary while training
    if tokenizer is not None:
        data = measure_tokens(data, tokenizer)
    report = data.report
    for line in data_lines(data):
        print(line, file=out)
    done = train_with_progress(config, data, args.workspace, out, main_process, owner=cli_owner())
    if done is None:
        print("error: training was cancelled", file=sys.stderr)
        return 1
    if done.run_dir is None:
        return 0  # a non-main process under `accelerate launch`: the main process saves and reports
    test_metrics = _test_metrics(done.run_dir, args) if args.test else None
    _print_metrics(done.metrics, test_metrics, out)
    print(f"saved run: {done.run_dir}  ({done.train_seconds:.1f} s, {done.examples_per_s:.1f} training examples/s)",
          file=out)
    if args.json:
        extra = ("micro_f1", "samples_f1", "hamming_loss", "thresholds") if data.multi_label else ()
        print(json.dumps({
            "run": done.run_dir, **({"multi_label": True} if data.multi_label else {}),
            "validation": {k: done.metrics[k] for k in ("accuracy", "macro_f1", "loss", *extra)},
            "test": None if test_metrics is None else {k: test_metrics[k] for k in ("accuracy", "macro_f1", *extra)},
            "train_seconds": round(done.train_seconds, 3), "train_examples_per_s": round(done.examples_per_s, 3),
            "train_rows": report.train_rows, "validation_rows": report.validation_rows,
            "real_tokens": done.real_tokens, "padded_tokens": done.padded_tokens,
            "stopped_early": done.stopped_early, "config": config.to_dict(),
        }))
    return 0


def _test_metrics(run_dir: str, args) -> dict:
    from bertdemo.inference.evaluate import evaluate_file
    from bertdemo.inference.predict import Predictor

    given = {k: v for k, v in label_args(args, kind=False).items() if v is not None}  # how a multi-label file writes its sets
    return evaluate_file(Predictor.from_run(run_dir), args.test, text_col=args.text_col, label_col=args.label_col,
                         **given)


def _print_metrics(validation: dict, test: dict | None, out) -> None:
    sets = [("validation", validation)] + ([("test", test)] if test else [])
    first = "label" if validation.get("multi_label") else "class"
    print(f"\n{first:<24}" + "".join(f"{name + ' P/R/F1':>26}" for name, _ in sets), file=out)
    for label in validation["labels"]:
        cells = "".join(f"{m['per_class'][label]['precision']:>8.3f}{m['per_class'][label]['recall']:>9.3f}"
                        f"{m['per_class'][label]['f1']:>9.3f}" for _, m in sets)
        print(f"{label[:24]:<24}{cells}", file=out)
    for name, m in sets:
        if m.get("multi_label"):  # accuracy is the subset accuracy: every label of a text right
            print(f"{name}: micro-F1 {m['micro_f1']:.4f}  macro-F1 {m['macro_f1']:.4f}  samples-F1 "
                  f"{m['samples_f1']:.4f}  subset accuracy {m['accuracy']:.4f}  Hamming loss {m['hamming_loss']:.4f}  "
                  f"({m['count']} rows)", file=out)
        else:
            print(f"{name}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  ({m['count']} rows)", file=out)
    if validation.get("multi_label"):
        print("thresholds tuned on validation: " + ", ".join(f"{label} {t:.3f}" for label, t in
                                                             validation["thresholds"].items()), file=out)


def cmd_predict(args) -> int:
    from bertdemo.inference.predict import Predictor
    from bertdemo.runs import find_run

    predictor = Predictor.from_run(find_run(args.run, args.workspace))
    results = predictor.predict_batch(args.texts)
    if predictor.multi_label:
        return _print_label_sets(predictor, args.texts, results, as_json=args.json)
    if args.json:
        print(json.dumps([{"text": text, "label": max(probs, key=probs.get), "probabilities": probs}
                          for text, probs in zip(args.texts, results)], ensure_ascii=False))
        return 0
    for text, probs in zip(args.texts, results):
        best = max(probs, key=probs.get)
        rest = "  ".join(f"{label} {p:.3f}" for label, p in sorted(probs.items(), key=lambda kv: -kv[1]))
        print(f"{best}\t{text}\n    {rest}")
    return 0


def _print_label_sets(predictor, texts: list[str], results: list[dict[str, float]], *, as_json: bool) -> int:
    """A multi-label run's predictions: each text's label set (every label at or above its threshold, possibly
    none) and each label's probability against its threshold."""
    import numpy as np

    chosen = predictor.decide(np.array([[probs[label] for label in predictor.labels] for probs in results]))
    thresholds = dict(zip(predictor.labels, predictor.thresholds.tolist()))
    if as_json:
        print(json.dumps([{"text": text, "labels": list(labels), "probabilities": probs, "thresholds": thresholds}
                          for text, labels, probs in zip(texts, chosen, results)], ensure_ascii=False))
        return 0
    for text, labels, probs in zip(texts, chosen, results):
        print(f"{', '.join(labels) or '(no label)'}\t{text}")
        for label, p in sorted(probs.items(), key=lambda kv: -kv[1]):
            mark = "✓" if label in labels else " "
            print(f"    {mark} {label:<24} {p:.3f}  (threshold {thresholds[label]:.3f})")
    return 0


def cmd_evaluate(args) -> int:
    from bertdemo.inference.evaluate import evaluate_file
    from bertdemo.inference.predict import Predictor
    from bertdemo.runs import find_run

    predictor = Predictor.from_run(find_run(args.run, args.workspace))
    metrics = evaluate_file(predictor, args.test, text_col=args.text_col, label_col=args.label_col,
                            **label_args(args, kind=False))
    if args.json:
        print(json.dumps({"run": str(predictor.source), "test": args.test, **metrics}, ensure_ascii=False))
        return 0
    if not metrics.get("multi_label"):
        _print_metrics(metrics, None, sys.stdout)
        return 0
    fixed = metrics["at_0_5"]
    print(f"{'label':<24}{'precision':>10}{'recall':>9}{'F1':>9}{'support':>9}{'threshold':>11}")
    for label in metrics["labels"]:
        m = metrics["per_class"][label]
        print(f"{label[:24]:<24}{m['precision']:>10.3f}{m['recall']:>9.3f}{m['f1']:>9.3f}{m['support']:>9d}"
              f"{metrics['thresholds'][label]:>11.3f}")
    print(f"\n{'':<20}{'thresholds':>12}{'at 0.5':>10}")
    for key, name in (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("samples_f1", "samples-F1"),
                      ("accuracy", "subset accuracy"), ("hamming_loss", "Hamming loss")):
        print(f"{name:<20}{metrics[key]:>12.4f}{fixed[key]:>10.4f}")
    print(f"({metrics['count']} rows)")
    return 0


def cmd_explain(args) -> int:
    import numpy as np

    from bertdemo.data import guess_text_column, read_table
    from bertdemo.explain.methods import TITLES, explain
    from bertdemo.inference.predict import Predictor
    from bertdemo.runs import find_run

    if (args.text is None) == (args.file is None):
        raise ValueError("Give one text, or --file TEXTS.csv (a CSV/TSV with a text column), not both.")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.file:
        table = read_table(args.file)
        texts = table[guess_text_column(table)].fillna("").astype(str).tolist()
    else:
        texts = [args.text]
    predictor = Predictor.from_run(find_run(args.run, args.workspace))
    for text in texts:
        result = explain(predictor, text, target=args.target, methods=methods, operator=args.operator)
        if args.json:
            record = result.to_dict()
            if "integrated_gradients" in result.scores:  # the shape earlier versions printed
                record["attributions"] = record["methods"]["integrated_gradients"]["scores"]
            print(json.dumps({"text": text, **record}, ensure_ascii=False), flush=True)
            continue
        print(f"\n{text}\nprobabilities: " + "  ".join(f"{k} {v:.3f}" for k, v in result.probabilities.items()))
        if predictor.multi_label:
            chosen = predictor.decide(np.array([[result.probabilities[k] for k in predictor.labels]]))[0]
            print(f"predicted labels: {', '.join(chosen) or '(no label)'}; each probability is the label's own "
                  "sigmoid, and the deletion test scores the explained label's")
        print(f"explaining {result.target!r}; deletion test with {result.operator} (comprehensiveness: higher is "
              f"better; sufficiency: lower is better; random in brackets)")
        for name, f in sorted(result.faithfulness.items(), key=lambda kv: -kv[1].comprehensiveness):
            flag = "" if f.beats_random else "  ← no better than random"
            print(f"  {TITLES[name]:<32} comp {f.comprehensiveness:+.3f} ({f.random_comprehensiveness:+.3f})  "
                  f"suff {f.sufficiency:+.3f} ({f.random_sufficiency:+.3f}){flag}")
        shown = result.scores[result.shown_first]
        print(f"shown first: {TITLES[result.shown_first]}")
        for token, score in zip(result.tokens, shown):
            print(f"  {token:<16}{score:+.4f}")
    return 0


def cmd_runs(args) -> int:
    from bertdemo.runs import list_runs

    found = list_runs(args.workspace)
    if args.json:
        print(json.dumps([r.to_dict() for r in found], ensure_ascii=False))
        return 0
    if not found:
        print(f"no saved runs in {Path(args.workspace or 'workspace')}. Train one: python -m bertdemo train data/news_topics_en.csv")
        return 0
    for run in found:
        acc = run.metrics.get("accuracy")
        shown = f"{acc:.3f}" if isinstance(acc, (int, float)) else "n/a"
        print(f"{run.name:<56} {run.created:<26} {run.base_model:<12} {run.data_source:<24} "
              f"acc {shown}  {run.status}  {run.path}")
    return 0
