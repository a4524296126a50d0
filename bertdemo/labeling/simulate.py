"""The active-learning curve: the labeling loop simulated on a fully labeled file, to teach it and to show that
the queue helps.

For each seed, every strategy starts from the same ``start`` labels drawn at random; each round trains a model on
the labels so far (the engine's ``train()`` with a labeling round's settings, ``labeling.rounds``: from the
previous round's weights), scores it on the test rows, and reveals ``step`` more labels from the file, chosen by
the strategy (``random``, or an uncertainty ranking from ``labeling.queues``) over the rest of the pool. The result
is test accuracy against the number of labels.

Multi-label pools (each label a label set, a tuple of names; ``labeled_rows`` reads them with ``label_sep`` or
``label_cols``) train multi-label rounds, score micro-F1 (the curve's score; subset accuracy stays in
``accuracy``) and rank by ``nearest_threshold`` (the label nearest its threshold, ``labeling.queues``).
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from bertdemo.config import TrainConfig
from bertdemo.data import frames_data, sort_labels
from bertdemo.data.multilabel import iterative_split, multi_hot
from bertdemo.data.multilabeled import multilabel_frames
from bertdemo.events import DoneEvent, StartEvent, StepEvent
from bertdemo.inference.evaluate import evaluate_rows
from bertdemo.inference.predict import Predictor
from bertdemo.labeling.queues import DIVERSITY_POOL, LABEL_UNCERTAINTY, UNCERTAINTY, diverse_first, uncertainty
from bertdemo.labeling.rounds import plan_round
from bertdemo.labeling.setmetrics import evaluate_sets
from bertdemo.labeling.suspicious import is_multi_label
from bertdemo.training import train

DIVERSE = "_diverse"  # "margin_diverse": margin's top candidates, spread over k-means clusters as the Label tab's
# queue spreads them with diversity on (queues.diverse_first)
SINGLE_LABEL_STRATEGIES = ("random",) + UNCERTAINTY + tuple(u + DIVERSE for u in UNCERTAINTY)
CURVE_STRATEGIES = SINGLE_LABEL_STRATEGIES + (LABEL_UNCERTAINTY,)  # the last for multi-label pools
CURVE_CONFIG = dict(patience=0)  # the engine's small-data defaults (min_steps, class weights), no early stop


@dataclass(frozen=True)
class CurvePoint:
    strategy: str
    seed: int
    labels: int  # labels the model was trained on
    accuracy: float  # on the test rows
    macro_f1: float
    seconds: float  # this round: training, testing and choosing the next labels (a strategy's start round,
    # trained once for all, counts only its choosing after the first)
    micro_f1: float | None = None  # multi-label pools: the curve's score (``accuracy`` is then subset accuracy)

    @property
    def score(self) -> float:
        """What the curve plots: micro-F1 for a multi-label pool, else accuracy."""
        return self.accuracy if self.micro_f1 is None else self.micro_f1


CURVE_FIELDS = tuple(f.name for f in fields(CurvePoint) if f.default is MISSING)  # every point has these (events
# recorded before ``micro_f1`` came lack it: read it with .get)


@dataclass(frozen=True)
class RoundProgress:
    """Where the simulation is: which seed, strategy and round, and what that round is doing."""
    seed: int
    seed_number: int  # 1-based position of ``seed`` among the seeds
    seeds: int
    strategy: str
    round: int  # 0 = the start labels
    rounds: int
    labels: int
    phase: str  # "training", "testing" or "choosing" (scoring the pool for the next labels)
    step: int = 0  # training steps done in this round
    steps: int = 0
    done: int = 0  # rounds finished so far
    total: int = 0  # rounds in the whole simulation
    warm: bool = False  # this round continues from the previous round's weights

    @property
    def fraction(self) -> float:
        # training is most of a round: its steps fill the first 80%, testing and choosing the rest
        within = 0.8 * self.step / self.steps if self.phase == "training" and self.steps else \
            {"training": 0.0, "testing": 0.8, "choosing": 0.9}.get(self.phase, 0.0)
        return round(min(1.0, (self.done + within) / max(1, self.total)), 6)

    def line(self) -> str:
        """"seed 1 of 2 · margin · round 2 of 3 (150 labels) · training step 12/63 (warm)"."""
        what = f"training step {self.step}/{self.steps}" if self.phase == "training" else \
            {"testing": "testing", "choosing": "choosing the next labels"}.get(self.phase, self.phase)
        start = "start" if self.round == 0 else f"round {self.round} of {self.rounds}"
        return (f"seed {self.seed_number} of {self.seeds} · {self.strategy} · {start} ({self.labels} labels) · "
                f"{what}{' (from the last round' + chr(39) + 's weights)' if self.warm and self.phase == 'training' else ''}")


def al_curve(train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str],
             test_labels: Sequence[str], *, strategies: Sequence[str] = ("random", "margin"), start: int = 50,
             step: int = 50, rounds: int = 4, seeds: Sequence[int] = (0,), config: TrainConfig | None = None,
             should_stop: Callable[[], bool] = lambda: False, warm: bool = True
             ) -> Iterator[CurvePoint | RoundProgress]:
    """Yield ``RoundProgress`` while it works and one ``CurvePoint`` per (seed, strategy, round): ``rounds`` rounds
    after the start, so budgets are ``start, start + step, …, start + rounds·step``.

    The start round is the same for every strategy of a seed (the same random labels): it is trained once. Each
    later round trains as a labeling round does (``labeling.rounds``): from the strategy's previous round's
    weights where ``warm`` and the classes are the same, with the round's step budget. Stop ends the simulation
    within a training step; the round under way is dropped."""
    multi = is_multi_label(train_labels)
    check_curve(len(train_texts), strategies, start=start, step=step, rounds=rounds, multi_label=multi)
    config = config or TrainConfig(**CURVE_CONFIG)
    pool, names, test_labels = _pool(train_texts, train_labels, test_labels, multi)
    seeds = list(seeds)
    total = len(seeds) * len(strategies) * (rounds + 1)
    done = 0
    for number, seed in enumerate(seeds, start=1):
        first = np.random.default_rng(seed).choice(len(pool), size=start, replace=False)
        seed_config = dataclasses.replace(config, seed=config.seed + seed)
        with tempfile.TemporaryDirectory(prefix="bertdemo-al-") as workspace:
            start_round = None  # (run, predictor, metrics) of the start labels, trained for the first strategy
            for strategy in strategies:
                labeled, previous = list(first), start_round[0] if start_round else None
                for round_ in range(rounds + 1):
                    where = dict(seed=seed, seed_number=number, seeds=len(seeds), strategy=strategy, round=round_,
                                 rounds=rounds, labels=start + round_ * step, done=done, total=total)
                    started = time.perf_counter()
                    if round_ == 0 and start_round is not None:
                        run, predictor, metrics = start_round
                    else:
                        run = None
                        for event in train_round(pool.iloc[labeled], names, seed_config, previous, workspace,
                                                 where, warm=warm, should_stop=should_stop):
                            if isinstance(event, RoundProgress):
                                yield event
                            else:
                                run = event
                        if run is None:  # stopped
                            return
                        yield RoundProgress(**where, phase="testing")
                        predictor = Predictor.from_run(run)  # loaded once: it tests, then it chooses
                        metrics = _tested(predictor, test_texts, test_labels, multi)
                        if round_ == 0:
                            start_round = run, predictor, metrics
                    if should_stop():
                        return
                    if round_ < rounds:
                        yield RoundProgress(**where, phase="choosing")
                        labeled += _query(pool, labeled, predictor, strategy, step, seed * 1000 + round_)
                    previous = run
                    done += 1
                    yield CurvePoint(strategy=strategy, seed=seed, labels=start + round_ * step,
                                     accuracy=metrics["accuracy"], macro_f1=metrics["macro_f1"],
                                     seconds=round(time.perf_counter() - started, 1),
                                     micro_f1=metrics["micro_f1"] if multi else None)


def _pool(train_texts: Sequence[str], train_labels: Sequence, test_labels: Sequence, multi: bool
          ) -> tuple[pd.DataFrame, tuple[str, ...], list]:
    """(the pool as text/label rows, the label names, the test labels): label sets as tuples when ``multi``."""
    if multi:
        train_labels = [tuple(s) for s in train_labels]
        test_labels = [tuple(s) for s in test_labels]
    pool = pd.DataFrame({"text": list(train_texts), "label": list(train_labels)})
    names = sort_labels({n for s in train_labels for n in s}) if multi else sort_labels(pool["label"])
    return pool, names, list(test_labels)


def _tested(predictor: Predictor, texts: Sequence[str], labels: Sequence, multi: bool) -> dict:
    """The round's test metrics: label sets at the run's thresholds, or classes."""
    return evaluate_sets(predictor, texts, labels) if multi else evaluate_rows(predictor, texts, labels)


def train_round(rows: pd.DataFrame, names: tuple[str, ...], config: TrainConfig, previous: str | None,
                workspace: str, where: dict, *, warm: bool = True,
                should_stop: Callable[[], bool] = lambda: False) -> Iterator[RoundProgress | str]:
    """Train one simulated round on ``rows``: ``RoundProgress`` events, then the run's folder (nothing when
    stopped). The simulated annotator has no validation set to spare: checkpoints are chosen on the labeled rows
    themselves (patience off, so the last, best-fitting epoch wins), as the loop's first runs would be."""
    multi = is_multi_label(rows["label"].tolist())
    labels = _present(rows, names, multi)
    plan = plan_round(config, labels, previous, warm=warm, multi_label=multi)
    frames = multilabel_frames if multi else frames_data
    data = plan.with_lineage(frames(rows, rows, labels, source="simulation", max_length=config.max_length))
    steps = 0
    for event in train(plan.config, data, workspace=workspace, should_stop=should_stop):
        if isinstance(event, StartEvent):
            steps = event.total_steps
        elif isinstance(event, StepEvent) and (event.step == 1 or event.step % 5 == 0 or event.step == steps):
            yield RoundProgress(**where, phase="training", step=event.step, steps=steps,
                                warm=plan.warm_from is not None)
        elif isinstance(event, DoneEvent) and event.run_dir:
            yield event.run_dir


