"""Every explanation the app shows, on one text, with its faithfulness: the scores of each method per word-piece,
how faithful each is (``explain.faithfulness``), and which to show first (the most comprehensive).

Methods (``METHODS``): integrated gradients and gradient×input (``explain.attributions``), occlusion
(leave-one-out, ``explain.faithfulness``), last-layer [CLS] attention averaged over heads, and attention
rollout's [CLS] row (``explain.attention``). Attention weights are not signed evidence for a class: their scores
rank the pieces the [CLS] position draws on, whatever the class.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bertdemo.explain.attention import attention
from bertdemo.explain.attributions import attributions
from bertdemo.explain.faithfulness import Faithfulness, faithfulness, most_comprehensive, occlusion_scores
from bertdemo.inference.predict import Predictor

METHODS = ("integrated_gradients", "grad_x_input", "occlusion", "attention_cls", "rollout_cls")
TITLES = {"integrated_gradients": "integrated gradients", "grad_x_input": "gradient × input",
          "occlusion": "occlusion (leave one out)", "attention_cls": "last-layer [CLS] attention",
          "rollout_cls": "attention rollout, [CLS] row"}


@dataclass(frozen=True)
class Explained:
    tokens: list[str]
    special: list[bool]
    word_ids: list[int | None]
    probabilities: dict[str, float]
    target: str
    scores: dict[str, np.ndarray]  # method -> (T,) one score per word-piece, special tokens included
    faithfulness: dict[str, Faithfulness]
    shown_first: str  # the most comprehensive method on this text
    operator: str  # the removal operator the scores were measured with
    truncated: bool
    seconds: dict[str, float]  # time per method, and "faithfulness"

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "probabilities": self.probabilities, "target": self.target,
                "methods": {name: {"scores": [float(x) for x in self.scores[name]],
                                   "faithfulness": self.faithfulness[name].to_dict()} for name in self.scores},
                "shown_first": self.shown_first, "operator": self.operator, "truncated": self.truncated}


def explain(predictor: Predictor, text: str, *, target: str | None = None, methods: Sequence[str] = METHODS,
            operator: str = "deletion", seed: int = 0) -> Explained:
    """Score ``text`` with every method in ``methods`` toward ``target`` (default: the predicted class)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown explanation methods {', '.join(unknown) or '(none given)'}; use "
                         f"{', '.join(METHODS)}.")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    ig = attributions(predictor, text, target=target, method="integrated_gradients") \
        if "integrated_gradients" in methods else None
    seconds["integrated_gradients"] = time.perf_counter() - started
    first = ig or attributions(predictor, text, target=target, method="grad_x_input")
    target_id = predictor.labels.index(first.target)
    ids = predictor.encode([text])["input_ids"][0].tolist()
    scores: dict[str, np.ndarray] = {}
    if ig is not None:
        scores["integrated_gradients"] = np.asarray(ig.scores)
    for name in methods:
        if name in scores:
            continue
        started = time.perf_counter()
        if name == "grad_x_input":
            scores[name] = np.asarray(first.scores if first.method == name else
                                      attributions(predictor, text, target=first.target, method=name).scores)
        elif name == "occlusion":
            scores[name] = occlusion_scores(predictor, ids, first.special, target_id, operator=operator)
        elif name in ("attention_cls", "rollout_cls"):
            scores.update(_attention_scores(predictor, text, methods))
        seconds.setdefault(name, time.perf_counter() - started)
    scores = {name: scores[name] for name in methods}
    started = time.perf_counter()
    scored = faithfulness(predictor, ids, first.special, target_id, scores, operator=operator, seed=seed,
                          occlusion=scores.get("occlusion"))
    seconds["faithfulness"] = time.perf_counter() - started
    probs = predictor.predict_proba_ids([ids])[0]
    return Explained(tokens=first.tokens, special=first.special, word_ids=first.word_ids,
                     probabilities={label: float(p) for label, p in zip(predictor.labels, probs)}, target=first.target,
                     scores=scores, faithfulness=scored, shown_first=most_comprehensive(scored), operator=operator,
                     truncated=first.truncated, seconds={k: round(v, 4) for k, v in seconds.items()})


def _attention_scores(predictor: Predictor, text: str, methods: Sequence[str]) -> dict[str, np.ndarray]:
    result = attention(predictor, text)
    out = {}
    if "attention_cls" in methods:
        out["attention_cls"] = result.weights[-1, :, 0, :].mean(axis=0)  # (T,): last layer, [CLS] row, mean of heads
    if "rollout_cls" in methods:
        out["rollout_cls"] = result.rollout[0]
    return out
