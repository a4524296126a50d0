"""The "from scratch" model: a small, randomly initialised BERT with a WordPiece vocabulary learned from
the uploaded texts — the classic tutorials' from-zero path, and the classroom comparison of what
pretraining buys you. It does not pretrain (no masked-LM step): it is fine-tuned from random weights.
"""
from __future__ import annotations

from collections.abc import Sequence

SCRATCH_LAYERS = 4  # small enough to train in minutes on a CPU, deep enough to show attention per layer
SCRATCH_HIDDEN = 256
SCRATCH_HEADS = 4
MAX_VOCAB = 8000  # WordPiece vocabulary cap; small datasets end up with fewer pieces


def build_scratch_tokenizer(texts: Sequence[str], *, vocab_size: int = MAX_VOCAB, lowercase: bool = True):
    """Learn a WordPiece vocabulary from ``texts`` (the ``tokenizers`` library) and wrap it as a fast tokenizer."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    if not texts:
        raise ValueError("No texts to learn a vocabulary from: the training data is empty.")
    wordpiece = BertWordPieceTokenizer(lowercase=lowercase, clean_text=True, handle_chinese_chars=True)
    wordpiece.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=2,
                                  special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                  show_progress=False)
    return BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=lowercase,
                             unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                             mask_token="[MASK]", model_max_length=512)


def build_scratch_model(tokenizer, labels: tuple[str, ...], *, max_length: int = 128, seed: int = 42):
    """A randomly initialised ``BertForSequenceClassification`` sized for a CPU."""
    from transformers import BertConfig, BertForSequenceClassification

    from bertdemo.seeding import seeded

    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=SCRATCH_HIDDEN, num_hidden_layers=SCRATCH_LAYERS,
        num_attention_heads=SCRATCH_HEADS, intermediate_size=4 * SCRATCH_HIDDEN,
        max_position_embeddings=max(128, max_length), pad_token_id=tokenizer.pad_token_id,
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, problem_type="single_label_classification",
        attn_implementation="sdpa")
    # The pipeline truncates at model_max_length: keep it within the position table this model has.
    tokenizer.model_max_length = config.max_position_embeddings
    with seeded(seed):  # not torch.manual_seed: other threads draw from the global generator
        return BertForSequenceClassification(config)
