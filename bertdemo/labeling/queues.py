"""Which item to label next: active-learning rankings of a project's unlabeled items, and the plain orders.

- Uncertainty, from the model's class probabilities: ``margin`` (the default: breaking ties, the gap between
  the two likeliest classes; Schröder et al. 2022 found it best on average for transformers), ``entropy`` and
  ``least_confidence``. Optional diversity: k-means over the model's embeddings of the top candidates, one pick
  per cluster (the most uncertain), so one batch is not ten near-duplicates.
- ``random`` (seeded) and ``in_order`` (import order), with the model's suggestion when there is a model.
- ``misclassified``: the validation texts a run got wrong, most confident first (from its metrics.json).
- ``suspicious`` lives in ``labeling.suspicious``: it needs out-of-sample probabilities.

Multi-label models (a sigmoid per label, decided by per-label thresholds) have their own uncertainty,
``nearest_threshold``: an item is as uncertain as its most uncertain label, the one whose probability lies
nearest that label's threshold (score 1 − min over labels of |p − threshold|; higher is served first). The
class-probability rankings above are refused for them, and ``nearest_threshold`` for single-label models. A
multi-label entry's ``label`` and ``suggested`` are label sets in the store's form (``labeling.labelsets``:
``suggested`` is the set the thresholds decide), so that accepting a suggestion writes it as it is.

Every queue is a list of ``QueueEntry``, best first.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from bertdemo.inference.predict import Predictor
from bertdemo.labeling.labelsets import encode_set
from bertdemo.labeling.store import Item, LabelStore, text_key
from bertdemo.runs import read_json

UNCERTAINTY = ("margin", "entropy", "least_confidence")  # single-label models
LABEL_UNCERTAINTY = "nearest_threshold"  # multi-label models: the label nearest its threshold
NEEDS_MODEL = UNCERTAINTY + (LABEL_UNCERTAINTY,)  # the rankings that score the pool with a model
ORDERS = ("random", "in_order")
STRATEGIES = UNCERTAINTY + (LABEL_UNCERTAINTY,) + ORDERS + ("suspicious", "misclassified")
DESCRIPTIONS = {
    "margin": "smallest gap between the two likeliest classes first",
    "entropy": "most spread-out class probabilities first",
    "least_confidence": "lowest top-class probability first",
    LABEL_UNCERTAINTY: "multi-label: the item whose most uncertain label is nearest its threshold first "
                       "(1 − min over labels of |p − threshold|)",
    "random": "a seeded random order",
    "in_order": "import order",
    "suspicious": "labels the model believes are wrong, from out-of-sample probabilities (multi-label: per text "
                  "and label, a missing label it is sure of or a given one it finds unlikely)",
    "misclassified": "the validation texts a run got wrong, the surest mistakes first",
}
DIVERSITY_POOL = 10  # diversity clusters the top DIVERSITY_POOL × k candidates
SERVE_WINDOW = 200  # queue entries checked per database round trip while looking for the next item


@dataclass(frozen=True)
class QueueEntry:
    id: int
    text: str
    label: str | None  # the current label (None: unlabeled; multi-label: the stored set, labelsets.encode_set)
    suggested: str | None  # the model's most likely class (None without a model; multi-label: the set it decides)
    score: float  # the strategy's score: higher is served first
    probabilities: dict[str, float] = field(default_factory=dict)
    pair_label: str | None = None  # suspicious multi-label pairs: the label in question
    pair_kind: str | None = None  # "missing" (not given, the model is sure of it) or "unlikely" (given, it doubts)


def strategies_for(multi_label: bool) -> tuple[str, ...]:
    """The queues a project of this kind can use, in menu order."""
    ranked = (LABEL_UNCERTAINTY,) if multi_label else UNCERTAINTY
    return ranked + ORDERS + ("suspicious", "misclassified")


def uncertainty(probs: np.ndarray, strategy: str = "margin", thresholds: np.ndarray | None = None) -> np.ndarray:
    """(N,) scores, higher = the model is less sure: 1 − margin, entropy, or 1 − max probability of class
    probabilities; ``nearest_threshold`` (multi-label sigmoids, ``thresholds`` per label, 0.5 each when None):
    1 − the smallest |p − threshold| over the labels."""
    probs = np.asarray(probs, dtype=np.float64)
    if strategy == LABEL_UNCERTAINTY:
        t = np.full(probs.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        return 1.0 - np.abs(probs - t[None, :]).min(axis=1)  # (N,)
    if strategy == "margin":
        top2 = np.sort(probs, axis=1)[:, -2:] if probs.shape[1] > 1 else np.hstack([np.zeros_like(probs), probs])
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if strategy == "entropy":
        return -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
    if strategy == "least_confidence":
        return 1.0 - probs.max(axis=1)
    raise ValueError(f"Unknown uncertainty strategy {strategy!r}; use one of {', '.join(NEEDS_MODEL)}.")


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
    check_strategy(strategy, predictor)
    pool = store.items(project, labeled=False)
    if not pool:
        return []
    probs = predictor.predict_proba([i.text for i in pool])
    scores = uncertainty(probs, strategy, predictor.thresholds)
    if diversity:
        order = diverse_first(scores, predictor.embed([i.text for i in pool]), diversity, seed=seed)
    else:
        order = np.argsort(-scores, kind="stable")
    return [_entry(pool[i], predictor, probs[i], float(scores[i])) for i in order[:top]]


def check_strategy(strategy: str, predictor: Predictor) -> None:
    """Refuse an uncertainty ranking that does not fit the model's kind, naming the one that does."""
    if predictor.multi_label and strategy in UNCERTAINTY:
        raise ValueError(f"{strategy} ranks class probabilities that sum to 1; this model is multi-label (a sigmoid "
                         f"per label). Use {LABEL_UNCERTAINTY}: the label nearest its threshold.")
    if not predictor.multi_label and strategy == LABEL_UNCERTAINTY:
        raise ValueError(f"{LABEL_UNCERTAINTY} is for multi-label models; this one is single-label. Use "
                         f"{', '.join(UNCERTAINTY)}.")


