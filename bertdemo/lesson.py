"""The lesson "what pretraining buys": the same fine-tuning, from three starting points, at several label counts.

Arms, each fine-tuned with the same settings and the same number of steps:
1. ``random``: the pretrained-here model's own shape and vocabulary with fresh random weights, so the only
   difference from arm 2 is the pretraining;
2. ``pretrained here``: masked-LM pretraining on every training text (labels unused), within ``pretrain_minutes``;
3. ``default``: the embedded pretrained all-MiniLM-L6-v2 (and ``extra_model``, a hub id or folder, when given).

The result is test accuracy against the number of labels, one line per arm: pretraining matters most where
labels are few. The steps run as a generator of typed events, so the CLI and the app show progress and Stop
works between fine-tunes.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bertdemo.config import DEFAULT_MODEL, TrainConfig
from bertdemo.events import DoneEvent, EvalEvent
from bertdemo.labeling.simulate import train_and_test
from bertdemo.pretraining import PretrainConfig, pretrain
from bertdemo.workspace import Workspace

RANDOM, HERE, DEFAULT = "random init", "pretrained here", "embedded default"
ALL = 0  # a label count meaning "every training row"


@dataclass(frozen=True)
class LessonConfig:
    labels: tuple[int, ...] = (100, 500, 2000)  # label counts; ALL (0) is every training row
    pretrain_minutes: float = 5.0  # the pretraining budget of arm 2 (the CLI's pretrain default)
    size: str = "tiny"  # arm 2's (and so arm 1's) shape: a key of pretraining's SIZES
    seeds: tuple[int, ...] = (0,)  # each seed draws its own labeled rows and fine-tunes every arm again
    test_rows: int = 1000  # a seeded sample of the test file keeps scoring short; 0 scores it all
    extra_model: str = ""  # a fourth arm: a Hugging Face id or folder (needs a network for a hub id)
    epochs: int = 3  # fine-tuning, the same for every arm
    learning_rate: float = 1e-4
    max_length: int = 64  # fine-tuning word-pieces per text
    min_steps: int = 300  # fine-tuning steps at least (TrainConfig's small-data floor), the same for every arm

    def __post_init__(self) -> None:
        problems = []
        if not self.labels or any(n < 0 or (0 < n < 10) for n in self.labels):
            problems.append(f"label counts must be 10 or more, or all (got {', '.join(map(str, self.labels))})")
        if not self.pretrain_minutes > 0:
            problems.append("pretrain_minutes must be more than 0: arm 2 needs some pretraining (5, say)")
        if not self.seeds:
            problems.append("give at least one seed")
        if self.epochs < 1 or self.test_rows < 0:
            problems.append("epochs must be at least 1 and test_rows 0 or more")
        if problems:
            raise ValueError("Lesson settings: " + "; ".join(problems) + ".")


@dataclass(frozen=True)
class LessonProgress:
    stage: str  # "pretraining" or "fine-tuning"
    message: str
    done: int  # fine-tunes finished (pretraining: 0)
    total: int  # fine-tunes in the lesson


@dataclass(frozen=True)
class LessonPoint:
    arm: str
    seed: int
    labels: int
    accuracy: float
    macro_f1: float
    seconds: float  # this fine-tune and its test scoring


@dataclass(frozen=True)
class LessonResult:
    table: dict  # see lesson_table
    pretrained: str  # arm 2's saved folder
    pretrain_metrics: dict  # its held-out masked-LM loss and accuracy, steps, tokens
    seconds: float  # the whole lesson


def lesson(train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str],
           test_labels: Sequence[str], config: LessonConfig = LessonConfig(), *,
           workspace: Workspace | str | Path | None = None, should_stop: Callable[[], bool] = lambda: False,
           ) -> Iterator[LessonProgress | LessonPoint | LessonResult]:
    """Pretrain on the training texts, then fine-tune every arm at every label count; yield progress, one
    point per fine-tune, and the result last (nothing more after Stop)."""
    started = time.perf_counter()
    counts = _label_counts(config.labels, len(train_texts))
    test_texts, test_labels = _sample_test(test_texts, test_labels, config.test_rows)
    arms = [RANDOM, HERE, DEFAULT] + ([config.extra_model] if config.extra_model else [])
    total = len(arms) * len(counts) * len(config.seeds)
    pretrained = None
    for event in pretrain(PretrainConfig(size=config.size, minutes=config.pretrain_minutes), list(train_texts),
                          should_stop, workspace, source="lesson"):
        if isinstance(event, EvalEvent):
            yield LessonProgress("pretraining", f"pretraining: held-out masked-LM loss {event.val_loss:.3f}, "
                                 f"masked-token accuracy {event.accuracy:.1%} at step {event.step}", 0, total)
        elif isinstance(event, DoneEvent):
            pretrained = event
    if pretrained is None or not pretrained.run_dir:
        return  # stopped before a model was saved
    points: list[LessonPoint] = []
    with tempfile.TemporaryDirectory(prefix="bertdemo-lesson-") as tmp:
        starts = {RANDOM: _random_twin(pretrained.run_dir, Path(tmp) / "random"), HERE: pretrained.run_dir,
                  DEFAULT: DEFAULT_MODEL}
        for seed in config.seeds:
            for n in counts:
                rows = _labeled_sample(train_texts, train_labels, n, seed)
                for arm in arms:
                    if should_stop():
                        return
                    yield LessonProgress("fine-tuning", f"fine-tuning {arm} on {len(rows):,} labels (seed {seed})",
                                         len(points), total)
                    points.append(_fine_tune(arm, starts.get(arm, arm), rows, test_texts, test_labels, config,
                                             seed))
                    yield points[-1]
    yield LessonResult(table=lesson_table(points), pretrained=pretrained.run_dir,
                       pretrain_metrics=dict(pretrained.metrics), seconds=round(time.perf_counter() - started, 1))


def parse_counts(text: str) -> tuple[int, ...]:
    """Label counts as people type them: "100, 500, all"."""
    counts = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part == "all":
            counts.append(ALL)
        elif part.isdigit():
            counts.append(int(part))
        else:
            raise ValueError(f'--labels takes numbers and "all", comma-separated (got {part!r}); e.g. 100,500,all')
    return tuple(counts)


def lesson_table(points: Sequence[LessonPoint]) -> dict:
    """{"labels": [counts], "arms": {arm: [mean accuracy per count]}, "macro_f1": {…}, "spread": {arm: [[min,
    max], …]}}: what the CLI prints and the plot draws."""
    counts = sorted({p.labels for p in points})
    table: dict = {"labels": counts, "arms": {}, "macro_f1": {}, "spread": {}}
    for arm in dict.fromkeys(p.arm for p in points):
        cells = [[p for p in points if p.arm == arm and p.labels == n] for n in counts]
        table["arms"][arm] = [round(float(np.mean([p.accuracy for p in c])), 4) if c else None for c in cells]
        table["macro_f1"][arm] = [round(float(np.mean([p.macro_f1 for p in c])), 4) if c else None for c in cells]
        table["spread"][arm] = [[min(p.accuracy for p in c), max(p.accuracy for p in c)] if c else None
                                for c in cells]
    return table


def _label_counts(wanted: Sequence[int], rows: int) -> list[int]:
    """The counts the file can hold, smallest first; ALL and counts past the file become its size."""
    if rows < 10:
        raise ValueError(f"The training file has {rows} usable rows; the lesson needs at least 10 labeled rows.")
    return sorted({rows if n == ALL or n > rows else n for n in wanted})


def _sample_test(texts: Sequence[str], labels: Sequence[str], n: int) -> tuple[list[str], list[str]]:
    if not n or len(texts) <= n:
        return list(texts), list(labels)
    keep = np.sort(np.random.default_rng(0).choice(len(texts), size=n, replace=False))
    return [texts[i] for i in keep], [labels[i] for i in keep]


def _labeled_sample(texts: Sequence[str], labels: Sequence[str], n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn at random (the same rows for every arm of this seed), as a person labels a sample."""
    frame = pd.DataFrame({"text": list(texts), "label": list(labels)})
    return frame if n >= len(frame) else frame.sample(n=n, random_state=seed).reset_index(drop=True)


