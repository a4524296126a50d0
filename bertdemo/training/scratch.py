"""The "from scratch" model: a small, randomly initialised BERT with a WordPiece vocabulary learned from
the uploaded texts — the classic tutorials' from-zero path, and the classroom comparison of what
pretraining buys you. It does not pretrain (no masked-LM step): it is fine-tuned from random weights.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

SCRATCH_LAYERS = 4  # small enough to train in minutes on a CPU, deep enough to show attention per layer
SCRATCH_HIDDEN = 256
SCRATCH_HEADS = 4
MAX_VOCAB = 8000  # WordPiece vocabulary cap; small datasets end up with fewer pieces
RARE_CHAR_TEXT = 10_000  # characters of text from which a character seen only once is left out


def build_scratch_tokenizer(texts: Sequence[str], *, vocab_size: int = MAX_VOCAB, lowercase: bool = True):
    """Learn a WordPiece vocabulary from ``texts`` (the ``tokenizers`` library) and wrap it as a fast tokenizer."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    if not texts:
        raise ValueError("No texts to learn a vocabulary from: the training data is empty.")
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    learner = BertWordPieceTokenizer(lowercase=lowercase, clean_text=True, handle_chinese_chars=True)
    alphabet, inner = _pieces(learner, texts, vocab_size - len(special))
    # Two places where the trainer (tokenizers#1794) decides by hash-map order, which changes from process to
    # process, so the same texts gave another vocabulary, and so another model, each run: which characters
    # stay when there are more than its alphabet limit (ties on count), and the numbers of the word-inner
    # pieces ("##e"), by which it breaks ties between equally frequent merges. Both are chosen here, in a
    # fixed order; the inner pieces go in as specials for the trainer only and are plain pieces below.
    learner.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=2, initial_alphabet=alphabet,
                                limit_alphabet=len(alphabet), special_tokens=special + inner,
                                show_progress=False)
    wordpiece = BertWordPieceTokenizer(learner.get_vocab(), lowercase=lowercase, clean_text=True,
                                       handle_chinese_chars=True)
    return BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=lowercase,
                             unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                             mask_token="[MASK]", model_max_length=512)


def _pieces(tokenizer, texts: Sequence[str], limit: int) -> tuple[list[str], list[str]]:
    """(alphabet, inner pieces): the characters the vocabulary keeps — those seen twice or more, the most frequent
    first, at most ``limit`` — and "##c" for each of them seen inside a word. Each text is normalised and split as
    the tokenizer does it. In texts of some length a character seen once stays out,
    as [UNK]: no model learns it from one example, and Chinese texts hold thousands of such characters."""
    normalize, split = tokenizer.normalizer.normalize_str, tokenizer.pre_tokenizer.pre_tokenize_str
    counts: Counter[str] = Counter()
    inside: set[str] = set()
    for text in texts:
        for word, _ in split(normalize(text)):
            counts.update(word)
            inside.update(word[1:])
    least = 2 if counts.total() >= RARE_CHAR_TEXT else 1  # a handful of texts keeps every character
    kept = sorted((c for c, n in counts.items() if n >= least), key=lambda c: (-counts[c], c))[:max(1, limit)]
    alphabet = sorted(kept)
    return alphabet, [f"##{c}" for c in alphabet if c in inside]


def build_scratch_model(tokenizer, labels: tuple[str, ...], *, max_length: int = 128, seed: int = 42,
                        multi_label: bool = False):
    """A randomly initialised ``BertForSequenceClassification`` sized for a CPU."""
    from transformers import BertConfig, BertForSequenceClassification

    from bertdemo.seeding import seeded

    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=SCRATCH_HIDDEN, num_hidden_layers=SCRATCH_LAYERS,
        num_attention_heads=SCRATCH_HEADS, intermediate_size=4 * SCRATCH_HIDDEN,
        max_position_embeddings=max(128, max_length), pad_token_id=tokenizer.pad_token_id,
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, problem_type="multi_label_classification" if multi_label else "single_label_classification",
        attn_implementation="sdpa")
    # The pipeline truncates at model_max_length: keep it within the position table this model has.
    tokenizer.model_max_length = config.max_position_embeddings
    with seeded(seed):  # not torch.manual_seed: other threads draw from the global generator
        return BertForSequenceClassification(config)
