"""Running a queue strategy: one home for what the Label tab, the CLI and the suspicious-label job all do — pick
the ranking for a strategy name, give it the model it needs (or say why it cannot run), and return the queue.

``rank_queue`` is a generator: ``FoldProgress`` events while suspicious-label scoring trains its folds, then the
list of ``QueueEntry``, best first. Every other strategy yields its list at once.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bertdemo.data import sort_labels
from bertdemo.inference.predict import Predictor, get_predictor
import bertdemo.labeling.queues as queues
from bertdemo.labeling.queues import QueueEntry
from bertdemo.labeling.store import LabelStore
from bertdemo.labeling.suspicious import FoldProgress, find_suspects, rank_suspects
from bertdemo.runs import load_run_info


def rank_queue(store: LabelStore, project: str, strategy: str, *, run: str | Path | None = None, diversity: int = 0,
               top: int | None = None, should_stop: Callable[[], bool] = lambda: False
               ) -> Iterator[FoldProgress | list[QueueEntry]]:
    """The ``strategy`` queue of ``project``, ranked with ``run``'s model where it needs one."""
    if strategy not in queues.STRATEGIES:
        raise ValueError(f"Unknown queue {strategy!r}; use one of {', '.join(queues.STRATEGIES)}.")
    predictor = get_predictor(run) if run else None
    if strategy in queues.UNCERTAINTY:
        if predictor is None:
            raise ValueError(f"Ranking by {strategy} needs a model: train one on the project's labels (Retrain), or "
                             "load a run. The random and in-order queues work without one.")
        yield queues.uncertain_queue(store, project, predictor, strategy, diversity=diversity, top=top)
    elif strategy in queues.ORDERS:
        yield queues.ordered_queue(store, project, strategy, predictor=predictor, top=top)
    elif strategy == "misclassified":
        if run is None:
            raise ValueError("The misclassified queue shows the validation texts a run got wrong: load a run.")
        yield queues.misclassified_queue(store, project, str(run))
    else:
        yield from suspicious_queue(store, project, run=run, should_stop=should_stop)


def suspicious_queue(store: LabelStore, project: str, *, run: str | Path | None = None,
                     should_stop: Callable[[], bool] = lambda: False) -> Iterator[FoldProgress | list[QueueEntry]]:
    """Labeled items, likeliest mislabeled first: from ``run``'s probabilities when that run never trained on this
    project's labels (they are out of sample for it), else from k-fold fine-tuning (minutes; progress events)."""
    items = store.items(project, labeled=True)
    texts, labels = [i.text for i in items], [i.label for i in items]
    suspects = None
    if run is not None and load_run_info(run).provenance.get("project") != project:
        suspects = rank_suspects(texts, labels, probabilities_over(get_predictor(run), texts, labels))
    else:
        for event in find_suspects(texts, labels, should_stop=should_stop):
            if isinstance(event, FoldProgress):
                yield event
            else:
                suspects = event
    if suspects is None:  # stopped before the last fold
        return
    yield [QueueEntry(id=items[s.row].id, text=s.text, label=s.given, suggested=s.suggested, score=s.score,
                      probabilities=s.probabilities) for s in suspects]


def probabilities_over(predictor: Predictor, texts: list[str], labels: list[str]) -> np.ndarray:
    """The predictor's probabilities in ``sort_labels(labels)`` class order (classes it lacks get 0)."""
    names = sort_labels(labels)
    probs = predictor.predict_proba(texts)
    out = np.zeros((len(texts), len(names)), dtype=np.float32)
    for j, label in enumerate(predictor.labels):
        if label in names:
            out[:, names.index(label)] = probs[:, j]
    return out
