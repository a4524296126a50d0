"""Scoring a saved run on held-out labeled rows, apart from validation: a test file (the CLI's ``--test`` and
``evaluate``), or a labeling project's frozen validation set, where the run may not know every label.

A multi-label run reads its test file's label sets the way training reads them (``bertdemo.data.layout``: cells
"a|b" and "none", or 0/1 columns) and is scored with ``bertdemo.multilabel_metrics`` at the run's own thresholds,
with the same figures at a fixed 0.5 under "at_0_5"."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bertdemo.data import load_heldout, read_table, sort_labels
from bertdemo.data.layout import label_layout
from bertdemo.data.multilabel import multi_hot
from bertdemo.inference.predict import Predictor
from bertdemo.metrics import classification_metrics
from bertdemo.multilabel_metrics import multilabel_metrics, with_fixed_half


def evaluate_file(predictor: Predictor, path: str | Path, *, text_col: str | None = None,
                  label_col: str | None = None, label_sep: str | None = None,
                  label_cols: Sequence[str] | None = None) -> dict:
    """Metrics (see ``bertdemo.metrics``; multi-label runs: ``bertdemo.multilabel_metrics``) of ``predictor`` on a
    labeled CSV/TSV. ``label_sep`` and ``label_cols`` say how a multi-label file writes its label sets."""
    if predictor.multi_label:
        return _evaluate_multilabel_file(predictor, path, text_col, label_col, label_sep, label_cols)
    if label_sep is not None or label_cols:
        raise ValueError("This run gives each text one class: it cannot be scored on label sets (--label-sep, "
                         "--label-cols). Evaluate a multi-label run, or give a file with one class per row.")
    rows = load_heldout(path, predictor.labels, role="Test", text_col=text_col, label_col=label_col)
    index = {label: i for i, label in enumerate(predictor.labels)}
    y_true = np.array([index[label] for label in rows["label"]])
    texts = rows["text"].tolist()
    return classification_metrics(y_true, predictor.predict_proba(texts), predictor.labels, texts=texts)


def evaluate_rows(predictor: Predictor, texts: Sequence[str], labels: Sequence[str]) -> dict:
    """Metrics of ``predictor`` on labeled rows whose labels it may not all know (a class added after it was
    trained counts as always missed): classes are the union of the run's and the rows', sorted."""
    names = sort_labels(set(labels) | set(predictor.labels))
    probs = np.zeros((len(texts), len(names)), dtype=np.float32)
    columns = [names.index(label) for label in predictor.labels]
    probs[:, columns] = predictor.predict_proba(list(texts))
    y_true = np.array([names.index(label) for label in labels])
    return classification_metrics(y_true, probs, names, texts=list(texts))


def _evaluate_multilabel_file(predictor: Predictor, path: str | Path, text_col: str | None, label_col: str | None,
                              label_sep: str | None, label_cols: Sequence[str] | None) -> dict:
    path = Path(path)
    table = read_table(path)
    # a multi-label run reads label sets even where no cell holds two labels (each cell a set of one, or "none")
    layout = label_layout(table, text_col, label_col, label_sep, label_cols, multi_label=True)
    texts, sets = layout.with_table(table, what=f"Test file {path.name}")
    rows = [(str(text), labels) for text, labels in zip(texts, sets)
            if labels is not None and isinstance(text, str) and text.strip()]
    if not rows:
        raise ValueError(f"Test file {path.name} has no usable rows (texts and label sets are empty).")
    unknown = sorted({label for _, labels in rows for label in labels} - set(predictor.labels))
    if unknown:
        raise ValueError(f"Test file {path.name} has labels the run does not know: {', '.join(map(repr, unknown[:10]))}. "
                         f"Its labels: {', '.join(predictor.labels)}. Use the same label names as the training file.")
    texts = [text for text, _ in rows]
    y = multi_hot([labels for _, labels in rows], predictor.labels)  # (N, L)
    probs = predictor.predict_proba(texts)  # (N, L) sigmoids
    return with_fixed_half(multilabel_metrics(y, probs, predictor.labels, predictor.thresholds, texts=texts),
                           y, probs, predictor.labels)
