"""Running a queue strategy: one home for what the Label tab, the CLI and the suspicious-label job all do — pick
the ranking for a strategy name, give it the model it needs (or say why it cannot run), and return the queue.

Which model suggests for a project is decided here too: the project's own latest run (``retrain.project_runs``
records the runs trained on its labels), never merely the newest run of the workspace, which may have been trained
on another file. Without one, a project starts in import order (``default_strategy``): the uncertainty queues come
once the project has a model.

``rank_queue`` is a generator: ``FoldProgress`` events while suspicious-label scoring trains its folds, then the
list of ``QueueEntry``, best first. Every other strategy yields its list at once.

A multi-label project ranks with ``nearest_threshold`` (``labeling.queues``), and its suspicious queue has one
entry per (text, label) pair (``pair_label``, ``pair_kind``; ``suggested`` is the set with that pair fixed).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from bertdemo.data import sort_labels
from bertdemo.inference.predict import Predictor, get_predictor
import bertdemo.labeling.queues as queues
from bertdemo.labeling.labelsets import decode_set, encode_set
from bertdemo.labeling.queues import QueueEntry
from bertdemo.labeling.retrain import project_runs
from bertdemo.labeling.setmetrics import set_probabilities
from bertdemo.labeling.store import LabelStore
from bertdemo.labeling.suspicious import FoldProgress, SuspectPair, find_suspects, rank_suspect_pairs, rank_suspects
from bertdemo.runs import RunInfo, list_runs, load_run_info
from bertdemo.workspace import Workspace

NO_MODEL_NOTE = ("No model for this project yet: the in-order and random queues work now; the uncertainty queues "
                 "come once the project has a run (Retrain on its labels).")


def suggesting_runs(store: LabelStore, project: str, workspace: Workspace | str | Path | None) -> list[RunInfo]:
    """The saved runs that may suggest labels for ``project``, best first: its own runs (trained on its labels),
    newest first, then other runs whose labels all belong to the project's label set, newest first. Damaged runs,
    deleted ones and runs trained on other labels are left out."""
    saved = {r.name: r for r in list_runs(workspace) if r.status != "damaged"}  # newest first
    own = [saved[r["run"]] for r in reversed(project_runs(store, project)) if r["run"] in saved]
    ours = set(store.project(project).labels)
    mine = {r.name for r in own}
    others = [r for r in saved.values() if r.name not in mine and ours and set(r.labels) <= ours]
    return own + others


def project_model(store: LabelStore, project: str, workspace: Workspace | str | Path | None) -> Path | None:
    """The run that suggests labels for ``project`` unless someone picks another: its latest saved run, or None
    when it has none yet (a run trained on another project is never chosen for it)."""
    saved = {r.name: r for r in list_runs(workspace) if r.status != "damaged"}
    own = [r["run"] for r in project_runs(store, project) if r["run"] in saved]
    return Path(saved[own[-1]].path) if own else None


def default_strategy(run: str | Path | None) -> str:
    """The queue a project starts with: the smallest margin once there is a model (a multi-label model: the label
    nearest its threshold, ``nearest_threshold``), else import order."""
    if not run:
        return "in_order"
    try:
        multi = load_run_info(run).multi_label
    except ValueError:  # a damaged run.json: ranking it will say so
        multi = False
    return queues.LABEL_UNCERTAINTY if multi else "margin"


def rank_queue(store: LabelStore, project: str, strategy: str, *, run: str | Path | None = None, diversity: int = 0,
               top: int | None = None, should_stop: Callable[[], bool] = lambda: False
               ) -> Iterator[FoldProgress | list[QueueEntry]]:
    """The ``strategy`` queue of ``project``, ranked with ``run``'s model where it needs one."""
    if strategy not in queues.STRATEGIES:
        raise ValueError(f"Unknown queue {strategy!r}; use one of {', '.join(queues.STRATEGIES)}.")
    predictor = get_predictor(run) if run else None
    if strategy in queues.NEEDS_MODEL:
        if predictor is None:
            raise ValueError(f"Ranking by {strategy} needs a model, and project {project!r} has none yet: train one on "
                             "its labels (Retrain), or pick a run for it. The in-order and random queues work "
                             "without one.")
        yield queues.uncertain_queue(store, project, predictor, strategy, diversity=diversity, top=top)
    elif strategy in queues.ORDERS:
        yield queues.ordered_queue(store, project, strategy, predictor=predictor, top=top)
    elif strategy == "misclassified":
        if run is None:
            raise ValueError("The misclassified queue shows the validation texts a run got wrong: load a run.")
        yield queues.misclassified_queue(store, project, str(run))
    else:
        yield from suspicious_queue(store, project, run=run, should_stop=should_stop)


