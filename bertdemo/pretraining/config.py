"""Pretraining configuration: one frozen dataclass shared by the app, the CLI, the lesson and the tests."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

SCRATCH = "scratch"  # a new BERT with a WordPiece vocabulary learned from the texts
OBJECTIVES = ("mlm", "mlm+nsp")
# (layers, hidden, heads): small enough for a CPU. Tiny and mini as in Turc et al. 2019's compact BERTs.
SIZES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8)}


@dataclass(frozen=True)
class PretrainConfig:
    start: str = SCRATCH  # "scratch", or a model to go on pretraining: "default", a hub id, a folder
    size: str = "tiny"  # a key of SIZES (scratch only); layers/hidden/heads below override it. tiny: the one that
    # leaves the unigram plateau within 5 minutes on 2 CPU cores (bench/RESULTS.md); mini and small want a GPU
    layers: int = 0  # 0: the size's
    hidden: int = 0
    heads: int = 0
    objective: str = "mlm"  # "mlm", or "mlm+nsp" (next-sentence prediction on sentence pairs from the texts)
    whole_word_mask: bool = False  # mask all pieces of a word together (needs a tokenizer with word boundaries)
    mask_probability: float = 0.15  # BERT's share of tokens chosen; of those 80% [MASK], 10% random, 10% kept
    minutes: float = 5.0  # the time budget: the learning-rate schedule ends when it does. 0: max_steps decides
    epochs: int = 40  # at most this many passes over the texts (the budget usually ends sooner); 0: no cap
    max_steps: int = 0  # 0: no step limit
    batch_size: int = 8  # sequences per step: 8 × 128 word-pieces; small budgets gain more from steps than tokens
    learning_rate: float = 0.0  # 0: 1e-3 from scratch (small BERTs take a high rate), 1e-4 continuing
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06  # share of the budget spent warming the rate up
    max_length: int = 128  # word-pieces per packed sequence
    isolate_texts: bool = True  # packed texts attend only to themselves, positions restarting per text (BERTs)
    vocab_size: int = 8000  # scratch vocabulary cap
    held_out: float = 0.05  # share of the texts kept aside for the held-out MLM loss and accuracy
    evals: int = 10  # held-out evaluations over the run (also when the fill-the-mask box sees new weights)
    seed: int = 42
    precision: str = "auto"  # as in training: bf16 where the device does it natively, else fp32

    def __post_init__(self) -> None:
        problems = []
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {', '.join(OBJECTIVES)} (got {self.objective!r})")
        if self.start == SCRATCH and self.size not in SIZES:
            problems.append(f"unknown size {self.size!r}: use one of {', '.join(SIZES)}, or give layers, hidden "
                            "and heads")
        for name in ("minutes", "mask_probability", "held_out", "learning_rate", "warmup_ratio"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                problems.append(f"{name} must be a number (got {value!r})")
        if not problems:
            if self.minutes < 0 or self.minutes > 24 * 60:
                problems.append(f"minutes must be between 0 and {24 * 60} (got {self.minutes})")
            if self.minutes == 0 and self.max_steps <= 0:
                problems.append("a budget of 0 minutes trains nothing: give minutes (5, say), or a number of "
                                "steps (max_steps)")
            if not 0 < self.mask_probability < 1:
                problems.append(f"mask_probability must be between 0 and 1 (got {self.mask_probability})")
            if not 0 < self.held_out < 0.5:
                problems.append(f"held_out must be between 0 and 0.5 (got {self.held_out})")
        for name in ("epochs", "max_steps", "layers", "hidden", "heads", "batch_size", "max_length", "evals"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append(f"{name} must be a whole number ≥ 0 (got {value!r})")
        if not problems:
            if self.batch_size < 1 or self.max_length < 16 or self.evals < 1:
                problems.append("batch_size must be ≥ 1, max_length ≥ 16 and evals ≥ 1")
            layers, hidden, heads = self.shape()
            if self.start == SCRATCH and (hidden % heads or not 1 <= layers <= 24 or not 16 <= hidden <= 2048):
                problems.append(f"{layers} layers × hidden {hidden} × {heads} heads is not a BERT shape: hidden "
                                "must be a multiple of heads, layers 1–24, hidden 16–2048")
        if problems:
            raise ValueError("Invalid pretraining settings: " + "; ".join(problems) + ".")

    def shape(self) -> tuple[int, int, int]:
        """(layers, hidden, heads) of a scratch model: the size's, with the explicit numbers put in."""
        layers, hidden, heads = SIZES.get(self.size, SIZES["mini"])
        return self.layers or layers, self.hidden or hidden, self.heads or heads

    def peak_lr(self) -> float:
        return self.learning_rate or (1e-3 if self.start == SCRATCH else 1e-4)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
