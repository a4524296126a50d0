"""BERT's masking and the loss on masked positions only.

The masking is transformers' ``DataCollatorForLanguageModeling``: ``mask_probability`` of the tokens chosen
(never special tokens), of those 80% replaced by ``[MASK]``, 10% by a random token, 10% kept; with
``whole_word_mask`` all pieces of a word are chosen together (and, as transformers does it, always become
``[MASK]``). ``PretrainCollator`` adds the next-sentence labels and drops the offsets the word boundaries came from.

``masked_lm_loss`` computes the output layer for the chosen positions only: the vocabulary projection is most of
a small BERT's cost, and 85% of the positions carry no loss. It equals the stock full-vocabulary loss on those
positions (tests/test_pretraining.py checks it).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DataCollatorForLanguageModeling

IGNORE = -100


@dataclass
class PretrainCollator:
    tokenizer: object
    mask_probability: float = 0.15
    whole_word_mask: bool = False
    seed: int | None = None
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        if self.tokenizer.mask_token is None:
            raise ValueError("This model's tokenizer has no [MASK] token, so it cannot be pretrained with masked "
                             "language modelling. Pick a BERT-family model, or start from scratch.")
        import warnings

        with warnings.catch_warnings():  # whole-word masking's note that it turns off random replacement
            warnings.simplefilter("ignore", UserWarning)
            self.mlm = DataCollatorForLanguageModeling(
                self.tokenizer, mlm_probability=self.mask_probability, whole_word_mask=self.whole_word_mask,
                seed=self.seed, pad_to_multiple_of=self.pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict:
        nsp = [f["next_sentence_label"] for f in features if "next_sentence_label" in f]
        texts = [(f["text_index"], f["position_ids"]) for f in features if "text_index" in f]
        keep = ("input_ids", "token_type_ids", "special_tokens_mask") + (("offset_mapping",) if self.whole_word_mask
                                                                          else ())
        features = [{k: f[k] for k in keep if k in f} for f in features]
        if self.whole_word_mask:
            features = _pad_offsets(features, self.pad_to_multiple_of)
        batch = self.mlm(features)
        batch["attention_mask"] = (batch["input_ids"] != self.tokenizer.pad_token_id).long() \
            if "attention_mask" not in batch else batch["attention_mask"]
        if texts and len(texts) == len(features):
            batch.update(_isolating_mask(texts, batch["input_ids"].shape[1]))
        if nsp:
            batch["next_sentence_label"] = torch.tensor(nsp)
        return batch


def _isolating_mask(texts: list[tuple[list[int], list[int]]], length: int) -> dict:
    """A packed batch's attention as if its texts were apart: ``attention_mask`` becomes additive (B, 1, T, T),
    0 where the key is in the query's own text and the dtype's lowest value elsewhere (the form both SDPA and eager
    attention take); ``position_ids`` restart with each text. Padding is a text of its own, so its rows are never
    empty."""
    index = torch.full((len(texts), length), -1, dtype=torch.long)
    positions = torch.zeros((len(texts), length), dtype=torch.long)
    for row, (text, place) in enumerate(texts):
        index[row, :len(text)] = torch.tensor(text)
        positions[row, :len(place)] = torch.tensor(place)
    same = index[:, :, None] == index[:, None, :]  # (B, T, T)
    mask = torch.zeros(same.shape, dtype=torch.float32).masked_fill_(~same, torch.finfo(torch.float32).min)
    return {"attention_mask": mask[:, None], "position_ids": positions}


def _pad_offsets(features: list[dict], multiple: int | None) -> list[dict]:
    """Offsets padded with (0, 0) to the batch's padded length: ``tokenizer.pad`` pads the ids but cannot pad a
    list of pairs, so a batch holding the shorter last packed sequence failed to become a tensor."""
    longest = max(len(f["input_ids"]) for f in features)
    if multiple:
        longest = -(-longest // multiple) * multiple
    return [{**f, "offset_mapping": [*map(tuple, f["offset_mapping"]),
                                     *[(0, 0)] * (longest - len(f["offset_mapping"]))]}
            if "offset_mapping" in f else f for f in features]


def has_fast_head(model: torch.nn.Module) -> bool:
    """A BERT with its prediction head (``BertForMaskedLM``, ``BertForPreTraining``): the masked-only path."""
    return hasattr(model, "bert") and hasattr(getattr(model, "cls", None), "predictions")


def masked_lm_loss(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """The MLM loss (plus NSP's when the batch has next-sentence labels) and what evaluation counts:
    {"correct", "masked", "nsp_correct", "nsp_total"} as tensors."""
    labels = batch["labels"]
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids", "position_ids") if k in batch}
    if inputs.get("attention_mask") is not None and inputs["attention_mask"].is_floating_point():
        # an isolating mask is added to the scores: in bf16 weights, eager attention wants it in their dtype
        inputs["attention_mask"] = inputs["attention_mask"].to(next(model.parameters()).dtype)
    chosen = labels != IGNORE
    if has_fast_head(model):
        out = model.bert(**inputs)
        hidden = out[0][chosen]  # (M, H): the chosen positions only
        logits = model.cls.predictions(hidden)  # (M, V)
        targets = labels[chosen]
        loss = torch.nn.functional.cross_entropy(logits.float(), targets)
        stats = {"correct": (logits.argmax(-1) == targets).sum(), "masked": targets.numel()}
        if "next_sentence_label" in batch:
            nsp_logits = model.cls.seq_relationship(out[1])
            nsp_loss = torch.nn.functional.cross_entropy(nsp_logits.float(), batch["next_sentence_label"])
            loss = loss + nsp_loss
            stats.update(nsp_correct=(nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum(),
                         nsp_total=len(batch["next_sentence_label"]))
        return loss, stats
    # Another architecture (RoBERTa, DistilBERT…): its own head over every position, loss on the chosen ones.
    logits = model(**inputs).logits
    loss = torch.nn.functional.cross_entropy(logits[chosen].float(), labels[chosen])
    return loss, {"correct": (logits[chosen].argmax(-1) == labels[chosen]).sum(), "masked": int(chosen.sum())}


def masking_example(tokenizer, text: str, *, mask_probability: float = 0.15, seed: int = 0) -> list[dict]:
    """One text through the same masking the loop uses, token by token: {"token", "shown", "what"} with what
    one of "kept", "[MASK]" (80% of the chosen), "random" (10%), "unchanged" (chosen but left as it was, 10%),
    "special" (never chosen). For the teaching panel: a seed picks which tokens."""
    encoded = tokenizer(text, truncation=True, max_length=64, return_special_tokens_mask=True)
    collator = PretrainCollator(tokenizer, mask_probability, seed=seed)
    batch = collator([{"input_ids": encoded["input_ids"], "special_tokens_mask": encoded["special_tokens_mask"]}])
    original = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    shown = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    rows = []
    for token, now, label, special in zip(original, shown, batch["labels"][0].tolist(),
                                          encoded["special_tokens_mask"]):
        if special:
            what = "special"
        elif label == IGNORE:
            what = "kept"
        elif now == tokenizer.mask_token:
            what = "[MASK]"
        elif now != token:
            what = "random"
        else:
            what = "unchanged"
        rows.append({"token": token, "shown": now, "what": what})
    return rows
