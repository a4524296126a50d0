"""The word-pieces an explanation is about: encoding one text, which pieces are special, and which word each
piece belongs to, all asked of the tokenizer (no hard-coded [CLS]/[SEP]: other tokenizers name them otherwise)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bertdemo.inference.predict import Predictor
from bertdemo.limits import Limits


@dataclass(frozen=True)
class TokenView:
    tokens: list[str]  # word-pieces as the tokenizer produced them, special tokens included
    special: list[bool]  # the tokenizer's special tokens ([CLS], [SEP], …)
    word_ids: list[int | None]  # the word each piece belongs to; None for special tokens


def encode_one(predictor: Predictor, text: str) -> tuple[dict[str, torch.Tensor], bool]:
    """(the encoded batch of one text, whether it was longer than max_length and got cut)."""
    if not text or not str(text).strip():
        raise ValueError("The text is empty. Type a sentence to explain.")
    text = Limits.current().check_text(text)
    return predictor.encode([text]), predictor.count_tokens(text) > predictor.max_length


def token_view(predictor: Predictor, text: str, input_ids: Sequence[int]) -> TokenView:
    """The pieces of ``input_ids`` (one encoded ``text``), which are special, and their words."""
    ids = [int(i) for i in input_ids]
    tokens = predictor.tokenizer.convert_ids_to_tokens(ids)
    special = predictor.special_tokens_mask(ids)
    try:
        word_ids = predictor.word_ids(text)
    except ValueError:  # a slow (Python) tokenizer keeps no word ids: WordPiece's "##" marks continuations
        word_ids = _word_ids_from_pieces(tokens, special)
    if len(word_ids) != len(tokens):
        word_ids = _word_ids_from_pieces(tokens, special)
    return TokenView(tokens=tokens, special=special, word_ids=word_ids)


def word_spans(tokens: Sequence[str], scores: np.ndarray, *, special: Sequence[bool],
               word_ids: Sequence[int | None] | None = None,
               join: Callable[[list[str]], str] | None = None) -> list[tuple[str, float]]:
    """Merge word-pieces back into words, summing their scores; special tokens are dropped.

    Words come from the tokenizer's ``word_ids`` when given, else from WordPiece's "##" continuation marks;
    ``join`` turns a word's pieces into its text (default: drop the "##" and concatenate; pass the tokenizer's
    ``convert_tokens_to_string`` for other schemes)."""
    join = join or (lambda pieces: "".join(p[2:] if i and p.startswith("##") else p for i, p in enumerate(pieces)))
    word_ids = list(word_ids) if word_ids is not None else _word_ids_from_pieces(tokens, special)
    words: list[tuple[list[str], float]] = []
    last = None
    for token, score, is_special, word in zip(tokens, scores, special, word_ids):
        if is_special or word is None:
            last = None
            continue
        if words and word == last:
            pieces, total = words[-1]
            words[-1] = (pieces + [token], total + float(score))
        else:
            words.append(([token], float(score)))
        last = word
    return [(join(pieces), total) for pieces, total in words]


def _word_ids_from_pieces(tokens: Sequence[str], special: Sequence[bool]) -> list[int | None]:
    out: list[int | None] = []
    word = -1
    for token, is_special in zip(tokens, special):
        if is_special:
            out.append(None)
            continue
        if not (token.startswith("##") and word >= 0 and out and out[-1] is not None):
            word += 1
        out.append(word)
    return out
