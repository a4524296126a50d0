"""The limits a shared server needs, in one place: how big a file, how many rows, classes and characters, how long
a text to predict, how large a batch, how many epochs, how long a job, and how many jobs one user may have. (The
run's max_length bounds how many word-pieces an explanation looks at.)

Every limit is checked before the expensive work it guards, and its message names the limit and how to raise it.
Each can be overridden by an environment variable (``BERTDEMO_LIMIT_MAX_FILE_MB=200``) or, for ``app.py`` and the
CLI, by ``--limit max_file_mb=200``; ``Limits.current()`` is what the engine applies.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

ENV_PREFIX = "BERTDEMO_LIMIT_"


@dataclass(frozen=True)
class Limits:
    max_file_mb: float = 50.0  # an uploaded or read CSV/TSV; it is refused before it is read
    max_rows: int = 200_000  # data rows in one file
    max_cell_chars: int = 20_000  # characters in one cell (a text); a longer text is cut to it and counted in the
    # data report, and a file whose rows mostly hold such cells is refused
    max_classes: int = 100  # distinct labels in training data
    max_length: int = 512  # word-pieces per text in training (BERT's position table holds 512)
    max_batch_size: int = 256  # examples per training step
    max_epochs: int = 50  # passes over the data in one run
    max_job_minutes: float = 30.0  # a training job is stopped (best checkpoint kept) after this long
    max_jobs_per_user: int = 1  # training jobs one user (or browser session) may have queued or running at once
    max_text_chars: int = 10_000  # characters of one text to predict or explain

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"Limit {field.name} must be a positive number (got {value!r}); set it with "
                                 f"{ENV_PREFIX}{field.name.upper()} or --limit {field.name}=VALUE.")

    @classmethod
    def current(cls) -> "Limits":
        """The defaults, with any ``BERTDEMO_LIMIT_*`` environment variables applied."""
        values = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field, raw)
        return cls(**values)

    def check_training(self, config) -> None:
        """Refuse training settings beyond the limits (``config``: a ``TrainConfig``)."""
        problems = [f"{field} {getattr(config, field)} is above {getattr(self, name):g} "
                    f"{self.hint(name)}"
                    for field, name in (("batch_size", "max_batch_size"), ("epochs", "max_epochs"),
                                        ("max_length", "max_length")) if getattr(config, field) > getattr(self, name)]
        if problems:
            raise ValueError("Training settings over this server's limits: " + "; ".join(problems) + ".")

    def check_pretraining(self, config) -> None:
        """Refuse pretraining settings beyond the limits (``config``: a ``PretrainConfig``): those of training, and a
        time budget longer than one job may run (the job would be cut off before its schedule ends)."""
        self.check_training(config)
        if config.minutes > self.max_job_minutes:
            raise ValueError(f"A pretraining budget of {config.minutes:g} minutes is longer than one job may run on "
                             f"this server {self.hint('max_job_minutes')}. Choose {self.max_job_minutes:g} minutes "
                             "or fewer.")

    def check_text(self, text) -> str:
        """The text to predict or explain, refused when empty or longer than ``max_text_chars``."""
        text = "" if text is None else str(text)
        if not text.strip():
            raise ValueError("The text is empty. Type a sentence to classify.")
        if len(text) > self.max_text_chars:
            raise ValueError(f"The text has {len(text):,} characters; texts of up to {self.max_text_chars:,} are "
                             f"classified and explained {self.hint('max_text_chars')}. Shorten it.")
        return text

    def hint(self, name: str) -> str:
        """How to raise the limit ``name``: the words every limit message ends with."""
        return (f"(limit {name} = {getattr(self, name):g}; the server's operator can raise it with "
                f"{ENV_PREFIX}{name.upper()} or --limit {name}=VALUE)")


def apply_overrides(pairs: list[str]) -> None:
    """Apply ``--limit NAME=VALUE`` flags by setting their environment variables (children inherit them too)."""
    known = {f.name: f for f in dataclasses.fields(Limits)}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise ValueError(f"--limit takes NAME=VALUE with NAME one of {', '.join(known)} (got {pair!r}).")
        _parse(known[name], raw)
        os.environ[ENV_PREFIX + name.upper()] = raw.strip()
    Limits.current()  # refuse a bad value now, not at the first upload


def _parse(field, raw: str):
    kind = type(field.default)
    try:
        return kind(float(raw)) if kind is int and float(raw) == int(float(raw)) else kind(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{field.name.upper()}={raw!r} is not a number.") from None