def check_curve(rows: int, strategies: Sequence[str], *, start: int, step: int, rounds: int,
                multi_label: bool = False) -> None:
    """Refuse a simulation that cannot run on ``rows`` labeled rows (label sets when ``multi_label``), saying
    what to change."""
    unknown = [s for s in strategies if s not in CURVE_STRATEGIES]
    if unknown:
        raise ValueError(f"Unknown strategies {', '.join(unknown)}; use {', '.join(CURVE_STRATEGIES)}.")
    misfit = [s for s in strategies
              if (s.removesuffix(DIVERSE) in UNCERTAINTY if multi_label else s == LABEL_UNCERTAINTY)]
    if misfit:
        fits = ("random", LABEL_UNCERTAINTY) if multi_label else SINGLE_LABEL_STRATEGIES
        raise ValueError(f"{', '.join(misfit)} cannot rank a {'multi' if multi_label else 'single'}-label pool; use "
                         f"{', '.join(fits)}.")
    final = start + rounds * step
    if start < 2 or step < 1 or rounds < 0 or final > rows:
        raise ValueError(f"start {start} + {rounds} rounds of {step} needs {final} labels, but the file has "
                         f"{rows} rows; use a smaller start, step or number of rounds.")


def labeled_rows(path: str | Path, *, label_sep: str | None = None,
                 label_cols: Sequence[str] | None = None) -> tuple[list[str], list]:
    """The usable (text, label) rows of a fully labeled file, columns guessed as the Data tab does. A multi-label
    file (``label_layout``: ``label_sep``, ``label_cols``, or cells holding "|") gives label sets; its unlabeled
    rows are left out."""
    from bertdemo.data import clean_rows, read_table
    from bertdemo.data.layout import label_layout

    table = read_table(path)
    layout = label_layout(table, None, None, label_sep, label_cols)
    if layout.multi_label:
        pairs = [(str(t).strip(), s) for t, s in zip(table[layout.text_col], layout.label_sets(table))
                 if s is not None and isinstance(t, str) and t.strip()]
        return [t for t, _ in pairs], [s for _, s in pairs]
    rows = clean_rows(table[layout.text_col], table[layout.label_col]).rows
    return rows["text"].tolist(), rows["label"].tolist()


