"""Command line for labeling projects and the active-learning curve (``bertdemo.cli`` adds these commands):

    python -m bertdemo project import NAME FILE [--text-col C] [--label-col C] [--label-sep '|'] [--label-cols a,b]
                                                [--labels-per-text auto|one|several] [--labels a,b] [--json]
    python -m bertdemo project status NAME [--json]
    python -m bertdemo project label NAME ITEM_ID LABEL [--annotator A] [--expect CURRENT]
    python -m bertdemo project queue NAME [--strategy margin|entropy|least_confidence|nearest_threshold|random|
                                          in_order|suspicious] [--run RUN] [--top K] [--json]
    python -m bertdemo project export NAME OUT.csv [--provenance] [--unlabeled]
    python -m bertdemo project retrain NAME [train options] [--from-last-run | --from-base] [--json]
    python -m bertdemo al-curve TRAIN.csv --test TEST.csv --strategies random,margin --start 50 --step 50
                                --rounds 4 [--seeds 3] [--label-sep '|'] [--label-cols a,b] [--json]

Multi-label files (label cells such as ``billing|bug``, ``none`` when no label applies; or one 0/1 column per
label) make multi-label projects; ``--label-sep`` and ``--label-cols`` say how a file writes its sets, as for
``train`` (either makes the file multi-label), and ``--labels-per-text several`` makes a multi-label project of a
file whose cells hold one label each, or none at all yet (``--labels`` names the labels to start with). In a multi-label project ``label`` takes a set written the same way (``billing|bug``, ``none``), and
``export`` writes the format the project's file had.

With ``--json`` the last stdout line is one JSON value; progress goes to stderr. Imported labels are credited to
"import" in the history; ``label`` credits ``--annotator`` (default: the system user's name). ``queue`` ranks with
the project's latest run unless ``--run`` says otherwise, and without a strategy it serves the smallest margin once
the project has a run, import order before.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

QUEUE_STRATEGIES = ("margin", "entropy", "least_confidence", "nearest_threshold", "random", "in_order", "suspicious")


def add_commands(sub, add_config_flags) -> None:
    project = sub.add_parser("project", help="labeling projects: import, status, label, queue, export, retrain")
    commands = project.add_subparsers(dest="project_command", required=True)
    imp = _add_import(commands)
    status = commands.add_parser("status", help="items, labeled, per label and annotator, database integrity")
    status.add_argument("name")
    label = commands.add_parser("label", help="set one item's label (multi-label projects: a set, 'a|b' or 'none')")
    label.add_argument("name")
    label.add_argument("item_id", type=int)
    label.add_argument("label")
    label.add_argument("--annotator", help="your name in the history (default: the system user's)")
    label.add_argument("--expect", metavar="CURRENT", help="the label you saw the item with ('' for unlabeled): "
                       "if it has another one now, nothing is written")
    queue = commands.add_parser("queue", help="the items to label next, best first")
    queue.add_argument("name")
    queue.add_argument("--strategy", choices=QUEUE_STRATEGIES,
                       help="default: margin once the project has a run (multi-label: nearest_threshold, the label "
                            "nearest its threshold), in_order before")
    queue.add_argument("--run", help="the model that ranks (default: the project's latest run)")
    queue.add_argument("--top", type=int, default=20)
    queue.add_argument("--diversity", type=int, default=0, help="spread the first K picks over K clusters")
    export = commands.add_parser("export", help="the current labels as a training-ready CSV")
    export.add_argument("name")
    export.add_argument("out")
    export.add_argument("--provenance", action="store_true", help="also how, annotator, updated and split")
    export.add_argument("--unlabeled", action="store_true",
                        help="also the unlabeled items, with empty label cells (a re-import gives the same items)")
    retrain = commands.add_parser("retrain", help="train on the project's current labels")
    retrain.add_argument("name")
    start = retrain.add_mutually_exclusive_group()
    start.add_argument("--from-last-run", action="store_true",
                       help="continue the project's last run (the default when it can be continued: same base model "
                            "and classes); refused when it cannot")
    start.add_argument("--from-base", action="store_true",
                       help="start from the base model (--model), not from the project's last run")
    add_config_flags(retrain)
    for parser in (imp, status, label, queue, export, retrain):
        parser.add_argument("--workspace")
        parser.add_argument("--json", action="store_true")

    curve = sub.add_parser("al-curve", help="simulate the labeling loop on a fully labeled file")
    curve.add_argument("train_file")
    curve.add_argument("--test", required=True, help="a labeled file the curve is scored on")
    curve.add_argument("--strategies", default="random,margin",
                       help="comma-separated: random, margin, entropy, least_confidence, each also as NAME_diverse "
                            "(the top candidates spread over k-means clusters), nearest_threshold (multi-label)")
    curve.add_argument("--start", type=int, default=50)
    curve.add_argument("--step", type=int, default=50)
    curve.add_argument("--rounds", type=int, default=4)
    curve.add_argument("--seeds", type=int, default=1, help="repeat with seeds 0..N-1; the table gives means")
    curve.add_argument("--first-seed", type=int, default=0, help="seeds start here (more seeds in a second run)")
    curve.add_argument("--model", default="default")
    curve.add_argument("--cold", action="store_true",
                       help="train every round from the base model (default: from the last round's weights)")
    add_label_format_flags(curve)
    curve.add_argument("--json", action="store_true")


def _add_import(commands):
    """``project import`` and its flags; returns its parser."""
    imp = commands.add_parser("import", help="import a CSV/TSV (empty label cells: unlabeled); creates the project")
    imp.add_argument("name")
    imp.add_argument("file")
    imp.add_argument("--text-col")
    imp.add_argument("--label-col")
    add_label_format_flags(imp)
    imp.add_argument("--labels-per-text", choices=("auto", "one", "several"),
                     help="several: a multi-label project even where every cell holds one label or 'none', or the "
                          "file has no labels yet; one: one class per cell, whatever it holds (default: several "
                          "with --label-sep/--label-cols, else auto-detect)")
    imp.add_argument("--labels", type=_names, default=(), metavar="A,B,C",
                     help="labels the project takes besides those in the file (a new project's labels to start "
                          "with)")
    return imp


def add_label_format_flags(parser) -> None:
    """How a file writes label sets (multi-label files), next to --text-col/--label-col."""
    parser.add_argument("--label-sep", help="multi-label: the separator between the labels of one cell ('|' is found "
                                            "by itself); write 'none' where no label applies")
    parser.add_argument("--label-cols", type=_names, help="multi-label: one 0/1 column per label, comma-separated "
                                                          "(a,b,c)")


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def cmd_project(args) -> int:
    from bertdemo.labeling.store import LabelStore

    store = LabelStore.for_workspace(args.workspace)
    handler = {"import": _import, "status": _status, "label": _label, "queue": _queue, "export": _export,
               "retrain": _retrain}[args.project_command]
    return handler(store, args)


def _emit(args, value, text: str) -> int:
    print(json.dumps(value, ensure_ascii=False) if args.json else text)
    return 0


def _import(store, args) -> int:
    from bertdemo.labeling.transfer import import_file

    from bertdemo.cli_common import cli_owner

    # a separator or 0/1 columns given say the file is multi-label, as for train
    per_text = args.labels_per_text or ("several" if args.label_sep or args.label_cols else "auto")
    report = import_file(store, args.name, args.file, text_col=args.text_col, label_col=args.label_col,
                         owner=cli_owner(), label_sep=args.label_sep, label_cols=args.label_cols, per_text=per_text,
                         label_names=args.labels)
    conflicts = "".join(f"\n  conflict: item {c['item']} is {c['stored']!r}, the file says {c['file']!r}: "
                        f"{c['text'][:60]}" for c in report.conflicts)
    return _emit(args, report.__dict__, report.summary() + conflicts)


def _status(store, args) -> int:
    from bertdemo.labeling.store import project_status

    status = project_status(store, args.name)
    lines = [f"{status['project']}: {status['labeled']}/{status['items']} labeled; integrity {status['integrity']}"]
    lines += [f"  {label:<24}{n}" for label, n in status["per_label"].items()]
    return _emit(args, status, "\n".join(lines))


def _label(store, args) -> int:
    import shlex

    from bertdemo.cli import cli_owner
    from bertdemo.labeling.history import ANY, LabelChanged, set_label

    expected = ANY if args.expect is None else (args.expect.strip() or None)
    label = args.label
    info = store.project(args.name)
    if info.multi_label:  # a set as the project's file writes one: "billing|bug", "none"
        label = _cell_set(info, label, "LABEL")
        expected = expected if expected in (ANY, None) else _cell_set(info, expected, "--expect")
    try:
        step = set_label(store, args.name, args.item_id, label, annotator=args.annotator or _user(), session="cli",
                         owner=cli_owner(), expected=expected)
    except LabelChanged as refused:
        now = refused.changed[0].now
        if info.multi_label:  # sets as the user types them: "billing|bug", "none"
            now = None if now is None else _cell(info, now)
            expected = expected if expected is None else args.expect.strip()
        raise ValueError(f"Not saved: item {args.item_id} is now {'unlabeled' if now is None else f'labeled {now!r}'} "
                         f"(you expected {'no label' if expected is None else repr(expected)}). To replace it, run "
                         f"again with --expect {shlex.quote(now or '')}.") from refused
    item = store.item(args.name, args.item_id)
    shown = _cell(info, item.label) if info.multi_label else item.label
    return _emit(args, {"id": item.id, "label": shown, "step": step}, f"item {item.id}: {shown}")


def _cell_set(info, value: str, what: str) -> tuple[str, ...]:
    """A label set typed as a cell ("billing|bug", "none") with the project's separator."""
    from bertdemo.data.multilabel import LabelFormat, parse_cell

    sep = LabelFormat.from_dict(info.label_format).sep
    labels = parse_cell(value, sep)
    if labels is None:
        raise ValueError(f"{what} is empty: give the labels joined by {sep!r} (e.g. {sep.join(info.labels[:2])}), or "
                         "'none' when no label applies.")
    return labels


