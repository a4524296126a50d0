"""What the command-line modules share: ``train``'s flags generated from ``TrainConfig``, the config they build,
who owns what the command line makes, and training with a progress bar. (Its own module, so that ``cli`` and
``cli_labeling`` both import it and not each other.)"""
from __future__ import annotations

import argparse
import dataclasses

from bertdemo.config import BATCHINGS, CLASS_WEIGHTS, PRECISIONS, SCHEDULERS, TrainConfig, field_comments, setting_names

FLAG_ALIASES = {"learning_rate": ("--lr",)}
CHOICES = {"precision": PRECISIONS, "batching": BATCHINGS, "scheduler": SCHEDULERS, "class_weights": CLASS_WEIGHTS}


def parse_dropout(value: str) -> float | None:
    """A dropout rate, or "model"/"none" for the model's own rate."""
    if value.strip().lower() in ("model", "none"):
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a rate such as 0.1, or "model" (got {value!r})') from None


PARSERS = {"dropout": parse_dropout}  # fields whose values a plain type() cannot parse


GIVEN = "_given_settings"  # the namespace attribute where the flags typed are recorded


class _Store(argparse.Action):
    """Store the value and remember that the flag was typed (a value equal to the default counts as chosen)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _record(namespace, self.dest)


class _BooleanOptional(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _record(namespace, self.dest)


class _StoreFalse(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, False)
        _record(namespace, self.dest)


def _record(namespace: argparse.Namespace, dest: str) -> None:
    setattr(namespace, GIVEN, getattr(namespace, GIVEN, frozenset()) | {dest})


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` setting (``--max-length`` for ``max_length``), defaults and help from the
    class; the flags typed are recorded, so that the small-data plan leaves their values alone."""
    helps = field_comments()
    for field in dataclasses.fields(TrainConfig):
        if field.name not in setting_names():
            continue
        names = ["--" + field.name.replace("_", "-"), *FLAG_ALIASES.get(field.name, ())]
        help_text = f"{helps.get(field.name, '')} (default: %(default)s)".strip()
        kwargs: dict = {"dest": field.name, "default": field.default, "help": help_text, "action": _Store}
        if isinstance(field.default, bool):
            kwargs["action"] = _BooleanOptional
        else:
            kwargs["type"] = PARSERS.get(field.name, type(field.default))
            if field.name in CHOICES:
                kwargs["choices"] = CHOICES[field.name]
        parser.add_argument(*names, **kwargs)
    parser.add_argument("--train-embeddings", dest="freeze_word_embeddings", action=_StoreFalse,
                        help="the same as --no-freeze-word-embeddings")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{name: getattr(args, name) for name in setting_names()},
                       given=tuple(getattr(args, GIVEN, ())))


def cli_owner() -> str:
    """Who owns what the command line makes: ``cli:`` and the system user."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in a bare container
        return "cli"


def train_with_progress(config: TrainConfig, data, workspace, out, main_process: bool, owner: str = "",
                        notes: tuple[str, ...] = ()):
    """Train with a progress bar on ``out``, the plan's notes first; the ``DoneEvent``, or None when training was
    cancelled."""
    from tqdm import tqdm

    from bertdemo.events import DoneEvent, EvalEvent, StartEvent, StepEvent
    from bertdemo.training import train

    bar, done = None, None
    for event in train(config, data, workspace=workspace, owner=owner, notes=notes):
        if isinstance(event, StartEvent):
            print(f"training {event.model} on {event.device} ({event.precision}), {event.total_steps} steps", file=out)
            for note in event.notes:
                print(f"  note: {note}", file=out)
            bar = tqdm(total=event.total_steps, file=out, unit="step", dynamic_ncols=True, mininterval=1.0,
                       disable=not main_process)
        elif isinstance(event, StepEvent):
            bar.update(1)
            bar.set_postfix(loss=f"{event.loss:.3f}", ex_s=f"{event.examples_per_s:.0f}", refresh=False)
        elif isinstance(event, EvalEvent):
            name = "subset accuracy" if getattr(data, "multi_label", False) else "accuracy"  # every label right
            bar.write(f"  eval @ epoch {event.epoch:.2f}: val_loss {event.val_loss:.4f}  {name} {event.accuracy:.4f}"
                      f"  macro-F1 {event.macro_f1:.4f}{'  (best)' if event.is_best else ''}", file=out)
        elif isinstance(event, DoneEvent):
            done = event
    if bar is not None:
        bar.close()
    return done


def add_label_flags(parser: argparse.ArgumentParser) -> None:
    """``--label-sep`` and ``--label-cols``: how a multi-label file writes its label sets (bertdemo.data.layout)."""
    parser.add_argument("--label-sep", metavar="SEP",
                        help='multi-label cells: the separator between the labels of a text ("billing|bug"); cells '
                             'holding "|" are found without it. "none" in a cell says no label applies')
    parser.add_argument("--label-cols", metavar="A,B,C",
                        help="multi-label: one 0/1 column per label, comma-separated (found by themselves when the "
                             "file has no label column)")
    parser.add_argument("--labels-per-text", choices=("auto", "one", "several"), default="auto",
                        help='"one": one class per cell, even a class name holding "|"; "several": label sets even '
                             'where no cell holds the separator yet; "auto" (default): the file says')


def label_args(args: argparse.Namespace, *, kind: bool = True) -> dict:
    """``load_data``'s ``label_sep``/``label_cols`` (and ``multi_label`` when ``kind``) from ``add_label_flags``."""
    from bertdemo.data.label_choice import label_cols_of, multi_label_of

    found = {"label_sep": args.label_sep, "label_cols": list(label_cols_of(args.label_cols)) or None}
    if kind:  # not where the run decides (a test file is read the way the run was trained)
        found["multi_label"] = multi_label_of(getattr(args, "labels_per_text", "auto"))
    return found


def data_lines(data) -> list[str]:
    """The data report as the commands print it: rows and classes; for a multi-label file how its labels are
    written, texts per label, labels per text and the labels too rare to learn."""
    from bertdemo.data.label_choice import describe_label_sets

    report = data.report
    kind = f"multi-label, {len(data.labels)} labels" if data.multi_label else f"{len(data.labels)} classes"
    lines = [f"data: {report.rows_kept} rows kept of {report.rows_total} ({report.train_rows} train, "
             f"{report.validation_rows} validation), {kind}: {', '.join(data.labels)}"]
    if data.multi_label:
        cols = report.label_format.get("label_cols") or []
        lines += [f"  {describe_label_sets(report)}",
                  "  labels from " + (f"0/1 columns {', '.join(cols)}" if cols else
                                      f"column {report.label_col!r}, separator {report.label_format.get('sep')!r}"),
                  "  texts per label: " + ", ".join(f"{k} {v}" for k, v in report.class_counts.items()),
                  "  labels per text: " + ", ".join(f"{k}: {v} texts" for k, v in
                                                    sorted(report.labels_per_text.items(), key=lambda kv: int(kv[0]))),
                  "  too rare to learn: " + (", ".join(report.rare_labels) or "none")]
    return lines + [f"warning: {warning}" for warning in report.warnings]