def hold_out(texts: list[str], labels: list[str], share: float, seed: int = 0):
    """(train texts, train labels, test texts, test labels): ``share`` held out, stratified where it can be."""
    from sklearn.model_selection import train_test_split

    if is_multi_label(labels):  # label sets: each label's share kept by iterative stratification
        names = sort_labels({n for s in labels for n in s})
        keep, held = iterative_split(multi_hot(labels, names), round(len(texts) * share), seed)
        return ([texts[i] for i in keep], [labels[i] for i in keep], [texts[i] for i in held],
                [labels[i] for i in held])
    try:
        a, b, c, d = train_test_split(texts, labels, test_size=share, random_state=seed, stratify=labels)
    except ValueError:  # a class too small to stratify
        a, b, c, d = train_test_split(texts, labels, test_size=share, random_state=seed)
    return a, c, b, d


def curve_table(points: Sequence[CurvePoint]) -> dict:
    """{"budgets": [...], "<strategy>": [mean score per budget], "spread": {strategy: [[min, max], …]},
    "seconds_per_round": mean}: what the CLI prints and the plot draws. The score is accuracy, or micro-F1 for a
    multi-label pool (then "metric": "micro_f1" says so)."""
    budgets = sorted({p.labels for p in points})
    table: dict = {"budgets": budgets, "spread": {}, "macro_f1": {}}
    for strategy in dict.fromkeys(p.strategy for p in points):
        by_budget = [[p for p in points if p.strategy == strategy and p.labels == b] for b in budgets]
        table[strategy] = [round(float(np.mean([p.score for p in ps])), 4) if ps else None for ps in by_budget]
        table["macro_f1"][strategy] = [round(float(np.mean([p.macro_f1 for p in ps])), 4) if ps else None
                                       for ps in by_budget]
        table["spread"][strategy] = [[min(p.score for p in ps), max(p.score for p in ps)] if ps else None
                                     for ps in by_budget]
    table["seconds_per_round"] = round(float(np.mean([p.seconds for p in points])), 1) if points else 0.0
    if any(p.micro_f1 is not None for p in points):
        table["metric"] = "micro_f1"
    return table


