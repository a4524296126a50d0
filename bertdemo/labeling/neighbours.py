"""What a labeled text's nearest neighbours are labeled: a second, independent opinion for suspicious labels.

A flipped label usually sits among texts that carry another one. The k-fold models miss it when the text itself is
ambiguous to them; its neighbours, found by what the base model makes of the texts before any of these labels were
learned, still outvote it (Bahri, Jiang & Gupta, "Deep k-NN for Noisy Labels", ICML 2020). The two err on different
rows, so their average finds more flipped labels than either (bench/RESULTS.md: news passages and TREC questions).

Embeddings are the base model's last hidden states averaged over each text's word-pieces — what sentence-embedding
models such as the embedded all-MiniLM were trained for — computed once, batched by length. Neighbours are the most
cosine-similar other rows (scikit-learn's exact search, in chunks, so memory grows with rows, not rows²), each
voting for its own label with its similarity.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

NEIGHBOURS = 10  # k, and WEIGHT: the neighbours' share of the averaged probabilities (the folds keep 0.8) — of
WEIGHT = 0.2  # k 5–40 and shares 0.15–0.5, the pair that helped news passages most and lost nowhere on TREC or SST-2
# (bench/RESULTS.md)
_SMOOTHING = 0.1  # a vote's worth spread over every class: a row far from all others is not certain of anything
EMBED_BATCH = 64


def mean_pooled_embeddings(texts: Sequence[str], model: str, max_length: int, *,
                           should_stop: Callable[[], bool] = lambda: False,
                           batch_size: int = EMBED_BATCH) -> Iterator[int | np.ndarray | None]:
    """Yield how many texts are embedded so far after each batch, then the (N, d) float32 embeddings (None when
    ``should_stop`` said stop). ``model``: a model name or folder, as training takes it."""
    from bertdemo.device import best_device
    from bertdemo.models import load_classifier, load_tokenizer

    tokenizer = load_tokenizer(model)
    device = best_device()
    encoder = load_classifier(model).base_model.eval().to(device)  # the encoder alone: no head is run
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")  # batches of near-equal length carry almost no padding
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            if should_stop():
                yield None
                return
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt").to(device)
            hidden = encoder(**batch).last_hidden_state.float()  # (B, T, d)
            mask = batch["attention_mask"][..., None].float()
            out[rows] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
            yield min(len(texts), start + batch_size)
    yield out


def neighbour_label_probabilities(vectors: np.ndarray, y: np.ndarray, classes: int,
                                  k: int = NEIGHBOURS) -> np.ndarray:
    """(N, classes): for each row, its ``k`` most similar other rows' labels (``y``, class ids), each weighted by
    its cosine similarity (negative ones count 0), smoothed and normalised to sum to 1."""
    from sklearn.neighbors import NearestNeighbors

    n = len(vectors)
    k = max(1, min(int(k), n - 1))
    distances, index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vectors).kneighbors(vectors)
    # Each row finds itself (distance 0), usually first; among exact duplicates it may sit anywhere in the list,
    # and where k + 1 duplicates hide it the last neighbour goes instead.
    keep = index != np.arange(n)[:, None]
    keep[keep.all(axis=1), -1] = False
    weights = np.clip(1.0 - distances, 0.0, None) * keep
    votes = np.zeros((n, classes))
    np.add.at(votes, (np.repeat(np.arange(n), k + 1), y[index].ravel()), weights.ravel())
    votes += _SMOOTHING
    return votes / votes.sum(axis=1, keepdims=True)


def with_neighbours(probs: np.ndarray, neighbours: np.ndarray, weight: float = WEIGHT) -> np.ndarray:
    """The folds' out-of-sample probabilities averaged with the neighbours' label shares (``weight`` theirs)."""
    return ((1.0 - weight) * probs + weight * neighbours).astype(probs.dtype)
