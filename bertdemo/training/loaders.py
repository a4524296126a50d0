"""Tokenized splits and the batches made from them.

Texts are tokenized once, up front, into a ``datasets.Dataset``; batches are padded per batch (dynamic
padding) and, for training, drawn in length-grouped order so that short texts are not padded to the length
of a long one. The collator counts real and padded tokens for the benchmarks.
"""
from __future__ import annotations

import math

import datasets
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, SequentialSampler
from transformers import DataCollatorWithPadding
from transformers.trainer_pt_utils import LengthGroupedSampler

from bertdemo.data.multilabel import multi_hot
from bertdemo.fast.frozen_cache import ROW

datasets.disable_progress_bars()  # the app and the CLI draw their own progress


def tokenize_frame(frame: pd.DataFrame, tokenizer, label2id: dict[str, int], max_length: int, *,
                   multi_label: bool = False, rows: bool = False, first_row: int = 0) -> datasets.Dataset:
    """A dataset with input_ids, attention_mask (and token_type_ids where the model has them) and labels: a class
    id per row, or for ``multi_label`` rows (label sets) a 0/1 float per label, as BCE takes them. ``rows``: also
    each text's position in ``frame`` plus ``first_row`` (``frozen_cache.ROW``), the key of the frozen layers' kept
    output (validation rows are numbered after the training rows, so the two never share a key)."""
    if multi_label:
        targets = multi_hot(frame["label"].tolist(), sorted(label2id, key=label2id.get)).tolist()
    else:
        targets = [label2id[label] for label in frame["label"]]
    ds = datasets.Dataset.from_dict({"text": frame["text"].tolist(), "labels": targets})

    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    ds = ds.map(encode, batched=True, batch_size=1000, remove_columns=["text"])
    if rows:
        ds = ds.add_column(ROW, list(range(first_row, first_row + len(ds))))
    return ds.add_column("length", [len(ids) for ids in ds["input_ids"]])


def model_inputs(batch: dict) -> dict:
    """What the model takes from a training or evaluation batch (not the labels, not the row numbers)."""
    return {k: v for k, v in batch.items() if k not in ("labels", ROW)}


class CountingCollator:
    """Dynamic padding (transformers' collator) that also counts real and padded tokens."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None):
        self.inner = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt")
        self.real_tokens = 0
        self.padded_tokens = 0  # positions computed, padding included

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        features = [{k: v for k, v in f.items() if k != "length"} for f in features]
        batch = self.inner(features)
        self.real_tokens += int(batch["attention_mask"].sum())
        self.padded_tokens += int(batch["attention_mask"].numel())
        return batch


def lengths_of(ds: datasets.Dataset) -> np.ndarray:
    # Straight from the Arrow column: indexing ds["length"] item by item is far slower in datasets 5.
    return ds.data.column("length").to_numpy()


class LengthBucketBatchSampler(torch.utils.data.Sampler):
    """Batches of near-equal length: each epoch, shuffle, sort by length, cut into batches, shuffle the batches.

    Written here rather than using transformers' ``LengthGroupedSampler`` because that one only sorts inside
    mega-batches of 50 batches, which leaves several times more padding than a fully sorted order, and the
    sorted order measured faster per step on CPU (bench/RESULTS.md). The shuffle before the stable sort
    varies which texts of equal length share a batch from epoch to epoch.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        order = order[np.argsort(self.lengths[order], kind="stable")]
        batches = [order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        for i in rng.permutation(len(batches)):
            yield batches[i]


def train_loader(ds: datasets.Dataset, collator, batch_size: int, *, seed: int, batching: str) -> DataLoader:
    """Training batches: "sorted" (length buckets), "grouped" (transformers' mega-batches) or "random"."""
    # Every loader has a generator of its own: without one, each epoch's iterator draws its base seed (for
    # workers) from torch's global generator, which other threads use too.
    generator = torch.Generator().manual_seed(seed)
    if batching == "sorted":
        return DataLoader(ds, batch_sampler=LengthBucketBatchSampler(lengths_of(ds), batch_size, seed),
                          collate_fn=collator, generator=generator)
    if batching == "grouped":
        sampler = LengthGroupedSampler(batch_size, lengths=lengths_of(ds).tolist(), generator=generator)
    else:
        sampler = torch.utils.data.RandomSampler(ds, generator=generator)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=collator, generator=generator)


def eval_loader(ds: datasets.Dataset, collator, batch_size: int) -> DataLoader:
    # in order; the generator only keeps its iterators' base seed off torch's global generator
    return DataLoader(ds, batch_size=batch_size, sampler=SequentialSampler(ds), collate_fn=collator,
                      generator=torch.Generator().manual_seed(0))