def train_and_test(rows: pd.DataFrame, names: tuple[str, ...], test_texts, test_labels,
                   config: TrainConfig) -> tuple[Predictor, dict]:
    """One model trained on ``rows`` with ``config`` exactly (no round settings) and its test metrics; checkpoints
    chosen on the rows themselves, as in ``train_round``."""
    multi = is_multi_label(rows["label"].tolist())
    labels = _present(rows, names, multi)
    data = (multilabel_frames if multi else frames_data)(rows, rows, labels, source="simulation",
                                                         max_length=config.max_length)
    with tempfile.TemporaryDirectory(prefix="bertdemo-al-") as workspace:
        done = [e for e in train(config, data, workspace=workspace) if isinstance(e, DoneEvent)][-1]
        predictor = Predictor.from_run(done.run_dir)
    if multi:
        return predictor, evaluate_sets(predictor, test_texts, [tuple(s) for s in test_labels])
    return predictor, evaluate_rows(predictor, test_texts, test_labels)


def _present(rows: pd.DataFrame, names: tuple[str, ...], multi: bool) -> tuple[str, ...]:
    """The labels of ``names`` that ``rows`` carry (any of their label sets, for a multi-label pool)."""
    present = {n for s in rows["label"] for n in s} if multi else set(rows["label"])
    return tuple(label for label in names if label in present)


def _query(pool: pd.DataFrame, labeled: list[int], predictor: Predictor, strategy: str, k: int,
           seed: int) -> list[int]:
    rest = np.setdiff1d(np.arange(len(pool)), labeled)
    if strategy == "random":
        return np.random.default_rng(seed).choice(rest, size=min(k, len(rest)), replace=False).tolist()
    ranking = strategy.removesuffix(DIVERSE)
    scores = uncertainty(predictor.predict_proba(pool["text"].iloc[rest].tolist()), ranking, predictor.thresholds)
    order = np.argsort(-scores, kind="stable")
    if ranking == strategy or k < 2:
        return rest[order[:k]].tolist()
    # only the candidates k-means may pick from are embedded: a few hundred texts, not the pool
    top = order[:DIVERSITY_POOL * k]
    spread = diverse_first(scores[top], predictor.embed(pool["text"].iloc[rest[top]].tolist()), k, seed=seed)
    return rest[top[spread[:k]]].tolist()
