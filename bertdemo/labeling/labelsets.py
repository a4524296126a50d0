"""A multi-label project's label sets as the store keeps them: ``items.label`` (and the history's old and new
labels) holds a JSON list of label names in sorted order; ``[]`` is "no label applies", NULL is "not labeled yet".

One encoding, so that a set compares equal to itself however it was chosen (toggled keys, an import, a model's
suggestion): the history records sets, undo restores them, and the check that an item still has the label its
annotator was shown works on sets as on single labels. Single-label projects keep plain label names.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from bertdemo.data.multilabel import LabelSet


def encode_set(labels: Iterable[str] | None) -> str | None:
    """The stored form of a label set (None stays None: not labeled)."""
    if labels is None:
        return None
    return json.dumps(sorted(dict.fromkeys(str(label) for label in labels)), ensure_ascii=False)


def decode_set(stored: str | None) -> LabelSet | None:
    """The label set of a stored label (None: not labeled). A value that is not a JSON list (a single-label
    project's label) is read as a set of that one label."""
    if stored is None:
        return None
    try:
        values = json.loads(stored)
    except (TypeError, ValueError):
        return (str(stored),)
    if not isinstance(values, list):
        return (str(stored),)
    return tuple(sorted(str(v) for v in values))


def toggle(labels: LabelSet | None, label: str) -> LabelSet:
    """``labels`` with ``label`` switched on or off (a key press in the Label tab)."""
    current = set(labels or ())
    current ^= {label}
    return tuple(sorted(current))


def shown_set(labels: LabelSet | None) -> str:
    """A set as a person reads it: "billing + bug", "no label", "unlabeled"."""
    if labels is None:
        return "unlabeled"
    return " + ".join(labels) if labels else "no label"
