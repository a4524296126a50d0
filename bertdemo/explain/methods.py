"""Every explanation the app shows, on one text, with its faithfulness: the scores of each method per word-piece,
how faithful each is (``explain.faithfulness``), and which to show first (the most comprehensive).

Methods (``METHODS``): integrated gradients and gradient×input (``explain.attributions``), occlusion
(leave-one-out, ``explain.faithfulness``), last-layer [CLS] attention averaged over heads, and attention
rollout's [CLS] row (``explain.attention``). Attention weights are not signed evidence for a class: their scores
rank the pieces the [CLS] position draws on, whatever the class.

``explain_stream`` yields what is known as it is computed, each time a whole ``Explained`` whose ``pending``
says what is still to come: integrated gradients first (usually the most faithful, and the costliest method,
so the page has something to show early), then gradient×input and the two attention views, then occlusion,
then every method's faithfulness. Until the scores arrive ``shown_first`` is provisional (the first method
drawn); the last item picks the most comprehensive. ``explain`` is its last item. Work is shared, not repeated:
integrated gradients' unperturbed forward is the prediction (``probabilities``, and the full text's probability
in every deletion test), gradient×input is its gradient at the text, and all perturbed sequences go through one
``faithfulness.Passes``, so the random orderings' are forwarded once for all methods, with occlusion's reused.
The numbers equal what each function computes alone, to float rounding (≤ ~1e-7 in fp32: batches pad
differently).
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from bertdemo.explain.attention import attention
from bertdemo.explain.attributions import AttributionResult, attributions, gradient_attributions
from bertdemo.explain.faithfulness import (DeletionTest, Faithfulness, Passes, check_operator, most_comprehensive,
                                           occlusion_scores)
from bertdemo.explain.tokens import TokenView, encode_one, token_view
from bertdemo.inference.predict import Predictor

METHODS = ("integrated_gradients", "grad_x_input", "occlusion", "attention_cls", "rollout_cls")
TITLES = {"integrated_gradients": "integrated gradients", "grad_x_input": "gradient × input",
          "occlusion": "occlusion (leave one out)", "attention_cls": "last-layer [CLS] attention",
          "rollout_cls": "attention rollout, [CLS] row"}
FAITHFULNESS = "faithfulness"  # the entry of ``Explained.pending`` for the scores (every method's, at once)
STAGES = (("integrated_gradients",), ("grad_x_input", "attention_cls", "rollout_cls"), ("occlusion",),
          (FAITHFULNESS,))  # what explain_stream computes, in order; one item yielded after each stage


@dataclass(frozen=True)
class Explained:
    tokens: list[str]
    special: list[bool]
    word_ids: list[int | None]
    probabilities: dict[str, float]
    target: str
    scores: dict[str, np.ndarray]  # method -> (T,) one score per word-piece, special tokens included
    faithfulness: dict[str, Faithfulness]
    shown_first: str  # the most comprehensive method on this text (while ``pending``: the first one drawn)
    operator: str  # the removal operator the scores were measured with
    truncated: bool
    seconds: dict[str, float]  # time per method, and "faithfulness"
    pending: tuple[str, ...] = ()  # still computing, in order: methods, then FAITHFULNESS; () once complete

    @property
    def provisional(self) -> bool:
        """True while ``shown_first`` is not yet chosen by the scores."""
        return bool(self.pending)

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "probabilities": self.probabilities, "target": self.target,
                "methods": {name: {"scores": [float(x) for x in self.scores[name]],
                                   "faithfulness": self.faithfulness[name].to_dict()} for name in self.scores},
                "shown_first": self.shown_first, "operator": self.operator, "truncated": self.truncated}


def explain(predictor: Predictor, text: str, *, target: str | None = None, methods: Sequence[str] = METHODS,
            operator: str = "deletion", seed: int = 0) -> Explained:
    """Score ``text`` with every method in ``methods`` toward ``target`` (default: the predicted class)."""
    result = None
    for result in explain_stream(predictor, text, target=target, methods=methods, operator=operator, seed=seed):
        pass
    return result


def explain_stream(predictor: Predictor, text: str, *, target: str | None = None,
                   methods: Sequence[str] = METHODS, operator: str = "deletion",
                   seed: int = 0) -> Iterator[Explained]:
    """``explain``, yielded as it is computed: one ``Explained`` after each stage of ``STAGES`` that has any of
    ``methods``, the last one complete (``pending == ()``). Unknown methods and operators raise before any
    model work."""
    methods = _checked(methods, operator, predictor)
    run = _Run(predictor, text, target, methods, operator)  # integrated gradients, if asked, and the prediction
    if run.scores:
        yield run.snapshot()
    if run.gradient_and_attention():
        yield run.snapshot()
    test = DeletionTest(run.ids, run.view.special, run.target_id, operator=operator,
                        mask_token_id=predictor.tokenizer.mask_token_id, seed=seed)
    with run.clock("occlusion"):  # a method, and the reference of every τ
        occlusion = occlusion_scores(predictor, run.ids, run.view.special, run.target_id, operator=operator,
                                     passes=run.passes)
    if "occlusion" in methods:
        run.scores["occlusion"] = occlusion
        yield run.snapshot()
    with run.clock(FAITHFULNESS):
        run.faithfulness = test.score(run.in_order(), run.passes, occlusion=occlusion)
    yield run.snapshot()


# helpers


def _checked(methods: Sequence[str], operator: str, predictor: Predictor) -> list[str]:
    """The methods in the order given, each once. What the scores would refuse is refused now, before the work
    that precedes them."""
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown explanation methods {', '.join(unknown) or '(none given)'}; use "
                         f"{', '.join(METHODS)}.")
    check_operator(operator, predictor.tokenizer.mask_token_id)
    return methods


class _Run:
    """One explanation being computed: what is known so far, and the passes the stages share."""

    def __init__(self, predictor: Predictor, text: str, target: str | None, methods: list[str], operator: str):
        self.predictor, self.text, self.methods, self.operator = predictor, text, methods, operator
        self.scores: dict[str, np.ndarray] = {}
        self.faithfulness: dict[str, Faithfulness] = {}
        self.seconds: dict[str, float] = {}
        self.passes = Passes(predictor)
        self.gradients: dict[str, AttributionResult] = {}
        if "integrated_gradients" in methods:
            with self.clock("integrated_gradients"):
                self.gradients = gradient_attributions(predictor, text, target=target)
            self.scores["integrated_gradients"] = np.asarray(self.gradients["integrated_gradients"].scores)
        self.ids = predictor.encode([text])["input_ids"][0].tolist()
        if self.gradients:
            first = self.gradients["integrated_gradients"]
            self.view = TokenView(tokens=first.tokens, special=first.special, word_ids=first.word_ids)
            self.truncated, self.target = first.truncated, first.target
            if _gradients_run_the_prediction_model(predictor):
                self.passes.remember([self.ids], [np.array([first.probabilities[label] for label in
                                                            predictor.labels], dtype=np.float32)])
        else:
            _, self.truncated = encode_one(predictor, text)
            self.view = token_view(predictor, text, self.ids)
            self.target = _target(predictor, target, self.passes([self.ids])[0])
        self.target_id = predictor.labels.index(self.target)

    def gradient_and_attention(self) -> bool:
        """Gradient×input (read off integrated gradients' path where it ran) and the attention views, as asked;
        whether any was."""
        methods = self.methods
        if "grad_x_input" in methods:
            with self.clock("grad_x_input"):
                if not self.gradients:
                    self.gradients = {"grad_x_input": attributions(self.predictor, self.text, target=self.target,
                                                                   method="grad_x_input")}
                self.scores["grad_x_input"] = np.asarray(self.gradients["grad_x_input"].scores)
        if "attention_cls" in methods or "rollout_cls" in methods:
            with self.clock("attention_cls"):
                result = attention(self.predictor, self.text)
            if "attention_cls" in methods:
                self.scores["attention_cls"] = result.weights[-1, :, 0, :].mean(axis=0)  # (T,): last layer, [CLS] row
            if "rollout_cls" in methods:
                self.scores["rollout_cls"] = result.rollout[0]  # (T,)
        return any(m in methods for m in STAGES[1])

    def in_order(self) -> dict[str, np.ndarray]:
        return {name: self.scores[name] for name in self.methods if name in self.scores}

    def snapshot(self) -> Explained:
        scores = self.in_order()
        pending = tuple(m for stage in STAGES for m in stage if m in self.methods and m not in scores)
        pending += () if self.faithfulness else (FAITHFULNESS,)
        probs = self.passes([self.ids])[0]
        return Explained(tokens=self.view.tokens, special=self.view.special, word_ids=self.view.word_ids,
                         probabilities={label: float(p) for label, p in zip(self.predictor.labels, probs)},
                         target=self.target, scores=scores, faithfulness=dict(self.faithfulness),
                         shown_first=most_comprehensive(self.faithfulness) if not pending else next(iter(scores)),
                         operator=self.operator, truncated=self.truncated,
                         seconds={k: round(v, 4) for k, v in self.seconds.items()}, pending=pending)

    @contextmanager
    def clock(self, name: str) -> Iterator[None]:
        """Adds the block's wall time to ``seconds[name]``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _gradients_run_the_prediction_model(predictor: Predictor) -> bool:
    """Whether ``Predictor.gradient_forward`` is the prediction model itself (it swaps only fp16 weights for an
    fp32 copy): then integrated gradients' unperturbed forward computes the prediction's very numbers."""
    return predictor.precision != "fp16"


def _target(predictor: Predictor, target: str | None, probs: np.ndarray) -> str:
    """The class to explain: ``target``, or the most probable one (multi-label: the label with the highest
    sigmoid, whether or not it reaches its threshold)."""
    if target is None:
        return predictor.labels[int(np.argmax(probs))]
    if target not in predictor.labels:
        kind = "label" if predictor.multi_label else "class"
        raise ValueError(f"Unknown {kind} {target!r}. Choose one of: {', '.join(predictor.labels)}.")
    return target
