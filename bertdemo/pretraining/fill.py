"""Fill the mask: a sentence with a word (or a Chinese character) marked, and the model's top guesses for it.

Mark with square brackets: ``the [cat] sat on the mat`` masks "cat" (all its word-pieces, each guessed), and a
literal ``[MASK]`` is a blank with no answer to compare. ``load_fill_model`` caches a folder's model by its
modification time, so a box that reads a running job's latest snapshot sees new weights after each evaluation.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

import torch

MARK = re.compile(r"\[([^\[\]]+)\]")
MAX_BLANKS = 8
HOW_TO = ("Mark the word to hide with square brackets, e.g. “the [cat] sat on the mat” (or “我爱北[京]”), or type "
          "[MASK] for a blank.")

_cache: dict[str, tuple[float, object, object]] = {}
_lock = threading.Lock()


def load_fill_model(folder: str | Path):
    """(model, tokenizer) of a masked-LM folder, in eval mode; loaded again when the folder changed."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    folder = Path(folder)
    key = str(folder.resolve())
    stamp = max((p.stat().st_mtime for p in folder.iterdir()), default=0.0) if folder.is_dir() else 0.0
    with _lock:
        if key in _cache and _cache[key][0] == stamp:
            return _cache[key][1], _cache[key][2]
        model = AutoModelForMaskedLM.from_pretrained(folder, attn_implementation="sdpa", use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model.eval()
        if len(_cache) > 4:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (stamp, model, tokenizer)
        return model, tokenizer


def fill_mask(model, tokenizer, text: str, k: int = 5) -> list[dict]:
    """One entry per blank, in order: {"answer": the hidden word-piece or None, "guesses": [(piece, p)] top ``k``,
    "rank": the answer's rank (1 = top) or None}. A ``ValueError`` says how to mark a word."""
    text = (text or "").strip()
    if not text:
        raise ValueError("Type a sentence first. " + HOW_TO)
    if len(text) > 2000:
        raise ValueError(f"That is {len(text):,} characters; fill-the-mask takes a sentence or two (up to 2,000).")
    mask = tokenizer.mask_token
    answers: list[str | None] = []
    pieces: list[str] = []
    last = 0
    for found in MARK.finditer(text):
        pieces.append(text[last:found.start()])
        word = found.group(1).strip()
        if word.upper() == "MASK" or word == mask:
            answers.append(None)
            pieces.append(f" {mask} ")
        else:
            parts = tokenizer.tokenize(word)
            if not parts:
                raise ValueError(f"“{word}” has no word-pieces in this model's vocabulary. " + HOW_TO)
            answers.extend(parts)
            pieces.append(" " + " ".join([mask] * len(parts)) + " ")
        last = found.end()
    pieces.append(text[last:])
    if not answers:
        raise ValueError("Nothing is marked. " + HOW_TO)
    if len(answers) > MAX_BLANKS:
        raise ValueError(f"{len(answers)} word-pieces are masked; mark at most {MAX_BLANKS} at a time.")
    encoded = tokenizer("".join(pieces), return_tensors="pt", truncation=True,
                        max_length=min(512, getattr(model.config, "max_position_embeddings", 512)))
    positions = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    if len(positions) < len(answers):
        raise ValueError("The marked word is past the part of the text this model reads: mark one nearer the start.")
    with torch.no_grad():
        logits = model(**encoded).logits[0, positions].float()
    probs = logits.softmax(-1)
    vocab_ids = {p: tokenizer.convert_tokens_to_ids(p) for p in answers if p is not None}
    out = []
    for row, answer in zip(probs, answers):
        top = row.topk(k)
        guesses = [(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(top.values, top.indices)]
        rank = None
        if answer is not None and vocab_ids.get(answer) is not None:
            rank = int((row > row[vocab_ids[answer]]).sum()) + 1
        out.append({"answer": answer, "guesses": guesses, "rank": rank})
    return out