def rerank(store: LabelStore, project: str, strategy: str, rest: Sequence[QueueEntry], *,
           run: str | Path | None, keep: QueueEntry | None = None, diversity: int = 0) -> list[QueueEntry]:
    """The queue to go on with once ``run`` suggests instead (a retrain ended, or another run was picked).
    ``rest``: what was left of the old queue; ``keep``: the entry on screen, which stays first, as the new model
    sees it. A plain order keeps its order with the new suggestions; an uncertainty or misclassified queue is
    ranked again; without a model the old order stays, without suggestions. Suspicious labels come from k-fold
    models, not from ``run``: that queue stays as it is."""
    if strategy == "suspicious":
        return list(rest)
    if run is None and strategy not in queues.ORDERS:
        entries = [dataclasses.replace(e, suggested=None, probabilities={}) for e in rest]
    else:
        entries = next(rank_queue(store, project, strategy, run=run, diversity=diversity))
    if keep is None:
        return entries
    first = queues.rescored(keep, get_predictor(run), strategy) if run else \
        dataclasses.replace(keep, suggested=None, probabilities={})
    return [first] + [e for e in entries if e.id != keep.id]


def suspicious_queue(store: LabelStore, project: str, *, run: str | Path | None = None,
                     should_stop: Callable[[], bool] = lambda: False) -> Iterator[FoldProgress | list[QueueEntry]]:
    """Labeled items, likeliest mislabeled first: from ``run``'s probabilities when that run never trained on this
    project's labels (they are out of sample for it), else from k-fold fine-tuning (minutes; progress events)."""
    items = store.items(project, labeled=True)
    texts, labels = [i.text for i in items], [i.label for i in items]
    if store.project(project).multi_label:
        labels = [decode_set(label) for label in labels]
    suspects = None
    if run is not None and load_run_info(run).provenance.get("project") != project:
        suspects = rank_over(get_predictor(run), texts, labels)
    else:
        for event in find_suspects(texts, labels, should_stop=should_stop):
            if isinstance(event, FoldProgress):
                yield event
            else:
                suspects = event
    if suspects is None:  # stopped before the last fold
        return
    if suspects and isinstance(suspects[0], SuspectPair):
        yield [QueueEntry(id=items[s.row].id, text=s.text, label=items[s.row].label, suggested=encode_set(s.suggested),
                          score=s.score, probabilities=s.probabilities, pair_label=s.label, pair_kind=s.kind)
               for s in suspects]
        return
    yield [QueueEntry(id=items[s.row].id, text=s.text, label=s.given, suggested=s.suggested, score=s.score,
                      probabilities=s.probabilities) for s in suspects]


def rank_over(predictor: Predictor, texts: list[str], labels: list) -> list:
    """Suspects ranked from a run that never saw these labels: ``Suspect`` rows, or for label sets (multi-label)
    ``SuspectPair`` pairs."""
    if labels and isinstance(labels[0], tuple):
        names = sort_labels({n for s in labels for n in s})
        return rank_suspect_pairs(texts, labels, set_probabilities(predictor, texts, names)[0], names)
    return rank_suspects(texts, labels, probabilities_over(predictor, texts, labels))


def probabilities_over(predictor: Predictor, texts: list[str], labels: list[str]) -> np.ndarray:
    """The predictor's probabilities in ``sort_labels(labels)`` class order (classes it lacks get 0)."""
    names = sort_labels(labels)
    probs = predictor.predict_proba(texts)
    out = np.zeros((len(texts), len(names)), dtype=np.float32)
    for j, label in enumerate(predictor.labels):
        if label in names:
            out[:, names.index(label)] = probs[:, j]
    return out