def _random_twin(folder: str, out: Path) -> str:
    """``folder``'s configuration and tokenizer with freshly initialised weights: arm 1 differs from arm 2 only
    in what pretraining learned."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    from bertdemo.seeding import seeded

    with seeded(0):
        model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(folder))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return str(out)


def _fine_tune(arm: str, start: str, rows: pd.DataFrame, test_texts, test_labels, config: LessonConfig,
               seed: int) -> LessonPoint:
    from bertdemo.data import sort_labels

    began = time.perf_counter()
    # Word embeddings train in every arm: frozen random ones would handicap arm 1 for a reason that is not
    # pretraining; so do all layers (frozen random lower layers would too). No early stop and no validation split:
    # every arm takes the same steps on the same rows.
    train_config = TrainConfig(model=start, epochs=config.epochs, learning_rate=config.learning_rate,
                               max_length=config.max_length, patience=0, freeze_word_embeddings=False,
                               freeze_layers=0,
                               min_steps=config.min_steps, seed=42 + seed)
    _, metrics = train_and_test(rows, sort_labels(rows["label"]), test_texts, test_labels, train_config)
    return LessonPoint(arm=arm, seed=seed, labels=len(rows), accuracy=round(float(metrics["accuracy"]), 4),
                       macro_f1=round(float(metrics["macro_f1"]), 4), seconds=round(time.perf_counter() - began, 1))

