"""Which item to label next: active-learning rankings of a project's unlabeled items, and the plain orders.

- Uncertainty, from the model's class probabilities: ``margin`` (the default: breaking ties, the gap between
  the two likeliest classes; Schröder et al. 2022 found it best on average for transformers), ``entropy`` and
  ``least_confidence``. Optional diversity: k-means over the model's embeddings of the top candidates, one pick
  per cluster (the most uncertain), so one batch is not ten near-duplicates.
- ``random`` (seeded) and ``in_order`` (import order), with the model's suggestion when there is a model.
- ``misclassified``: the validation texts a run got wrong, most confident first (from its metrics.json).
- ``suspicious`` lives in ``labeling.suspicious``: it needs out-of-sample probabilities.

Every queue is a list of ``QueueEntry``, best first.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from bertdemo.inference.predict import Predictor
from bertdemo.labeling.store import Item, LabelStore, text_key
from bertdemo.runs import read_json

UNCERTAINTY = ("margin", "entropy", "least_confidence")
ORDERS = ("random", "in_order")
STRATEGIES = UNCERTAINTY + ORDERS + ("suspicious", "misclassified")
DIVERSITY_POOL = 10  # diversity clusters the top DIVERSITY_POOL × k candidates
SERVE_WINDOW = 200  # queue entries checked per database round trip while looking for the next item


@dataclass(frozen=True)
class QueueEntry:
    id: int
    text: str
    label: str | None  # the current label (None: unlabeled)
    suggested: str | None  # the model's most likely class (None without a model)
    score: float  # the strategy's score: higher is served first
    probabilities: dict[str, float] = field(default_factory=dict)


def uncertainty(probs: np.ndarray, strategy: str = "margin") -> np.ndarray:
    """(N,) scores, higher = the model is less sure: 1 − margin, entropy, or 1 − max probability."""
    probs = np.asarray(probs, dtype=np.float64)
    if strategy == "margin":
        top2 = np.sort(probs, axis=1)[:, -2:] if probs.shape[1] > 1 else np.hstack([np.zeros_like(probs), probs])
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if strategy == "entropy":
        return -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
    if strategy == "least_confidence":
        return 1.0 - probs.max(axis=1)
    raise ValueError(f"Unknown uncertainty strategy {strategy!r}; use one of {', '.join(UNCERTAINTY)}.")


def diverse_first(scores: np.ndarray, embeddings: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Indices best first: k picks spread over k clusters of the top candidates, then the rest by score."""
    from sklearn.cluster import KMeans

    order = np.argsort(-scores, kind="stable")
    k = min(k, len(order))
    if k < 2:
        return order
    pool = order[: max(k, DIVERSITY_POOL * k)]
    clusters = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(embeddings[pool])
    picks = [pool[clusters == c][np.argmax(scores[pool[clusters == c]])] for c in range(k) if (clusters == c).any()]
    picks = sorted(picks, key=lambda i: -scores[i])
    chosen = set(picks)
    return np.array(picks + [i for i in order if i not in chosen], dtype=np.int64)


def uncertain_queue(store: LabelStore, project: str, predictor: Predictor, strategy: str = "margin", *,
                    top: int | None = None, diversity: int = 0, seed: int = 0) -> list[QueueEntry]:
    """Unlabeled items ranked by ``strategy``; ``diversity`` > 0 spreads the first ``diversity`` over clusters."""
    pool = store.items(project, labeled=False)
    if not pool:
        return []
    probs = predictor.predict_proba([i.text for i in pool])
    scores = uncertainty(probs, strategy)
    if diversity:
        order = diverse_first(scores, predictor.embed([i.text for i in pool]), diversity, seed=seed)
    else:
        order = np.argsort(-scores, kind="stable")
    return [_entry(pool[i], predictor.labels, probs[i], float(scores[i])) for i in order[:top]]


def ordered_queue(store: LabelStore, project: str, strategy: str, *, predictor: Predictor | None = None,
                  top: int | None = None, seed: int = 0) -> list[QueueEntry]:
    """Unlabeled items in import order or in a seeded random order, with suggestions when a model is given."""
    pool = store.items(project, labeled=False)
    order = np.arange(len(pool)) if strategy == "in_order" else np.random.default_rng(seed).permutation(len(pool))
    order = order[:top]
    probs = predictor.predict_proba([pool[i].text for i in order]) if predictor is not None and len(order) else None
    return [_entry(pool[i], predictor.labels if predictor else (), probs[n] if probs is not None else None,
                   float(len(order) - n)) for n, i in enumerate(order)]


