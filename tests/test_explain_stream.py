"""The streamed explanation: integrated gradients first and before any score, the final item equal to what
``explain`` computed before it streamed (kept below, verbatim, as the reference), and the shared passes forwarded
once (counted at ``Predictor.predict_proba_ids``)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau

import bertdemo.explain.methods as methods_module
from bertdemo.explain.attention import attention
from bertdemo.explain.attributions import attributions
from bertdemo.explain.faithfulness import BINS, RANDOM_ORDERS, DeletionTest, bin_sizes, most_comprehensive
from bertdemo.explain.methods import FAITHFULNESS, METHODS, explain, explain_stream

TEXT = "heavy rain and thunder over the football match tonight"


@pytest.fixture(scope="module")
def predictor(tiny_run):
    from bertdemo.inference.predict import Predictor

    # fp32: on a CPU with bf16 the auto choice is bf16, whose rounding differs with the batch's shape, and the
    # streamed passes are batched differently from the code before them by design
    return Predictor.from_run(tiny_run, precision="fp32")


class Recorder:
    """Wraps ``predictor.predict_proba_ids``: every sequence of every call, in order."""

    def __init__(self, predictor, monkeypatch):
        self.calls: list[list[tuple[int, ...]]] = []
        original = predictor.predict_proba_ids

        def recorded(sequences, *args, **kwargs):
            self.calls.append([tuple(s) for s in sequences])
            return original(sequences, *args, **kwargs)

        monkeypatch.setattr(predictor, "predict_proba_ids", recorded)

    @property
    def sequences(self) -> list[tuple[int, ...]]:
        return [s for call in self.calls for s in call]


def test_integrated_gradients_come_first_and_before_any_score(predictor, monkeypatch):
    forwards = Recorder(predictor, monkeypatch)
    stream = explain_stream(predictor, TEXT)
    first = next(stream)
    assert list(first.scores) == ["integrated_gradients"] and first.shown_first == "integrated_gradients"
    assert first.faithfulness == {} and first.provisional
    assert first.pending == ("grad_x_input", "attention_cls", "rollout_cls", "occlusion", FAITHFULNESS)
    assert forwards.calls == []  # no perturbation pass yet: its probabilities are integrated gradients' own forward
    rest = list(stream)
    assert [list(r.scores) for r in rest] == [["integrated_gradients", "grad_x_input", "attention_cls", "rollout_cls"],
                                              list(METHODS), list(METHODS)]
    assert [r.pending for r in rest] == [("occlusion", FAITHFULNESS), (FAITHFULNESS,), ()]
    assert all(r.faithfulness == {} and r.shown_first == "integrated_gradients" for r in rest[:-1])
    final = rest[-1]
    assert not final.provisional and list(final.faithfulness) == list(METHODS)
    assert final.shown_first == most_comprehensive(final.faithfulness)
    np.testing.assert_array_equal(first.scores["integrated_gradients"], final.scores["integrated_gradients"])
    assert first.probabilities == final.probabilities


@pytest.mark.parametrize("kwargs", [{}, {"operator": "mask", "seed": 3},
                                    {"methods": ["occlusion", "rollout_cls"], "target": "food"},
                                    {"methods": ["grad_x_input", "attention_cls"]}])
def test_the_streamed_result_equals_the_one_computed_before_streaming(predictor, kwargs):
    """Same words, same scores and faithfulness, to float rounding: integrated gradients, attention and occlusion
    run exactly as before; gradient×input comes off integrated gradients' last point and the perturbation passes
    are batched differently, which moves fp32 rounding (~1e-8), not the numbers."""
    new = explain(predictor, TEXT, **kwargs)
    old = _explain_before_streaming(predictor, TEXT, **kwargs)
    assert (new.tokens, new.special, new.word_ids, new.target) == (old["tokens"], old["special"], old["word_ids"],
                                                                   old["target"])
    assert new.operator == old["operator"] and new.truncated == old["truncated"]
    assert list(new.scores) == list(old["scores"]) and list(new.faithfulness) == list(old["faithfulness"])
    assert new.probabilities == pytest.approx(old["probabilities"], abs=1e-6)
    for name, scores in old["scores"].items():
        exact = name != "grad_x_input"  # the others run the very same computation as before
        np.testing.assert_allclose(new.scores[name], scores, rtol=0 if exact else 1e-4, atol=0 if exact else 1e-6)
        f, g = new.faithfulness[name], old["faithfulness"][name]
        for field in ("comprehensiveness", "sufficiency", "random_comprehensiveness", "random_sufficiency"):
            assert getattr(f, field) == pytest.approx(getattr(g, field), abs=1e-6), (name, field)
        assert (f.tau_occlusion is None) == (g.tau_occlusion is None)
        assert g.tau_occlusion is None or f.tau_occlusion == pytest.approx(g.tau_occlusion, abs=1e-9)
        np.testing.assert_allclose(f.curve, g.curve, atol=1e-6)
        np.testing.assert_allclose(f.random_curve, g.random_curve, atol=1e-6)
        assert f.bins == g.bins
    assert new.shown_first == old["shown_first"]


def test_shared_passes_are_forwarded_once(predictor, monkeypatch):
    ids = predictor.encode([TEXT])["input_ids"][0].tolist()
    forwards = Recorder(predictor, monkeypatch)

    def no_second_gradient(*args, **kwargs):
        raise AssertionError("gradient×input must come off integrated gradients' path, not a pass of its own")

    monkeypatch.setattr(methods_module, "attributions", no_second_gradient)
    result = explain(predictor, TEXT)
    sent = forwards.sequences
    assert len(sent) == len(set(sent))  # no sequence twice, the unperturbed text included
    pieces = sum(not s for s in result.special)
    assert len(forwards.calls[0]) == 1 + pieces  # occlusion's own call; then the scores, grouped by length
    test = DeletionTest(ids, result.special, predictor.labels.index(result.target))
    randoms = {tuple(s) for order in test.random_orders for s in test.sequences(order)}
    assert randoms <= set(sent)  # each random ordering's sequences, forwarded once for all five methods
    before = (1 + pieces) + (1 + 2 * len(bin_sizes(pieces)) * (len(METHODS) + RANDOM_ORDERS)) + 1
    assert len(sent) < before - len(METHODS)  # the old path's count, less at least the first bins occlusion had


# what explain() computed before it streamed (commit 4a6c0fd), only the public building blocks it used


def _explain_before_streaming(predictor, text, *, target=None, methods=METHODS, operator="deletion", seed=0):
    ig = attributions(predictor, text, target=target, method="integrated_gradients") \
        if "integrated_gradients" in methods else None
    first = ig or attributions(predictor, text, target=target, method="grad_x_input")
    target_id = predictor.labels.index(first.target)
    ids = predictor.encode([text])["input_ids"][0].tolist()
    scores = {}
    if ig is not None:
        scores["integrated_gradients"] = np.asarray(ig.scores)
    for name in methods:
        if name in scores:
            continue
        if name == "grad_x_input":
            scores[name] = np.asarray(first.scores if first.method == name else
                                      attributions(predictor, text, target=first.target, method=name).scores)
        elif name == "occlusion":
            scores[name] = _occlusion(predictor, ids, first.special, target_id, operator)
        elif name in ("attention_cls", "rollout_cls"):
            result = attention(predictor, text)
            if "attention_cls" in methods:
                scores["attention_cls"] = result.weights[-1, :, 0, :].mean(axis=0)
            if "rollout_cls" in methods:
                scores["rollout_cls"] = result.rollout[0]
    scores = {name: scores[name] for name in methods}
    scored = _faithfulness(predictor, ids, first.special, target_id, scores, operator, seed, scores.get("occlusion"))
    probs = predictor.predict_proba_ids([ids])[0]
    return {"tokens": first.tokens, "special": first.special, "word_ids": first.word_ids, "target": first.target,
            "probabilities": {label: float(p) for label, p in zip(predictor.labels, probs)}, "scores": scores,
            "faithfulness": scored, "shown_first": most_comprehensive(scored), "operator": operator,
            "truncated": first.truncated}


def _occlusion(predictor, ids, special, target, operator):
    positions = [i for i, s in enumerate(special) if not s]
    probs = predictor.predict_proba_ids([list(ids)] + [_perturb(ids, {i}, operator, predictor)
                                                       for i in positions])[:, target]
    scores = np.zeros(len(ids))
    scores[positions] = probs[0] - probs[1:]
    return scores


def _faithfulness(predictor, ids, special, target, methods, operator, seed, occlusion):
    from bertdemo.explain.faithfulness import Faithfulness

    positions = np.array([i for i, s in enumerate(special) if not s])
    sizes = []
    for share in BINS:
        k = min(len(positions), max(1, math.ceil(share * len(positions) - 1e-9)))
        if not sizes or k != sizes[-1]:
            sizes.append(k)
    rng = np.random.default_rng(seed)
    orders = {name: positions[np.argsort(-np.asarray(s, dtype=float)[positions], kind="stable")]
              for name, s in methods.items()}
    plans = [*orders.values(), *[rng.permutation(positions) for _ in range(RANDOM_ORDERS)]]
    sequences = [list(ids)]
    for order in plans:
        for k in sizes:
            top = set(order[:k].tolist())
            sequences.append(_perturb(ids, top, operator, predictor))
            sequences.append(_perturb(ids, set(positions.tolist()) - top, operator, predictor))
    probs = predictor.predict_proba_ids(sequences)[:, target]
    full, rest = float(probs[0]), probs[1:].reshape(len(plans), len(sizes), 2)
    comp, suff = full - rest[:, :, 0], full - rest[:, :, 1]
    random_curve = [full] + rest[len(orders):, :, 0].mean(axis=0).astype(float).tolist()
    if occlusion is None:
        occlusion = _occlusion(predictor, ids, special, target, operator)
    out = {}
    for n, (name, s) in enumerate(methods.items()):
        out[name] = Faithfulness(comprehensiveness=float(comp[n].mean()), sufficiency=float(suff[n].mean()),
                                 random_comprehensiveness=float(comp[len(orders):].mean()),
                                 random_sufficiency=float(suff[len(orders):].mean()),
                                 tau_occlusion=None if s is occlusion else _tau(s, occlusion, positions),
                                 curve=[full] + rest[n, :, 0].astype(float).tolist(), random_curve=random_curve,
                                 bins=[0] + sizes)
    return out


def _perturb(ids, positions, operator, predictor):
    if operator == "deletion":
        return [token for i, token in enumerate(ids) if i not in positions]
    return [predictor.tokenizer.mask_token_id if i in positions else token for i, token in enumerate(ids)]


def _tau(scores, occlusion, positions):
    a, b = np.asarray(scores, dtype=float)[positions], np.asarray(occlusion, dtype=float)[positions]
    if len(positions) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    tau = kendalltau(a, b).statistic
    return None if tau is None or np.isnan(tau) else float(tau)