def _cell(info, stored: str | None) -> str:
    """A stored label as the project's file writes it ("billing|bug", "none", "" unlabeled)."""
    if not info.multi_label:
        return stored or ""
    from bertdemo.data.multilabel import LabelFormat, format_cell
    from bertdemo.labeling.labelsets import decode_set

    return format_cell(decode_set(stored), LabelFormat.from_dict(info.label_format).sep)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in a bare container
        return "cli"


def _queue(store, args) -> int:
    from tqdm import tqdm

    from bertdemo.labeling.ranking import NO_MODEL_NOTE, default_strategy, rank_queue
    from bertdemo.labeling.suspicious import FoldProgress

    run = _run_for(store, args)
    if args.strategy is None:
        args.strategy = default_strategy(run)
        if run is None:
            print(f"note: {NO_MODEL_NOTE} Serving import order.", file=sys.stderr)
    if run is not None and args.strategy == "suspicious" and _trained_on(run, args.name):
        print(f"note: {run.name} trained on these labels, so its scores are in-sample; computing out-of-sample "
              "probabilities instead", file=sys.stderr)
        run = None
    if run is None and args.strategy in ("margin", "entropy", "least_confidence", "nearest_threshold"):
        raise ValueError(f"Ranking by {args.strategy} needs a model, and project {args.name!r} has no run yet: pass "
                         f"--run RUN, or train one on its labels first (python -m bertdemo project retrain "
                         f"{args.name}). The in_order and random queues work without one.")
    bar, entries = None, []
    for event in rank_queue(store, args.name, args.strategy, run=run, diversity=args.diversity, top=args.top):
        if isinstance(event, FoldProgress):
            bar = bar or tqdm(total=100, unit="%", file=sys.stderr)
            bar.update(round(100 * event.fraction) - bar.n)
            bar.set_description_str(event.line(), refresh=True)
        else:
            entries = event
    if bar is not None:
        bar.close()
    info = store.project(args.name)
    rows = [{"id": e.id, "text": e.text, "label": e.label, "suggested": e.suggested, "score": round(e.score, 6)}
            for e in entries[: args.top]]
    if info.multi_label:  # sets as cells; a suspicious pair says which label and why
        for row, e in zip(rows, entries):
            row.update(label=_cell(info, e.label), suggested=None if e.suggested is None else _cell(info, e.suggested))
            if e.pair_label is not None:
                row.update(pair_label=e.pair_label, pair_kind=e.pair_kind)
    text = "\n".join(f"{r['id']:>7}  {r['score']:.3f}  {str(r['label']):<12} → {str(r['suggested']):<12} "
                     f"{r['text'][:70]}" for r in rows)
    return _emit(args, rows, text or "the queue is empty")