def ordered_queue(store: LabelStore, project: str, strategy: str, *, predictor: Predictor | None = None,
                  top: int | None = None, seed: int = 0) -> list[QueueEntry]:
    """Unlabeled items in import order or in a seeded random order, with suggestions when a model is given."""
    pool = store.items(project, labeled=False)
    order = np.arange(len(pool)) if strategy == "in_order" else np.random.default_rng(seed).permutation(len(pool))
    order = order[:top]
    probs = predictor.predict_proba([pool[i].text for i in order]) if predictor is not None and len(order) else None
    return [_entry(pool[i], predictor, probs[n] if probs is not None else None, float(len(order) - n))
            for n, i in enumerate(order)]


def rescored(entry: QueueEntry, predictor: Predictor, strategy: str) -> QueueEntry:
    """``entry`` as ``predictor`` sees it: its probabilities and suggestion, and for an uncertainty queue its
    score (another model took over while the entry was on screen)."""
    probs = predictor.predict_proba([entry.text])
    fits = strategy in (LABEL_UNCERTAINTY,) if predictor.multi_label else strategy in UNCERTAINTY
    score = float(uncertainty(probs, strategy, predictor.thresholds)[0]) if fits else entry.score
    fresh = _entry(Item(entry.id, entry.text, entry.label, None, None, None, None), predictor, probs[0], score)
    return dataclasses.replace(fresh, pair_label=entry.pair_label, pair_kind=entry.pair_kind)


def misclassified_queue(store: LabelStore, project: str, run_dir: str) -> list[QueueEntry]:
    """The run's misclassified validation texts that are items of this project, most confident mistake first."""
    metrics = read_json(run_dir, "metrics.json") or {}
    by_key = {text_key(i.text): i for i in store.items(project)}
    out = []
    for wrong in metrics.get("misclassified", []):
        item = by_key.get(text_key(wrong["text"]))
        if item is None:
            continue
        if "wrongness" in wrong:  # a multi-label run: the set it predicted, by how wrong its worst label was
            out.append(QueueEntry(id=item.id, text=item.text, label=item.label,
                                  suggested=encode_set(wrong["predicted"]), score=float(wrong["wrongness"]),
                                  probabilities=wrong.get("probabilities", {})))
        else:
            out.append(QueueEntry(id=item.id, text=item.text, label=item.label, suggested=wrong["predicted"],
                                  score=float(wrong["confidence"])))
    return out


def confident_suggestions(store: LabelStore, project: str, predictor: Predictor, threshold: float) -> list[QueueEntry]:
    """Unlabeled items whose suggestion the model gives at least ``threshold`` probability, surest first: what a
    bulk accept would label (only with labels of the project's label set).

    Multi-label models: items where every label is far from its threshold — a label the thresholds decide on has
    probability ≥ ``threshold``, every other label ≤ 1 − ``threshold`` — surest (by their least sure label)
    first; the suggestion is the decided set."""
    known = set(store.project(project).labels)
    entries = ordered_queue(store, project, "in_order", predictor=predictor)
    if predictor.multi_label:
        sure = [(e, _sureness(e)) for e in entries if set(json.loads(e.suggested)) <= known]
        sure = [(e, s) for e, s in sure if s >= threshold]
        return [e for e, _ in sorted(sure, key=lambda pair: -pair[1])]
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


def _entry(item: Item, predictor: Predictor | None, probs, score: float) -> QueueEntry:
    if probs is None or predictor is None:
        return QueueEntry(id=item.id, text=item.text, label=item.label, suggested=None, score=score)
    probabilities = {label: float(p) for label, p in zip(predictor.labels, probs)}
    suggested = encode_set(predictor.decide(np.asarray(probs)[None, :])[0]) if predictor.multi_label else \
        max(probabilities, key=probabilities.get)
    return QueueEntry(id=item.id, text=item.text, label=item.label, suggested=suggested, score=score,
                      probabilities=probabilities)


def _sureness(entry: QueueEntry) -> float:
    """A multi-label entry's least sure label: its probability on the side the thresholds decided (p for a label
    decided on, 1 − p for one decided off)."""
    on = set(json.loads(entry.suggested))
    return min(p if label in on else 1.0 - p for label, p in entry.probabilities.items())
