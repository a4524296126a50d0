"""The texts a model pretrains on, turned into what the loop feeds it.

- ``read_texts``: a file's text column (labels, when there are any, are ignored), cleaned and deduplicated.
- ``split_texts``: a seeded held-out share for the held-out MLM loss and accuracy.
- ``pack``: texts tokenized and concatenated, then cut into full ``max_length`` sequences, each
  ``[CLS] … [SEP]``, texts separated by ``[SEP]``. Short texts padded one by one waste most of each batch (a
  tweet is 20 word-pieces of 128); packed, every position is a real token (RoBERTa's FULL-SENTENCES input).
  With ``isolate``, each sequence also says which text each position belongs to (``text_index``) and where in
  its text it stands (``position_ids``, from 1 after ``[CLS]`` as fine-tuning numbers a text), so that the
  collator can let each text attend only to itself: packed titles then learn as if they were apart (measured
  in bench/RESULTS.md: unrelated neighbours kept a small model on the unigram plateau).
- ``sentence_pairs``: for next-sentence prediction, ``[CLS] A [SEP] B [SEP]`` with B the sentence that follows A in
  its text half of the time and a sentence of another text otherwise (BERT's recipe; not packed).
"""
from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

MIN_TEXTS = 20  # fewer cannot give a vocabulary, a held-out share and batches worth a loss curve
SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s*")
TEXT_COLUMNS = ("text", "sentence", "content", "title", "review", "question", "document")


def read_texts(source: str | Path | pd.DataFrame, text_col: str = "") -> list[str]:
    """The texts of a CSV/TSV/Excel/JSON file (or a table) as a list: its ``text_col``, or the one column named
    like text, or its only column. Empty and repeated texts are dropped."""
    from bertdemo.data.tables import read_table

    table = source if isinstance(source, pd.DataFrame) else read_table(source)
    column = text_col or _text_column(table)
    if column not in table.columns:
        raise ValueError(f"No column {column!r} in this file: its columns are {', '.join(map(str, table.columns))}. "
                         "Name the text column (--text-col, or the Text column box).")
    texts = [str(t).strip() for t in table[column].dropna().tolist()]
    return list(dict.fromkeys(t for t in texts if t))


def _text_column(table: pd.DataFrame) -> str:
    columns = [str(c) for c in table.columns]
    for name in TEXT_COLUMNS:
        for column in columns:
            if column.strip().lower() == name:
                return column
    if len(columns) == 1:
        return columns[0]
    textual = [c for c in columns if table[c].dtype == object]
    if not textual:
        raise ValueError("This file has no column of text. Give a file with a text column (--text-col names it).")
    # the column with the longest texts on average: a label column is short
    return max(textual, key=lambda c: table[c].astype(str).str.len().mean())


def check_texts(texts: Sequence[str]) -> None:
    if len(texts) < MIN_TEXTS:
        raise ValueError(f"Too few texts to pretrain on: {len(texts)} different non-empty texts; pretraining needs "
                         f"at least {MIN_TEXTS} (a few thousand to learn much). Give a bigger file, or fine-tune the "
                         "embedded default model instead.")


def fingerprint(texts: Sequence[str]) -> str:
    """A short hash of the texts in order: the model card says which texts made the model."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def split_texts(texts: Sequence[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held out): a seeded ``share`` of the texts (at least 4, at most 2,000) held out."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    n = min(2000, max(4, round(share * len(texts))))
    held = set(order[:n])
    return [t for i, t in enumerate(texts) if i not in held], [t for i, t in enumerate(texts) if i in held]


def pack(texts: Sequence[str], tokenizer, max_length: int, *, offsets: bool = False,
         isolate: bool = False) -> list[dict]:
    """Full sequences of ``max_length`` word-pieces (the last one shorter) made of the texts end to end; with
    ``isolate``, each also has ``text_index`` and ``position_ids`` per position (see the module's docstring)."""
    body = max_length - 2
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=body * 4,
                        return_offsets_mapping=offsets)
    sep, cls = tokenizer.sep_token_id, tokenizer.cls_token_id
    ids: list[int] = []
    spans: list[tuple[int, int]] = []
    for i, piece_ids in enumerate(encoded["input_ids"]):
        if ids:
            ids.append(sep)
            spans.append((0, 0))
        ids.extend(piece_ids)
        if offsets:
            spans.extend(tuple(o) for o in encoded["offset_mapping"][i])
    sequences = []
    for start in range(0, len(ids), body):
        chunk = ids[start:start + body]
        if len(chunk) < 8 and sequences:  # a few pieces left over: not worth a sequence
            break
        sequence = {"input_ids": [cls, *chunk, sep], "special_tokens_mask": [1, *(int(t == sep) for t in chunk), 1]}
        if offsets:
            sequence["offset_mapping"] = [(0, 0), *spans[start:start + body], (0, 0)]
        if isolate:
            sequence.update(_text_positions(sequence["input_ids"], sep))
        sequences.append(sequence)
    return sequences


def _text_positions(ids: list[int], sep: int) -> dict:
    """Which text each position of a packed sequence belongs to, and its place in that text. A text's closing
    [SEP] is its own, as in fine-tuning's ``[CLS] text [SEP]``; [CLS] belongs to the first text."""
    index, positions, text, place = [], [], 0, 0
    for i, token in enumerate(ids):
        index.append(text)
        positions.append(place)
        place += 1
        if token == sep and i < len(ids) - 1:
            text, place = text + 1, 1
    return {"text_index": index, "position_ids": positions}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def sentence_pairs(texts: Sequence[str], tokenizer, max_length: int, seed: int) -> list[dict]:
    """NSP examples from every text with two or more sentences: a true next sentence or a random one, 50/50."""
    rng = random.Random(seed)
    split = [sentences(t) for t in texts]
    pool = [(i, s) for i, parts in enumerate(split) for s in parts]
    pairs = []
    for i, parts in enumerate(split):
        for a, b in zip(parts, parts[1:]):
            if rng.random() < 0.5 or len(split) < 2:
                pairs.append((a, b, 0))  # 0: B follows A (transformers' convention)
            else:
                other = pool[rng.randrange(len(pool))]
                while other[0] == i:
                    other = pool[rng.randrange(len(pool))]
                pairs.append((a, other[1], 1))
    if len(pairs) < MIN_TEXTS:
        have = sum(1 for parts in split if len(parts) > 1)
        raise ValueError(f"Next-sentence prediction needs texts of two or more sentences: {have} of your "
                         f"{len(texts)} texts have them ({len(pairs)} pairs; at least {MIN_TEXTS} needed). Use the "
                         "objective mlm for short texts such as titles or tweets.")
    encoded = tokenizer([a for a, _, _ in pairs], [b for _, b, _ in pairs], truncation="longest_first",
                        max_length=max_length, return_special_tokens_mask=True, return_token_type_ids=True)
    return [{"input_ids": encoded["input_ids"][k], "token_type_ids": encoded["token_type_ids"][k],
             "special_tokens_mask": encoded["special_tokens_mask"][k], "next_sentence_label": label}
            for k, (_, _, label) in enumerate(pairs)]