def _run_for(store, args):
    """``--run``, else the project's latest saved run (suspicious labels: only ``--run``), else None."""
    from bertdemo.labeling.ranking import project_model
    from bertdemo.runs import find_run

    if args.run:
        return find_run(args.run, args.workspace)
    return project_model(store, args.name, args.workspace) if args.strategy != "suspicious" else None


def _trained_on(run, project: str) -> bool:
    from bertdemo.runs import load_run_info

    return load_run_info(run).provenance.get("project") == project


def _export(store, args) -> int:
    from bertdemo.labeling.transfer import export_csv

    path = export_csv(store, args.name, args.out, provenance=args.provenance, unlabeled=args.unlabeled)
    info = store.project(args.name)
    rows = info.items if args.unlabeled else info.labeled
    return _emit(args, {"path": str(path), "rows": rows},
                 f"wrote {rows} {'' if args.unlabeled else 'labeled '}rows to {path}")


def _saved(run: str, workspace) -> Path | None:
    """The folder of a run the project recorded, or None when it has been deleted since."""
    from bertdemo.runs import find_run

    try:
        return find_run(run, workspace)
    except ValueError:
        return None


def _retrain(store, args) -> int:
    from bertdemo.cli_common import cli_owner, config_from_args, train_with_progress
    from bertdemo.labeling.history import changes_since
    from bertdemo.labeling.retrain import compare, project_data, project_runs, record_run
    from bertdemo.labeling.rounds import plan_round

    config = config_from_args(args)
    previous = project_runs(store, args.name)
    before = _saved(previous[-1]["run"], args.workspace) if previous else None
    if args.from_last_run and before is None:
        raise ValueError(f"Project {args.name!r} has no earlier run to start from; retrain without --from-last-run.")
    data = project_data(store, args.name, config)
    plan = plan_round(config, data.labels, before, warm=not args.from_base, multi_label=data.multi_label)
    if args.from_last_run and plan.warm_from is None:
        raise ValueError(f"Cannot continue project {args.name!r}'s last run: {plan.why_cold}. Retrain without "
                         "--from-last-run to start from the base model.")
    data = plan.with_lineage(data)
    out = sys.stderr if args.json else sys.stdout
    print(f"{args.name}: {len(data.train)} training items, {len(data.validation)} frozen validation items", file=out)
    done = train_with_progress(plan.config, data, args.workspace, out, True, owner=cli_owner(), notes=plan.notes)
    if done is None or done.run_dir is None:
        raise ValueError("Training ended without a run.")
    record_run(store, args.name, Path(done.run_dir).name, data.provenance["snapshot"])
    headline = ("accuracy", "macro_f1") + (("micro_f1",) if data.multi_label else ())
    result = {"run": done.run_dir, "validation": {k: done.metrics[k] for k in headline},
              "compare": compare(store, args.name, before, done.run_dir),
              "changes_since_last_run": changes_since(store, args.name, previous[-1]["snapshot"]) if previous else None,
              "snapshot": data.provenance["snapshot"]}
    after, earlier = result["compare"]["after"], result["compare"]["before"]
    text = (f"saved run: {done.run_dir}\nfrozen validation ({result['compare']['rows']} items): accuracy "
            f"{after['accuracy']:.3f}, macro-F1 {after['macro_f1']:.3f}"
            + (f" (before: {earlier['accuracy']:.3f}, {earlier['macro_f1']:.3f})" if earlier else "")
            + (f"\nmicro-F1 {after['micro_f1']:.3f}" + (f" (before: {earlier['micro_f1']:.3f})" if earlier else "")
               + "; accuracy is subset accuracy (every label of a text right)" if data.multi_label else ""))
    return _emit(args, result, text)


