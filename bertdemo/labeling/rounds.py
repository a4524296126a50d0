"""A labeling round: what a retrain on a project's labels (the Label tab's Retrain, ``project retrain``) and each
round of the active-learning simulation train with, so that the model catches up with the labeler in under a
minute on a 2-core CPU.

Two levers, measured in ``bench/round_bench.py`` (bench/RESULTS.md, "A labeling round"):

- **Warm start**: a round continues from the previous round's weights when that run can be continued (same base
  model, same classes in the same order, saved complete or stopped): the encoder and the head have already learned
  most of what the new labels teach.
- **A step budget that follows the data**: ``ROUND_SETTINGS`` replaces the small-data plan's fixed floor of
  ``min_steps`` (300 steps whatever the round), with early stopping on the frozen validation set's plateau.

A setting the person chose (``TrainConfig.given``) is kept; the round fills in only the others.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from bertdemo.config import TrainConfig
from bertdemo.data import LabeledData
from bertdemo.runs import RUN_FILE, lineage, lineage_of, load_run_info

# From bench/round_bench.py (RESULTS.md, "A labeling round and the simulation"; BBC passages, 400 labels, 3
# seeds): one epoch at batch 16 from the last round's weights tested as well as the cold 300-step round (two epochs:
# +1 point for twice the seconds), and a cold round of 100 steps as well as 300 (early stopping on the frozen
# validation set's plateau, the loop's ``patience``, ends either sooner where it can). At least 20 steps: rounds of
# 100-200 labels made 7-13 steps in one epoch and fell back on SST-2 (RESULTS.md).
COLD_SETTINGS = dict(min_steps=100)  # the first round, from the base model: at least 100 steps
WARM_SETTINGS = dict(min_steps=20, epochs=1, batch_size=16)  # a round that continues the last one: one epoch


@dataclass(frozen=True)
class RoundPlan:
    config: TrainConfig  # what the round trains with (``model`` is the previous run's folder when warm)
    warm_from: str | None  # the run continued (its folder name), or None: from the base model
    base_model: str  # the base model the project's runs descend from ("default", a hub id, a folder)
    why_cold: str | None  # why the round does not continue ``previous`` (None: it does)
    notes: tuple[str, ...]  # what the round changed, and why, in words

    def with_lineage(self, data: LabeledData) -> LabeledData:
        """``data`` with the round's lineage in its provenance, so that the run records what it descends from
        (``runs.lineage_of`` reads it back when the next round plans)."""
        return dataclasses.replace(data, provenance={**data.provenance, "base_model": self.base_model,
                                                     "warm_from": self.warm_from})


def continuable(run_dir: str | Path | None, base_model: str, labels: tuple[str, ...], *,
                multi_label: bool = False) -> str | None:
    """None when ``run_dir`` can be continued by a round training ``labels`` from ``base_model`` (as label sets when
    ``multi_label``: only a multi-label run continues a multi-label round, and a single-label one a single-label
    round); else why not."""
    if run_dir is None:
        return "the project has no run yet"
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).is_file():
        return f"its last run {run_dir.name} is gone"
    try:
        info = load_run_info(run_dir)
    except ValueError:  # a damaged run.json: not a run to build on, and no reason to refuse the round
        return f"its last run {run_dir.name} cannot be read"
    if info.status not in ("complete", "stopped"):
        return f"its last run {run_dir.name} is {info.status}"
    descends = lineage(info)
    if descends != base_model:
        return f"its last run {run_dir.name} descends from {Path(descends).name}, not {Path(base_model).name}"
    if bool(info.multi_label) != bool(multi_label):
        kind, now = ("multi-label", "one label per text") if info.multi_label else ("single-label", "label sets")
        return f"its last run {run_dir.name} is {kind}, and this round trains {now}"
    if tuple(info.labels) != tuple(labels):
        added = sorted(set(labels) - set(info.labels))
        gone = sorted(set(info.labels) - set(labels))
        what = "; ".join(part for part in (f"new classes {', '.join(added)}" if added else "",
                                           f"classes gone {', '.join(gone)}" if gone else "") if part)
        return f"the classes changed since its last run ({what or 'another order'})"
    return None


def plan_round(config: TrainConfig, labels: tuple[str, ...], previous: str | Path | None, *,
               warm: bool = True, multi_label: bool = False) -> RoundPlan:
    """The round's settings: warm from ``previous`` where it can be continued (and ``warm``), else cold; the
    round's step budget for whichever, where the person chose nothing else. ``multi_label``: the round trains
    label sets (``continuable``). A base model nobody chose
    (``model`` not in ``config.given``) is the one the project's last run descends from."""
    descends = lineage_of(previous)
    if descends is not None and "model" not in config.given:
        config = dataclasses.replace(config, model=descends)
    base = config.model
    why_not = continuable(previous, base, labels, multi_label=multi_label) if warm else \
        "starting from the base model was asked for"
    settings = WARM_SETTINGS if why_not is None else COLD_SETTINGS
    fill = {k: v for k, v in settings.items() if k not in config.given}
    notes = []
    if why_not is None:
        config = dataclasses.replace(config, model=str(previous), **fill)
        notes.append(f"continues from {Path(previous).name}'s weights ({config.epochs} epochs at batch "
                     f"{config.batch_size}: the last round has learned most of what these labels teach)")
    else:
        config = dataclasses.replace(config, **fill)
        if warm and previous is not None:
            notes.append(f"starts from the base model: {why_not}")
    return RoundPlan(config=config, warm_from=Path(previous).name if why_not is None else None, base_model=base,
                     why_cold=why_not, notes=tuple(notes))