def rescored(entry: QueueEntry, predictor: Predictor, strategy: str) -> QueueEntry:
    """``entry`` as ``predictor`` sees it: its probabilities and suggestion, and for an uncertainty queue its
    score (another model took over while the entry was on screen)."""
    probs = predictor.predict_proba([entry.text])
    score = float(uncertainty(probs, strategy)[0]) if strategy in UNCERTAINTY else entry.score
    probabilities = {label: float(p) for label, p in zip(predictor.labels, probs[0])}
    return QueueEntry(id=entry.id, text=entry.text, label=entry.label, score=score, probabilities=probabilities,
                      suggested=max(probabilities, key=probabilities.get))


def misclassified_queue(store: LabelStore, project: str, run_dir: str) -> list[QueueEntry]:
    """The run's misclassified validation texts that are items of this project, most confident mistake first."""
    metrics = read_json(run_dir, "metrics.json") or {}
    by_key = {text_key(i.text): i for i in store.items(project)}
    out = []
    for wrong in metrics.get("misclassified", []):
        item = by_key.get(text_key(wrong["text"]))
        if item is not None:
            out.append(QueueEntry(id=item.id, text=item.text, label=item.label, suggested=wrong["predicted"],
                                  score=float(wrong["confidence"])))
    return out


def confident_suggestions(store: LabelStore, project: str, predictor: Predictor, threshold: float) -> list[QueueEntry]:
    """Unlabeled items whose suggestion the model gives at least ``threshold`` probability, surest first: what a
    bulk accept would label (only with labels of the project's label set)."""
    known = set(store.project(project).labels)
    entries = ordered_queue(store, project, "in_order", predictor=predictor)
    sure = [e for e in entries if e.suggested in known and e.probabilities[e.suggested] >= threshold]
    return sorted(sure, key=lambda e: -e.probabilities[e.suggested])


def serve(store: LabelStore, project: str, queue: Sequence[QueueEntry], start: int, holder: str, *,
          skip: Collection[int] = (), n: int = 1) -> tuple[list[QueueEntry], int]:
    """Up to ``n`` entries of ``queue[start:]`` still to answer, claimed (soft-locked) for ``holder``: not skipped,
    not held by another session, and not answered by anyone since the queue was ranked (the item's label is still
    the one the entry shows). Claiming renews: entries ``holder`` was served before get a full lock time again.
    Returns them and the queue position of the first (``len(queue)`` when none is left)."""
    chosen: list[QueueEntry] = []
    first = len(queue)
    position = start
    while position < len(queue) and len(chosen) < n:
        indices = [i for i in range(position, min(len(queue), position + SERVE_WINDOW)) if queue[i].id not in skip]
        current = _labels_now(store, project, [queue[i].id for i in indices])
        fresh = [i for i in indices if queue[i].id in current and current[queue[i].id] == queue[i].label]
        claimed = set(store.claim(project, holder, [queue[i].id for i in fresh], n - len(chosen)))
        for i in fresh:
            if queue[i].id in claimed:
                first = i if not chosen else first
                chosen.append(queue[i])
        position += SERVE_WINDOW
    return chosen, first


def held_elsewhere(store: LabelStore, project: str, queue: Sequence[QueueEntry], holder: str, *,
                   skip: Collection[int] = ()) -> int:
    """How many entries of ``queue`` are still to answer but claimed by other sessions: what ``serve`` could not
    give ``holder`` (0 means the queue is really done for it)."""
    held = store.locked_by_others(project, holder)
    ids = [e.id for e in queue if e.id in held and e.id not in skip]
    current = _labels_now(store, project, ids)
    return sum(1 for e in queue if e.id in current and current[e.id] == e.label)


def _labels_now(store: LabelStore, project: str, ids: list[int]) -> dict[int, str | None]:
    if not ids:
        return {}
    info = store.project(project)
    with store.read() as conn:
        rows = conn.execute(f"SELECT id, label FROM items WHERE project_id = ? AND id IN ({','.join('?' * len(ids))})",
                            [info.id, *ids]).fetchall()
    return dict(rows)


def _entry(item: Item, labels, probs, score: float) -> QueueEntry:
    if probs is None:
        return QueueEntry(id=item.id, text=item.text, label=item.label, suggested=None, score=score)
    probabilities = {label: float(p) for label, p in zip(labels, probs)}
    return QueueEntry(id=item.id, text=item.text, label=item.label, suggested=max(probabilities, key=probabilities.get),
                      score=score, probabilities=probabilities)