def cmd_al_curve(args) -> int:
    from bertdemo.config import TrainConfig
    from bertdemo.labeling.simulate import CURVE_CONFIG, RoundProgress, al_curve, curve_table, labeled_rows

    fmt = dict(label_sep=args.label_sep, label_cols=args.label_cols)
    train_texts, train_labels = labeled_rows(args.train_file, **fmt)
    test_texts, test_labels = labeled_rows(args.test, **fmt)
    points = []
    config = TrainConfig(model=args.model, **CURVE_CONFIG)
    out = sys.stderr if args.json else sys.stdout
    shown = None
    for event in al_curve(train_texts, train_labels, test_texts, test_labels,
                          strategies=[s.strip() for s in args.strategies.split(",") if s.strip()], start=args.start,
                          step=args.step, rounds=args.rounds,
                          seeds=range(args.first_seed, args.first_seed + args.seeds), config=config,
                          warm=not args.cold):
        if isinstance(event, RoundProgress):
            where = (event.seed, event.strategy, event.round, event.phase)
            if where != shown:  # a line when the simulation moves on, not one every few steps
                print(f"  {event.line()}", file=out, flush=True)
                shown = where
            continue
        points.append(event)
        micro = "" if event.micro_f1 is None else f"micro-F1 {event.micro_f1:.3f} subset "
        print(f"seed {event.seed} {event.strategy:<16} {event.labels:>5} labels: {micro}accuracy {event.accuracy:.3f} "
              f"macro-F1 {event.macro_f1:.3f} ({event.seconds:.0f} s)", file=out, flush=True)
    table = curve_table(points)
    return _emit(args, table, json.dumps(table))
