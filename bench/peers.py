"""The two stock recipes bertdemo has to beat, each a plain Hugging Face ``Trainer`` script.

- ``trainer``: the transformers text-classification example — tokenize once with ``datasets.map``, pad each
  batch dynamically with ``DataCollatorWithPadding``, random batches, bf16 autocast where the engine uses it.
- ``padded``: what most tutorials and AutoTrain-style pipelines do — every text padded to ``max_length`` (128),
  fp32.

Hyperparameters default to the engine's (``bertdemo.config.TrainConfig``) so both sides do the same work.
Both recipes count the tokens of the batches they really build (real and padding) for the padding share.
This file is not about making the Trainer fast: it is the baseline as people actually write it.

    python bench/peers.py trainer --train TRAIN.csv --test TEST.csv --json
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, engine_defaults, model_path, peak_rss_mb_self, read_labeled, scores  # noqa: E402

RECIPES = ("trainer", "padded")

# helpers


class CountingCollator:
    """Wraps a collator and counts the real and padded tokens of every batch it builds."""

    def __init__(self, collate):
        self.collate = collate
        self.real_tokens = 0
        self.padded_tokens = 0  # all positions in the batches, padding included

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch["attention_mask"]  # (B, T)
        self.real_tokens += int(mask.sum())
        self.padded_tokens += mask.numel()
        return batch


def resolve_precision(precision: str, device: str) -> str:
    """The engine's "auto" made concrete, by the engine's own rule (``bertdemo.device.choose_precision``)."""
    import torch

    from bertdemo.device import choose_precision

    return choose_precision(precision, torch.device(device))


def run(recipe: str, *, train: str, test: str, model: str, epochs: int, batch_size: int, learning_rate: float,
        warmup_ratio: float, weight_decay: float, max_length: int, seed: int, precision: str, device: str,
        output_dir: str) -> dict:
    import datasets
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments, default_data_collator, set_seed)

    from bertdemo.data import sort_labels

    set_seed(seed)
    train_texts, train_labels = read_labeled(train)
    test_texts, test_labels = read_labeled(test)
    labels = sort_labels(train_labels)
    label2id = {label: i for i, label in enumerate(labels)}
    path = model_path(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    net = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id)

    padded = recipe == "padded"
    if padded:
        precision = "fp32"
    else:
        precision = resolve_precision(precision, device)

    def tokenize(batch):
        if padded:
            return tokenizer(batch["text"], truncation=True, max_length=max_length, padding="max_length")
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    def dataset(texts, label_names):
        ds = datasets.Dataset.from_dict({"text": texts, "label": [label2id.get(x, -1) for x in label_names]})
        return ds.map(tokenize, batched=True, remove_columns=["text"])

    train_ds, test_ds = dataset(train_texts, train_labels), dataset(test_texts, test_labels)
    collator = CountingCollator(default_data_collator if padded else DataCollatorWithPadding(tokenizer))
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, per_device_eval_batch_size=128,
        learning_rate=learning_rate, num_train_epochs=epochs, warmup_steps=warmup_ratio, weight_decay=weight_decay,
        lr_scheduler_type="linear", bf16=precision == "bf16", fp16=precision == "fp16",
        use_cpu=device == "cpu", eval_strategy="no", save_strategy="no", logging_strategy="no",
        report_to=[], seed=seed, disable_tqdm=True)
    trainer = Trainer(model=net, args=args, train_dataset=train_ds, data_collator=collator,
                      processing_class=tokenizer)
    start = time.perf_counter()
    out = trainer.train()
    train_seconds = time.perf_counter() - start
    real, padded_total = collator.real_tokens, collator.padded_tokens

    logits = trainer.predict(test_ds).predictions
    predicted = np.asarray(logits).argmax(-1)
    known = np.asarray([label2id.get(x, -1) for x in test_labels])
    return {
        "config": recipe, "precision": precision, "device": device, "threads": torch.get_num_threads(),
        "train_rows": len(train_texts), "epochs": epochs, "steps": out.global_step,
        "train_seconds": train_seconds, "train_runtime": out.metrics.get("train_runtime"),
        "train_examples_per_s": len(train_texts) * epochs / train_seconds,
        "real_tokens": real, "padded_tokens": padded_total,
        "test": scores(known, predicted), "peak_rss_mb_self": peak_rss_mb_self(),
    }


def main() -> None:
    defaults = engine_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=RECIPES)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--model", default=defaults["model"])
    parser.add_argument("--epochs", type=int, default=defaults["epochs"])
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--lr", type=float, default=defaults["learning_rate"])
    parser.add_argument("--warmup-ratio", type=float, default=defaults["warmup_ratio"])
    parser.add_argument("--weight-decay", type=float, default=defaults["weight_decay"])
    parser.add_argument("--max-length", type=int, default=defaults["max_length"])
    parser.add_argument("--seed", type=int, default=defaults["seed"])
    parser.add_argument("--precision", default=defaults["precision"], choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output-dir", default=None, help="Trainer scratch folder (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line (always on)")
    args = parser.parse_args()

    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-peer-") as scratch:
        result = run(args.recipe, train=args.train, test=args.test, model=args.model, epochs=args.epochs,
                     batch_size=args.batch_size, learning_rate=args.lr, warmup_ratio=args.warmup_ratio,
                     weight_decay=args.weight_decay, max_length=args.max_length, seed=args.seed,
                     precision=args.precision, device=args.device, output_dir=args.output_dir or scratch)
    emit(result)


if __name__ == "__main__":
    main()
