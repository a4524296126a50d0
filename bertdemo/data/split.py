"""The held-out validation split: stratified and seeded, capped in size, optionally after sampling rows."""
from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

MAX_VALIDATION_ROWS = 2000  # an automatic split holds out at most this many rows: enough to rank checkpoints,
# cheap enough to evaluate every epoch on a CPU


def split_rows(rows: pd.DataFrame, name: str, *, validation_split: float, seed: int, max_rows: int = 0,
               max_validation_rows: int = MAX_VALIDATION_ROWS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) of cleaned ``rows``; ``max_rows`` > 0 trains on a seeded sample of that many rows,
    and validation then keeps the split's proportion to the sampled training rows."""
    counts = rows["label"].value_counts()
    lonely = counts[counts < 2]
    if len(lonely):
        shown = ", ".join(f"{label!r}" for label in lonely.index[:10])
        raise ValueError(f"{name}: class {shown} has only one example; a stratified split needs at least 2 per "
                         "class. Add examples of that class, remove it, or supply a separate validation file.")
    n_classes = len(counts)
    n_val = round(len(rows) * validation_split)
    wanted_train = max_rows if max_rows and max_rows < len(rows) - n_val else None
    if wanted_train:
        n_val = round(wanted_train * validation_split / (1 - validation_split))
    n_val = max(n_classes, min(n_val, max_validation_rows, len(rows) - n_classes))
    if len(rows) - n_val < n_classes:
        raise ValueError(f"{name}: only {len(rows)} usable rows for {n_classes} classes; too few to hold out a "
                         "validation set. Add more rows (at least a few per class).")
    train_df, val_df = train_test_split(rows, test_size=n_val, random_state=seed, stratify=rows["label"])
    if wanted_train and wanted_train < len(train_df):
        train_df, _ = train_test_split(train_df, train_size=wanted_train, random_state=seed,
                                       stratify=train_df["label"] if wanted_train >= n_classes else None)
    return train_df, val_df
