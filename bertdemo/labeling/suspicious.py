"""Labels the model believes are wrong, ranked from *out-of-sample* probabilities.

A model scores its own training rows as right — it learned them, wrong labels included — so in-sample scores miss
most errors. Here every labeled row gets its probabilities from a model that never saw it: k-fold fine-tuning of
the base model (each fold trains on the other folds with the engine's own session, step and guards — the NaN check,
the out-of-memory message, memory freed after each fold — and predicts the held-out fold). The rows are then ranked by how little probability their given label got (``self_confidence``:
the same order as the loss, Chong et al. 2022), or by cleanlab's confident learning or normalized margin
(``RANKINGS``). ``bench/suspicious_bench.py`` measures which finds more flipped labels; the default is its answer.
The folds' probabilities are then averaged with what each text's nearest neighbours are labeled
(``bertdemo.labeling.neighbours``: the base model's embeddings, one forward pass over the rows), which errs on other
rows than the folds do.

``find_suspects`` is a generator: ``FoldProgress`` events while it works, then the ranked ``Suspect`` list.

Multi-label rows (each label a label set: a tuple of names) are judged per (text, label) pair: the folds train a
sigmoid per label (BCE, through the same session) and every pair is ranked by |y − p|, how far the out-of-sample
probability lies from the given 0/1. A pair is either a *missing* label (not given, yet the model is sure of it)
or an *unlikely* one (given, yet the model finds it improbable): ``SuspectPair``, from ``rank_suspect_pairs``,
which keeps the top ``pair_limit`` pairs (N texts have N x L of them).
Its folds are seeded random folds (stratifying a set of labels per row is not what k-fold splitters do).
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from bertdemo.config import SCRATCH_MODEL, TrainConfig
from bertdemo.data import frames_data, sort_labels
from bertdemo.data.multilabel import LabelSet, multi_hot
from bertdemo.data.multilabeled import multilabel_frames
from bertdemo.labeling.neighbours import NEIGHBOURS, mean_pooled_embeddings, neighbour_label_probabilities, \
    with_neighbours
from bertdemo.training.evaluation import validation_logits
from bertdemo.training.guards import finite_loss, out_of_memory_as_message
from bertdemo.training.session import start_session, training_step

DEFAULT_FOLDS = 3  # 3 folds found as many flipped labels as 4 in 60% of the time (bench/RESULTS.md)
RANKINGS = ("self_confidence", "normalized_margin", "confident_learning")
DEFAULT_RANKING = "self_confidence"
FOLD_SETTINGS = dict(epochs=2, min_steps=150, class_weights="none")  # each fold's short fine-tune (RESULTS.md)
SECOND_LOOK = 0.0  # share of rows re-scored by a model trained without them (out_of_sample_probabilities)
# Multi-label pairs kept, best first: at least this many, or this many per text (N texts have N x L pairs; two per
# text is twice what 10% of flipped pairs puts wrong with ten labels, and plenty to review)
MIN_PAIRS_KEPT = 200
PAIRS_KEPT_PER_ROW = 2


@dataclass(frozen=True)
class FoldProgress:
    fold: int  # 1-based
    folds: int
    step: int  # steps done in this fold (== steps once its held-out rows are scored)
    steps: int  # steps this fold takes
    scored: int = 0  # rows given their out-of-sample probabilities so far (by the folds that have finished)
    rows: int = 0  # rows to score in all
    elapsed_s: float = 0.0  # since scoring began
    eta_s: float | None = None  # seconds left at the pace so far (None until a step has been timed)
    second_look: bool = False  # this "fold" re-scores the most suspect rows (out_of_sample_probabilities)
    neighbours: bool = False  # this last phase embeds the texts to find each one's nearest neighbours (step: texts)

    @property
    def fraction(self) -> float:
        return ((self.fold - 1) + self.step / max(1, self.steps)) / self.folds

    def line(self) -> str:
        """One plain line: "fold 2 of 3 · step 40/100 · 120 of 360 rows scored · ETA 1:05"."""
        eta = "ETA —" if self.eta_s is None else f"ETA {format_duration(self.eta_s)}"
        if self.neighbours:
            return (f"comparing each text with its nearest neighbours ({self.fold} of {self.folds}) · "
                    f"{self.step} of {self.steps} texts embedded · {eta}")
        what = f"fold {self.fold} of {self.folds}" + (" (a second look at the most suspect rows)" if self.second_look
                                                      else "")
        return (f"{what} · step {self.step}/{self.steps} · {self.scored} of {self.rows} rows "
                f"scored · {eta}")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def eta_seconds(fold: int, folds: int, step: int, steps: int, fold_elapsed: float,
                finished: Sequence[float]) -> float | None:
    """Seconds left: this fold's remaining steps at its own pace, then each later fold as long as the finished
    folds took on average (their time includes scoring the held-out rows), or, before any has finished, as long
    as this one is taking. None while nothing has been timed (the first fold's first steps)."""
    if finished:
        per_fold = sum(finished) / len(finished)
    elif step:
        per_fold = fold_elapsed / step * steps
    else:
        return None
    here = fold_elapsed / step * (steps - step) if step else per_fold
    return max(0.0, here) + (folds - fold) * per_fold


@dataclass(frozen=True)
class Suspect:
    row: int  # position in the rows given
    text: str
    given: str
    suggested: str  # the likeliest class out of sample
    score: float  # higher: more likely wrong (1 − the given label's out-of-sample probability, or cleanlab's)
    probabilities: dict[str, float]


@dataclass(frozen=True)
class SuspectPair:
    """One (text, label) pair of a multi-label row the model disagrees with."""
    row: int  # position in the rows given
    text: str
    given: LabelSet  # the row's label set
    label: str  # the label in question
    kind: str  # "missing": not given, the model is sure of it; "unlikely": given, the model finds it improbable
    score: float  # |y − p|: higher is more likely wrong
    probabilities: dict[str, float]  # every label's out-of-sample probability

    @property
    def suggested(self) -> LabelSet:
        """The given set with this pair fixed: the label added (missing) or taken out (unlikely)."""
        names = set(self.given) ^ {self.label}
        return tuple(sorted(names))


def is_multi_label(labels: Sequence) -> bool:
    """True when the rows' labels are label sets (tuples or lists of names) rather than class names."""
    return any(isinstance(label, (tuple, list)) for label in labels)


def out_of_sample_probabilities(texts: Sequence[str], labels: Sequence[str], config: TrainConfig | None = None, *,
                                folds: int = DEFAULT_FOLDS, should_stop: Callable[[], bool] = lambda: False,
                                second_look: float = SECOND_LOOK,
                                neighbours: int = NEIGHBOURS) -> Iterator[FoldProgress | np.ndarray]:
    """Yield progress, then the (N, C) out-of-sample probabilities (classes in ``sort_labels(labels)`` order).

    ``config`` is what each fold trains with (default: the engine's defaults with ``FOLD_SETTINGS``); its epochs,
    min_steps and class weights apply, its evaluations and early stopping do not (the folds keep their last
    weights).

    ``second_look``: the share of single-label rows the folds found most suspect that one more model — trained on
    every other row, so on data with most wrong labels taken out — scores again; each of those rows gets the mean
    of its two out-of-sample probabilities (``SECOND_LOOK``; 0: off). It shows as one more fold in the progress.

    ``neighbours``: k for the nearest-neighbour vote on single-label rows, averaged in at ``neighbours.WEIGHT``
    (0: off; off for the scratch model, whose embeddings say nothing before training). Its embedding pass is the
    last phase in the progress."""
    config = config or TrainConfig(**FOLD_SETTINGS)
    folds = max(2, int(folds))
    frame, names, multi = _frame(texts, labels)
    looks = 0 if multi or second_look <= 0 else 1
    near = 0 if multi or config.model == SCRATCH_MODEL else max(0, int(neighbours))
    probs = np.full((len(frame), len(names)), np.nan, dtype=np.float32)
    splitter = _random_splits(len(labels), folds, config.seed) if multi else \
        _splits(np.array([names.index(label) for label in labels]), folds, config.seed)
    fitter = _Fitter(frame, names, multi, config, folds + looks + (1 if near else 0), should_stop,
                     neighbours_pass=bool(near))
    for fold, (train_rows, held_rows) in enumerate(splitter, start=1):
        yield from fitter.fit_and_score(fold, train_rows, held_rows, probs)
        if fitter.stopped:
            return
    if looks:
        for event in _second_look(fitter, folds + 1, labels, probs, second_look):
            if isinstance(event, FoldProgress):
                yield event
            elif fitter.stopped:
                return
            elif event is not None:
                probs = with_second_look(probs, event)
    if near:
        votes = None
        for event in neighbour_votes(texts, labels, config, k=near, should_stop=should_stop, fitter=fitter):
            if isinstance(event, FoldProgress):
                yield event
            else:
                votes = event
        if votes is None:
            return
        probs = with_neighbours(probs, votes)
    yield probs


def neighbour_votes(texts: Sequence[str], labels: Sequence[str], config: TrainConfig | None = None, *,
                    k: int = NEIGHBOURS, should_stop: Callable[[], bool] = lambda: False,
                    fitter: "_Fitter | None" = None) -> Iterator[FoldProgress | np.ndarray | None]:
    """Progress, then the (N, C) nearest-neighbour label shares of single-label rows (classes in
    ``sort_labels(labels)`` order; None when stopped): ``out_of_sample_probabilities``'s last phase, on its own."""
    config = config or TrainConfig(**FOLD_SETTINGS)
    if fitter is None:
        frame, names, _ = _frame(texts, labels)
        fitter = _Fitter(frame, names, False, config, 1, should_stop)
    names = fitter.names
    began = time.monotonic()
    phase = fitter.folds
    yield fitter.progress(phase, 0, len(texts), began, neighbours=True)
    vectors = None
    for event in mean_pooled_embeddings(list(texts), config.model, config.max_length, should_stop=should_stop):
        if event is None:
            fitter.stopped = True
            yield None
            return
        if isinstance(event, np.ndarray):
            vectors = event
        elif event < len(texts):
            yield fitter.progress(phase, event, len(texts), began, neighbours=True)
    y = np.array([names.index(label) for label in labels])
    votes = neighbour_label_probabilities(vectors, y, len(names), k)
    fitter.finished.append(time.monotonic() - began)
    yield fitter.progress(phase, len(texts), len(texts), began, neighbours=True)
    yield votes


def with_second_look(probs: np.ndarray, again: np.ndarray) -> np.ndarray:
    """``probs`` with each row the second look scored (``again`` not NaN there) the mean of its two
    out-of-sample probabilities."""
    seen = ~np.isnan(again[:, 0])
    merged = probs.copy()
    merged[seen] = (probs[seen] + again[seen]) / 2
    return merged


def second_look_probabilities(texts: Sequence[str], labels: Sequence[str], probs: np.ndarray,
                              config: TrainConfig | None = None, *, share: float = 0.2,
                              should_stop: Callable[[], bool] = lambda: False
                              ) -> Iterator[FoldProgress | np.ndarray | None]:
    """The second look on its own (``out_of_sample_probabilities`` runs it after its folds): progress, then an
    (N, C) array with the probabilities of the ``share`` most suspect rows under ``probs``, scored by a model
    trained on all other rows (NaN elsewhere), or None when those rows hold a whole class."""
    config = config or TrainConfig(**FOLD_SETTINGS)
    frame, names, multi = _frame(texts, labels)
    yield from _second_look(_Fitter(frame, names, multi, config, 1, should_stop), 1, labels, probs, share)


def _second_look(fitter: "_Fitter", fold: int, labels: Sequence[str], probs: np.ndarray, share: float
                 ) -> Iterator[FoldProgress | np.ndarray | None]:
    candidates = second_look_rows(labels, probs, share)
    rest = np.setdiff1d(np.arange(len(probs)), candidates)
    if not len(candidates) or set(fitter.frame["label"].iloc[rest]) != set(fitter.names):
        yield None  # a class would have no rows to learn from
        return
    again = np.full_like(probs, np.nan)
    yield from fitter.fit_and_score(fold, rest, candidates, again, rescoring=True)
    yield None if fitter.stopped else again


def second_look_rows(labels: Sequence[str], probs: np.ndarray, share: float) -> np.ndarray:
    """The ``share`` of rows whose given label got the least out-of-sample probability (most suspect first)."""
    names = sort_labels(labels)
    y = np.array([names.index(label) for label in labels])
    count = min(len(y) - 1, max(1, round(share * len(y))))
    return np.argsort(probs[np.arange(len(y)), y], kind="stable")[:count]


def _frame(texts: Sequence[str], labels: Sequence) -> tuple[pd.DataFrame, tuple[str, ...], bool]:
    """The rows as a frame (text, label, row), the class names, and whether the labels are label sets; refused
    when there is too little to train folds on."""
    multi = is_multi_label(labels)
    if multi:
        labels = [tuple(label) for label in labels]
        names = sort_labels({n for label in labels for n in label})
    else:
        names = sort_labels(labels)
    if len(names) < 2:
        raise ValueError("Suspicious labels need at least two classes among the labeled items.")
    if len(labels) < 4 * len(names):
        raise ValueError(f"Only {len(labels)} labeled items for {len(names)} classes: too few to train on folds of "
                         "them. Label a few more per class first.")
    frame = pd.DataFrame({"text": list(texts), "label": list(labels), "row": np.arange(len(texts))})
    return frame, tuple(names), multi


class _Fitter:
    """Fine-tunes one model on some rows and scores others (a fold, or the second look), with the engine's own
    session, step and guards — the NaN check, the out-of-memory message, memory freed after each — and keeps the
    progress bookkeeping shared by all of them."""

    def __init__(self, frame: pd.DataFrame, names: tuple[str, ...], multi: bool, config: TrainConfig, folds: int,
                 should_stop: Callable[[], bool], *, neighbours_pass: bool = False) -> None:
        """``folds``: every phase the progress counts; ``neighbours_pass``: the last of them is the neighbours'
        pass — one forward over every row, far shorter than a fold, so the time left counts it at the pace the
        folds scored their held-out rows, not as one more fold."""
        self.frame, self.names, self.multi, self.config = frame, names, multi, config
        self.folds, self.should_stop, self.neighbours_pass = folds, should_stop, neighbours_pass
        self.began, self.finished, self.scored, self.stopped = time.monotonic(), [], 0, False
        self.seconds_per_scored_row: float | None = None

    def progress(self, fold: int, step: int, steps: int, fold_began: float, rescoring: bool = False, *,
                 neighbours: bool = False) -> FoldProgress:
        now = time.monotonic()
        return FoldProgress(fold=fold, folds=self.folds, step=step, steps=steps, scored=self.scored,
                            rows=len(self.frame), elapsed_s=now - self.began, second_look=rescoring,
                            neighbours=neighbours,
                            eta_s=self._eta(fold, step, steps, now - fold_began, neighbours))

    def _eta(self, fold: int, step: int, steps: int, fold_elapsed: float, neighbours: bool) -> float | None:
        if neighbours or not self.neighbours_pass:
            return eta_seconds(fold, self.folds, step, steps, fold_elapsed, self.finished)
        folds_left = eta_seconds(fold, self.folds - 1, step, steps, fold_elapsed, self.finished)
        if folds_left is None or self.seconds_per_scored_row is None:
            return folds_left
        return folds_left + self.seconds_per_scored_row * len(self.frame)

    def fit_and_score(self, fold: int, train_rows: np.ndarray, held_rows: np.ndarray, into: np.ndarray, *,
                      rescoring: bool = False) -> Iterator[FoldProgress]:
        """Train on ``train_rows``, write the held-out rows' probabilities into ``into``; progress on the way."""
        fold_began, config, frame = time.monotonic(), self.config, self.frame
        make_data = multilabel_frames if self.multi else frames_data
        data = make_data(frame.iloc[train_rows], frame.iloc[held_rows], self.names, source="folds",
                         max_length=config.max_length)
        with out_of_memory_as_message(config, lost="no labels were scored"):  # the loop's own rules
            s = start_session(dataclasses.replace(config, seed=config.seed + fold), data)
            steps = len(s.loader) * s.epochs
            yield self.progress(fold, 0, steps, fold_began, rescoring)
            s.model.train()
            for step, batch in enumerate(itertools.chain.from_iterable(itertools.repeat(s.loader, s.epochs)), 1):
                if self.should_stop():
                    self.stopped = True
                    return
                finite_loss(training_step(s, batch, config.max_grad_norm), step, config,
                            lost=f"fold {fold} could not score its labels")
                if step % 5 == 0 and step < steps:
                    yield self.progress(fold, step, steps, fold_began, rescoring)
            scoring = time.monotonic()
            logits, _ = validation_logits(s)
            self.seconds_per_scored_row = (time.monotonic() - scoring) / max(1, len(held_rows))
            into[s.val_frame["row"].to_numpy()] = _sigmoid(logits.numpy()) if self.multi else \
                _softmax(logits.numpy())
            s = batch = None  # freed on the way out of the block
        if not rescoring:
            self.scored += len(held_rows)
        self.finished.append(time.monotonic() - fold_began)
        yield self.progress(fold, steps, steps, fold_began, rescoring)  # this fold's rows are scored


def rank_suspects(texts: Sequence[str], labels: Sequence[str], probs: np.ndarray,
                  method: str = DEFAULT_RANKING) -> list[Suspect]:
    """Every row, most likely mislabeled first."""
    names = sort_labels(labels)
    y = np.array([names.index(label) for label in labels])
    if method == "self_confidence":
        score = 1.0 - probs[np.arange(len(y)), y]
    elif method == "normalized_margin":
        others = probs.copy()
        others[np.arange(len(y)), y] = -np.inf
        score = others.max(axis=1) - probs[np.arange(len(y)), y]  # > 0: another class is likelier than the given
    elif method == "confident_learning":
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        issues = find_label_issues(y, probs, return_indices_ranked_by="self_confidence")
        quality = get_label_quality_scores(y, probs, method="self_confidence")
        score = 1.0 - quality
        score[issues] += 1.0  # confident learning's issues first, each group by self-confidence
    else:
        raise ValueError(f"Unknown ranking {method!r}; use one of {', '.join(RANKINGS)}.")
    order = np.argsort(-score, kind="stable")
    return [Suspect(row=int(i), text=str(texts[i]), given=str(labels[i]), suggested=names[int(probs[i].argmax())],
                    score=float(score[i]), probabilities={n: float(p) for n, p in zip(names, probs[i])})
            for i in order]


def pair_limit(rows: int) -> int:
    """How many (text, label) pairs ``rank_suspect_pairs`` keeps for ``rows`` texts by default."""
    return max(MIN_PAIRS_KEPT, PAIRS_KEPT_PER_ROW * rows)


def rank_suspect_pairs(texts: Sequence[str], label_sets: Sequence[LabelSet], probs: np.ndarray,
                       names: Sequence[str] | None = None, *, top: int | None = None) -> list[SuspectPair]:
    """The (text, label) pairs of multi-label rows most likely wrong, best first: by |y − p|, y the given 0/1 and
    p the out-of-sample probability (``probs`` (N, L) in ``names`` order, default the rows' labels sorted). Only
    the first ``top`` are kept (default ``pair_limit(N)``): there are N × L pairs, the job records its list in one
    event, and a person reviews the top of it."""
    names = list(names or sort_labels({n for s in label_sets for n in s}))
    y = multi_hot([tuple(s) for s in label_sets], names)  # (N, L)
    probs = np.asarray(probs, dtype=np.float64)
    score = np.abs(y - probs)  # (N, L)
    # the full stable sort, then the cut: the pairs kept are exactly the head of the uncut ranking
    order = np.argsort(-score, axis=None, kind="stable")[:pair_limit(len(y)) if top is None else max(0, int(top))]
    rows, cols = np.unravel_index(order, score.shape)
    return [SuspectPair(row=int(r), text=str(texts[r]), given=tuple(label_sets[r]), label=names[c],
                        kind="unlikely" if y[r, c] else "missing", score=float(score[r, c]),
                        probabilities={n: float(p) for n, p in zip(names, probs[r])})
            for r, c in zip(rows, cols)]


def find_suspects(texts: Sequence[str], labels: Sequence[str], config: TrainConfig | None = None, *,
                  folds: int = DEFAULT_FOLDS, method: str = DEFAULT_RANKING,
                  should_stop: Callable[[], bool] = lambda: False,
                  top_pairs: int | None = None) -> Iterator[FoldProgress | list[Suspect]]:
    """Out-of-sample probabilities, then the ranking: progress events, then the ``Suspect`` list (best first).
    Label sets (multi-label rows) give the ``SuspectPair`` list instead (``rank_suspect_pairs``, its first
    ``top_pairs``; ``method`` is for single-label rows)."""
    if method not in RANKINGS:
        raise ValueError(f"Unknown ranking {method!r}; use one of {', '.join(RANKINGS)}.")
    multi = is_multi_label(labels)
    for event in out_of_sample_probabilities(texts, labels, config, folds=folds, should_stop=should_stop):
        if isinstance(event, FoldProgress):
            yield event
        elif multi:
            yield rank_suspect_pairs(texts, labels, event, top=top_pairs)
        else:
            yield rank_suspects(texts, labels, event, method)


def _splits(y: np.ndarray, folds: int, seed: int):
    counts = np.bincount(y)
    if counts[counts > 0].min() >= folds:
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    rng = np.random.default_rng(seed)  # a class too small to stratify: plain seeded folds
    assignment = rng.permutation(len(y)) % folds
    return [(np.flatnonzero(assignment != f), np.flatnonzero(assignment == f)) for f in range(folds)]


def _random_splits(n: int, folds: int, seed: int):
    assignment = np.random.default_rng(seed).permutation(n) % folds
    return [(np.flatnonzero(assignment != f), np.flatnonzero(assignment == f)) for f in range(folds)]


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
