"""The data report: what intake kept and dropped, class balance, overlaps, and word-piece lengths.

Built by ``bertdemo.data.labeled``; ``measure_tokens`` adds the word-piece statistics afterwards, so a file
is checked before any tokenizer is loaded.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMBALANCE_WARNING = 3.0  # largest/smallest class ratio above which the report warns
UNKNOWN_WARNING = 0.1  # share of [UNK] word-pieces above which the model does not know the language
TRUNCATION_WARNING = 0.05  # share of texts longer than max_length above which the report warns
TOKENIZE_CHUNK = 2000  # texts tokenized at once while measuring: bounds the memory of the id lists


@dataclass(frozen=True)
class DataReport:
    source: str  # the file's name, or where the rows came from (a labeling project)
    encoding: str  # "" when the rows did not come from a file
    delimiter: str
    text_col: str
    label_col: str
    rows_total: int  # data rows in the file(s), header excluded
    rows_kept: int
    dropped: list[dict]  # {"reason", "count", "examples": [row numbers, 1-based, header = row 1]}
    exact_duplicates: int  # rows dropped because the same text with the same label appeared earlier
    conflicting_duplicates: list[dict]  # {"text", "labels"}: the same text with different labels (kept)
    class_counts: dict[str, int]
    imbalance_ratio: float
    train_rows: int
    validation_rows: int
    validation_source: str  # "split" or the validation file's name
    train_validation_overlap: int  # validation texts that also occur in train (case/space-insensitive)
    max_length: int
    token_lengths: list[int] = field(default_factory=list)  # word-pieces per kept row, [CLS]/[SEP] included
    truncated: int = 0  # kept rows longer than max_length
    unknown_token_share: float = 0.0  # share of word-pieces the tokenizer maps to [UNK] (wrong-language model)
    cut: list[dict] = field(default_factory=list)  # {"reason", "count", "examples", "limit"}: kept rows whose text
    # was longer than max_cell_chars and was cut to it
    warnings: list[str] = field(default_factory=list)
    multi_label: bool = False  # a text may carry several labels: class_counts then counts texts per label
    label_format: dict = field(default_factory=dict)  # how the file wrote label sets (LabelFormat.to_dict())
    cooccurrence: list[list[int]] = field(default_factory=list)  # (L, L) texts carrying both labels, in label
    # order; the diagonal is class_counts
    labels_per_text: dict[str, int] = field(default_factory=dict)  # "number of labels" → texts (kept rows)
    rare_labels: list[str] = field(default_factory=list)  # labels on too few texts to be learned

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def token_stats(self) -> dict[str, float]:
        if not self.token_lengths:
            return {}
        lengths = np.asarray(self.token_lengths)
        return {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
                "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max()),
                "truncated": int(self.truncated), "max_length": int(self.max_length)}


def data_warnings(counts: dict[str, int], imbalance: float, conflicts: list, overlap: int,
                  same_numbers: list[tuple[str, ...]] = (), cut: list[dict] = ()) -> list[str]:
    """What a user should know about the kept rows before training on them."""
    out = []
    for entry in cut:
        n, limit = entry["count"], entry["limit"]
        rows = ", ".join(map(str, entry["examples"])) + (", …" if n > len(entry["examples"]) else "")
        out.append(f"{n} {'text was' if n == 1 else 'texts were'} longer than {limit:,} characters and "
                   f"{'was' if n == 1 else 'were'} cut to the first {limit:,} (row{'s' if n > 1 else ''} {rows}); "
                   "the model reads only the first max_length word-pieces of a text anyway.")
    for group in same_numbers:
        out.append(f"Labels {', '.join(map(repr, group))} are one number written differently, so they train as "
                   f"{len(group)} classes. Write them the same way in the file if they mean the same class.")
    small = sum(n < 5 for n in counts.values())
    if small > len(counts) / 2:
        out.append(f"{small} of {len(counts)} classes have fewer than 5 examples: a model cannot learn classes from "
                   "so few. Merge rare classes, or label more examples of each.")
    if imbalance >= IMBALANCE_WARNING:
        small = min(counts, key=counts.get)
        out.append(f"Classes are imbalanced ({imbalance:.1f}:1); {small!r} has only {counts[small]} rows. "
                   "Watch macro-F1 rather than accuracy, or add examples of the small classes.")
    if min(counts.values()) < 10:
        out.append("Some classes have fewer than 10 examples; expect unstable results until you add more.")
    if conflicts:
        out.append(f"{len(conflicts)} texts appear with different labels; fix them or the model learns noise.")
    if overlap:
        out.append(f"{overlap} validation texts also occur in the training data; validation scores will be "
                   "optimistic.")
    return out


def token_counts(tokenizer, texts: list[str]) -> tuple[list[int], int]:
    """Word-piece length of every text and the number of [UNK] pieces, tokenizing in chunks to bound memory."""
    unk = tokenizer.unk_token_id
    lengths: list[int] = []
    unknown = 0
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        for ids in tokenizer(texts[start:start + TOKENIZE_CHUNK], add_special_tokens=True,
                             truncation=False)["input_ids"]:
            lengths.append(len(ids))
            if unk is not None:
                unknown += ids.count(unk)
    return lengths, unknown


def with_token_stats(report: DataReport, tokenizer, texts: list[str]) -> DataReport:
    """``report`` with the word-piece lengths of ``texts`` (the kept rows) and the warnings they call for."""
    lengths, unknown = token_counts(tokenizer, texts)
    truncated = int(sum(n > report.max_length for n in lengths))
    pieces = sum(lengths) - 2 * len(lengths)
    unknown_share = unknown / pieces if pieces > 0 else 0.0
    warnings = list(report.warnings)
    kept = report.rows_kept
    if truncated and kept and truncated / kept > TRUNCATION_WARNING:
        warnings.append(f"{truncated} texts ({truncated / kept:.0%}) are longer than max_length={report.max_length} "
                        "word-pieces and get truncated; raise max_length if their ends matter.")
    if unknown_share > UNKNOWN_WARNING:
        warnings.append(f"{unknown_share:.0%} of the word-pieces are unknown ([UNK]) to this model's vocabulary: "
                        "it was not trained on this language or script. Use a model that was (e.g. "
                        "bert-base-chinese or bert-base-multilingual-cased when online), or 'scratch'.")
    return dataclasses.replace(report, token_lengths=lengths, truncated=truncated,
                               unknown_token_share=round(unknown_share, 4), warnings=warnings)
