"""Faithfulness scores: known answers on a model whose decision rests on one word-piece, the AOPC bins, deletion
against [MASK], one batched forward against one at a time, and every method scored on a real (tiny) model."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bertdemo.explain.faithfulness import (PADDING_SHARE, RANDOM_ORDERS, bin_sizes, by_length, faithfulness,
                                           most_comprehensive, occlusion_scores)

CLS, SEP, MASK, KEY = 101, 102, 103, 777


class OneTokenModel:
    """p(class 1) = 0.9 when word-piece KEY is in the input, else 0.1: a model that rests on one piece."""

    labels = ("no", "yes")
    tokenizer = SimpleNamespace(mask_token_id=MASK, pad_token_id=0)

    def __init__(self):
        self.calls = []

    def predict_proba_ids(self, sequences):
        self.calls.append([tuple(s) for s in sequences])
        p = np.array([0.9 if KEY in s else 0.1 for s in sequences])
        return np.stack([1 - p, p], axis=1)


def _text(n: int, key_at: int) -> tuple[list[int], list[bool]]:
    pieces = [2000 + i for i in range(n)]
    pieces[key_at] = KEY
    ids = [CLS, *pieces, SEP]
    return ids, [True] + [False] * n + [True]


def test_the_piece_the_model_rests_on_gives_full_comprehensiveness_and_random_less():
    model = OneTokenModel()
    ids, special = _text(20, key_at=7)
    right = np.zeros(len(ids))
    right[8] = 5.0  # the KEY piece (position 8: after [CLS]) ranked first
    wrong = np.arange(len(ids), dtype=float)  # KEY last among the pieces
    wrong[8] = -1.0
    scored = faithfulness(model, ids, special, 1, {"right": right, "wrong": wrong})
    assert scored["right"].comprehensiveness == pytest.approx(0.8)  # every bin removes KEY: 0.9 -> 0.1
    assert scored["right"].sufficiency == pytest.approx(0.0)  # keeping the top pieces keeps KEY
    assert scored["wrong"].comprehensiveness < scored["right"].random_comprehensiveness < 0.8
    assert scored["right"].beats_random and not scored["wrong"].beats_random
    assert most_comprehensive(scored) == "right"
    scored_calls, occlusion_call = model.calls[:-1], model.calls[-1]  # occlusion (for τ) comes last, alone
    assert len(occlusion_call) == 1 + 20
    sent = [s for call in scored_calls for s in call]
    assert len(sent) == len(set(sent))  # every distinct sequence once, in calls of similar lengths:
    assert 2 * len(bin_sizes(20)) * 2 < len(sent) <= 1 + 2 * len(bin_sizes(20)) * (2 + RANDOM_ORDERS)
    assert set(sent) >= {tuple(ids[:8] + ids[9:]), (CLS, KEY, SEP)}  # "right"'s first bin, both ways
    assert [len(call[0]) for call in scored_calls] == sorted(len(call[0]) for call in scored_calls)
    assert scored["right"].curve[0] == pytest.approx(0.9) and scored["right"].curve[1] == pytest.approx(0.1)


def test_bins_on_short_texts():
    assert bin_sizes(3) == [1, 2]  # 1, 5, 10, 20% all round up to one piece: only the first counts; 50% is 2
    assert bin_sizes(1) == [1]
    assert bin_sizes(100) == [1, 5, 10, 20, 50]
    assert bin_sizes(0) == []
    model = OneTokenModel()
    ids, special = _text(3, key_at=0)
    scores = np.array([0.0, 3.0, 2.0, 1.0, 0.0])
    result = faithfulness(model, ids, special, 1, {"m": scores})["m"]
    assert result.bins == [0, 1, 2]
    # the text, (comprehensiveness, sufficiency) × bins × orders, each distinct one once: 3 pieces repeat a lot
    sent = [s for call in model.calls[:-1] for s in call]
    assert len(sent) == len(set(sent)) <= 1 + 2 * 2 * (1 + RANDOM_ORDERS)


def test_special_tokens_always_stay_and_mask_keeps_the_length():
    seen = []

    class Recorder(OneTokenModel):
        def predict_proba_ids(self, sequences):
            seen.extend(sequences)
            return super().predict_proba_ids(sequences)

    ids, special = _text(6, key_at=2)
    scores = np.linspace(1, 0, len(ids))
    for operator in ("deletion", "mask"):
        seen.clear()
        faithfulness(Recorder(), ids, special, 1, {"m": scores}, operator=operator)
        assert all(s[0] == CLS and s[-1] == SEP for s in seen)
        lengths = {len(s) for s in seen}
        assert lengths == {len(ids)} if operator == "mask" else len(lengths) > 1
        if operator == "mask":
            assert any(MASK in s for s in seen[1:])
    with pytest.raises(ValueError, match="operator"):
        faithfulness(OneTokenModel(), ids, special, 1, {"m": scores}, operator="drop")


def test_forward_groups_keep_padding_small():
    lengths = [3, 3, 4, 4, 30, 31, 33, 33, 34, 3]
    groups = by_length([[0] * n for n in lengths])
    assert [[len(s) for s in g] for g in groups] == [[3, 3, 3, 4, 4], [30, 31, 33, 33, 34]]
    for group in groups:
        width = max(map(len, group))
        assert sum(map(len, group)) >= (1 - PADDING_SHARE) * width * len(group)
    assert by_length([]) == [] and len(by_length([[0] * 5] * 100)) == 1  # equal lengths: one group


def test_occlusion_finds_the_piece():
    ids, special = _text(10, key_at=4)
    scores = occlusion_scores(OneTokenModel(), ids, special, 1)
    assert np.argmax(scores) == 5 and scores[5] == pytest.approx(0.8)
    assert scores[0] == scores[-1] == 0  # special tokens are never removed


def test_batched_probabilities_equal_one_at_a_time(tiny_run):
    from bertdemo.inference.predict import Predictor

    predictor = Predictor.from_run(tiny_run, precision="fp32")
    ids = predictor.encode(["the rain and the football match tonight"])["input_ids"][0].tolist()
    sequences = [ids, ids[:3] + ids[5:], [ids[0], ids[-1]], ids[:1] + [predictor.tokenizer.mask_token_id] + ids[2:]]
    together = predictor.predict_proba_ids(sequences)
    alone = np.concatenate([predictor.predict_proba_ids([s]) for s in sequences])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together[0], predictor.predict_proba(["the rain and the football match tonight"])[0],
                               atol=1e-5)


def test_every_method_scored_on_a_real_model(tiny_run):
    from bertdemo.explain.methods import METHODS, explain
    from bertdemo.inference.predict import get_predictor

    result = explain(get_predictor(tiny_run), "heavy rain and thunder over the football match")
    assert list(result.scores) == list(METHODS) and result.shown_first in METHODS
    for name in METHODS:
        assert result.scores[name].shape == (len(result.tokens),)
        f = result.faithfulness[name]
        assert -1 <= f.comprehensiveness <= 1 and -1 <= f.sufficiency <= 1
        assert f.random_comprehensiveness == result.faithfulness["occlusion"].random_comprehensiveness
    assert result.faithfulness["occlusion"].tau_occlusion is None
    assert result.faithfulness[result.shown_first].comprehensiveness == max(
        f.comprehensiveness for f in result.faithfulness.values())
    assert abs(sum(result.probabilities.values()) - 1) < 1e-4
    masked = explain(get_predictor(tiny_run), "heavy rain and thunder", methods=["occlusion"], operator="mask")
    assert masked.operator == "mask" and list(masked.scores) == ["occlusion"]
