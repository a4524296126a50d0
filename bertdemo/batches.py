"""Tokenized splits and the batches made from them.

Texts are tokenized once, up front, into a ``datasets.Dataset``; batches are padded per batch (dynamic
padding) and, for training, drawn in length-grouped order so that short texts are not padded to the length
of a long one. The collator counts real and padded tokens for the benchmarks.
"""
from __future__ import annotations

import datasets
import pandas as pd
import torch
from torch.utils.data import DataLoader, SequentialSampler
from transformers import DataCollatorWithPadding
from transformers.trainer_pt_utils import LengthGroupedSampler

datasets.disable_progress_bars()  # the app and the CLI draw their own progress


def tokenize_frame(frame: pd.DataFrame, tokenizer, label2id: dict[str, int], max_length: int) -> datasets.Dataset:
    """A dataset with input_ids, attention_mask (and token_type_ids where the model has them) and labels."""
    ds = datasets.Dataset.from_dict({"text": frame["text"].tolist(),
                                     "labels": [label2id[label] for label in frame["label"]]})

    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    ds = ds.map(encode, batched=True, batch_size=1000, remove_columns=["text"])
    return ds.add_column("length", [len(ids) for ids in ds["input_ids"]])


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


def train_loader(ds: datasets.Dataset, collator, batch_size: int, *, seed: int, group_by_length: bool) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    if group_by_length:
        # transformers' sampler: shuffled mega-batches of 50 batches, each sorted by length
        sampler = LengthGroupedSampler(batch_size, lengths=ds["length"], generator=generator)
    else:
        sampler = torch.utils.data.RandomSampler(ds, generator=generator)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=collator)


def eval_loader(ds: datasets.Dataset, collator, batch_size: int) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, sampler=SequentialSampler(ds), collate_fn=collator)
