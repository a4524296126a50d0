"""Class probabilities from a saved run: the fast path (bf16 weights where native, the lean BERT forward of
``bertdemo.fast.lean_forward`` where it applies, SDPA attention, inference mode, no attention weights).

``Predictor`` is thread-safe: the model is only read, and the tokenizer (whose Rust side refuses concurrent
use with changing truncation settings) is guarded by a lock. Attention and attributions live in
``bertdemo.explain`` and run on these same weights: attributions always (through the lean forward, else the
model's own with ``inputs_embeds``), the attention view where the lean forward applies. A second,
eager-attention fp32 copy is loaded when first asked only for attention weights of other architectures and
for gradients of fp16 weights.

transformers is imported here, at import time, not lazily inside a handler: its lazy module is not safe to
resolve from two threads at once (the app's first prediction and first explanation could fail with an
ImportError). ``get_predictor`` builds one predictor at a time for the same reason.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import transformers  # noqa: F401 - resolved once here (see above)
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer  # noqa: F401
from transformers import BertForSequenceClassification, BertTokenizerFast  # noqa: F401

from bertdemo import fast
from bertdemo.device import best_device, choose_precision
from bertdemo.fast.lean_forward import lean_forward
from bertdemo.models import load_classifier, load_tokenizer
from bertdemo.limits import Limits
from bertdemo.runs import load_run_info, read_json, weights_ok
from bertdemo.seeding import seeded

PREDICT_BATCH_SIZE = 64
CACHE_SIZE = 4  # predictors kept loaded at once (each MiniLM run is ~90 MB)


class Predictor:
    def __init__(self, model, tokenizer, *, max_length: int = 128, source: str = "", device=None,
                 precision: str = "auto", lean: bool = True, prepack: bool = True):
        """``model`` must not change after this (the lean forward holds a copy of its Q/K/V weights).

        ``lean=False`` (or ``BERTDEMO_FAST_OFF=lean_forward``) always uses the model's own forward; ``prepack=False``
        keeps the lean forward but without oneDNN-prepacked weights."""
        self.device = torch.device(device) if device is not None else best_device()
        self.precision = _predict_precision(precision, self.device)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)
        # No weight gradients, ever: attributions differentiate with respect to the input embeddings only
        self.model = model.to(self.device, dtype=dtype).eval().requires_grad_(False)
        # Same logits with about half the Python of the model's own forward (checked when built); None for
        # architectures it does not reproduce, which keep the transformers forward.
        self._lean = lean_forward(self.model, prepack, first_token_top=fast.enabled("first_token_top")) \
            if lean and fast.enabled("lean_forward") else None
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.source = source  # the run folder or model the weights came from (used to load the eager copy)
        id2label = model.config.id2label
        self.labels: tuple[str, ...] = tuple(id2label[i] for i in range(len(id2label)))
        # Multi-label runs: a sigmoid per label, and a label applies from its threshold up (tuned on validation
        # when the run was trained, kept in config.json; 0.5 for a label without one)
        self.multi_label = getattr(model.config, "problem_type", None) == "multi_label_classification"
        saved = getattr(model.config, "thresholds", None) or {}
        self.thresholds = np.array([float(saved.get(label, 0.5)) for label in self.labels], dtype=np.float64)
        self._tokenizer_lock = threading.Lock()
        self._eager_lock = threading.Lock()
        self._eager = None
        self.config_stamp = 0  # config.json's change time when get_predictor loaded it (its cache compares)
        # One explanation at a time per predictor: an integrated-gradients pass holds nodes × word-pieces
        # activations for its backward (up to ~0.5 GB); predictions never wait for it.
        self.explain_lock = threading.Lock()

    @classmethod
    def from_run(cls, run_dir: str | Path, device=None, precision: str = "auto", *, lean: bool = True,
                 prepack: bool = True) -> "Predictor":
        """Load a saved run (anything ``from_pretrained`` reads, labels from its config)."""
        run_dir = Path(run_dir)
        if (run_dir / "run.json").exists():
            info = load_run_info(run_dir)
            if (run_dir / "model.safetensors").exists() and not weights_ok(run_dir):
                raise ValueError(f"The weights of run {info.name} are truncated or damaged: delete the run and train "
                                 "it again.")
        train_config = read_json(run_dir, "train_config.json") or {}
        tokenizer = load_tokenizer(str(run_dir))
        model = load_classifier(str(run_dir), attn="sdpa")
        return cls(model, tokenizer, max_length=int(train_config.get("max_length", 128)), source=str(run_dir),
                   device=device, precision=precision, lean=lean, prepack=prepack)

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Tokenized, truncated to ``max_length``, padded tensors on the model's device."""
        texts = _as_texts(texts)
        with self._tokenizer_lock:
            batch = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                                   return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def predict_proba(self, texts: list[str], batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """(N, C) class probabilities; rows sum to 1 (multi-label: each label's own sigmoid probability). Texts are batched by length to cut padding: by word-pieces
        when there is more than one batch (tokenized once, ×1.16 on a 5,000-text pool, bench/RESULTS.md), by
        characters otherwise (no second pass over the texts for a single prediction)."""
        texts = _as_texts(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if len(texts) > batch_size:
            with self._tokenizer_lock:
                ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
            return self.predict_proba_ids(ids, batch_size)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            batch = self.encode([texts[i] for i in idx])
            logits = self._lean(**batch) if self._lean else self.model(**batch).logits  # (B, C)
            out[idx] = self.activate(logits).cpu().numpy()
        return out

    @torch.inference_mode()
    def predict_proba_ids(self, sequences: list[list[int]], batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """(N, C) class probabilities of word-piece id sequences as they are (special tokens included, no
        truncation): what faithfulness tests feed when they delete or mask pieces of an encoded text."""
        if not sequences:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        order = np.argsort([len(s) for s in sequences], kind="stable")
        out = np.empty((len(sequences), len(self.labels)), dtype=np.float32)
        for start in range(0, len(sequences), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(sequences[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :len(sequences[i])] = torch.tensor(sequences[i], dtype=torch.long)
                mask[row, :len(sequences[i])] = 1
            batch = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
            if "token_type_ids" in getattr(self.tokenizer, "model_input_names", ()):
                batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])  # one segment, as encode makes
            logits = self._lean(**batch) if self._lean else self.model(**batch).logits  # (B, C)
            out[idx] = self.activate(logits).cpu().numpy()
        return out

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities of logits (…, C), in fp32: a softmax over classes, or a sigmoid per label (multi-label)."""
        return torch.sigmoid(logits.float()) if self.multi_label else torch.softmax(logits.float(), dim=-1)

    def decide(self, probs: np.ndarray) -> list[tuple[str, ...]]:
        """The labels each row of ``probs`` (N, C) predicts: the most probable class, or every label at or above
        its threshold (multi-label; possibly none)."""
        probs = np.asarray(probs)
        if not self.multi_label:
            return [(self.labels[int(i)],) for i in probs.argmax(axis=1)] if len(probs) else []
        return [tuple(label for label, p, t in zip(self.labels, row, self.thresholds) if p >= t) for row in probs]

    @torch.inference_mode()
    def embed(self, texts: list[str], batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """(N, d) float32: for each text the vector the classification head reads (BERT's pooled [CLS]; the
        [CLS] position's last hidden state for models without a pooler). Batched by length like predictions."""
        texts = _as_texts(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            encoded = self.model.base_model(**self.encode([texts[i] for i in idx]))
            pooled = getattr(encoded, "pooler_output", None)
            vectors = (pooled if pooled is not None else encoded.last_hidden_state[:, 0]).float().cpu().numpy()
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
        return out if out is not None else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)

    @property
    def uses_lean_forward(self) -> bool:
        """True when predictions run ``bertdemo.lean_forward`` rather than the model's own forward."""
        return self._lean is not None

    def word_ids(self, text: str) -> list[int | None]:
        """For each word-piece of ``text`` as ``encode`` cuts it, the index of the word it belongs to; None for
        special tokens ([CLS], [SEP]…). Needs a fast tokenizer: a ``ValueError`` otherwise."""
        with self._tokenizer_lock:
            encoding = self.tokenizer([str(text)], truncation=True, max_length=self.max_length)
        return list(encoding.word_ids(0))

    def special_tokens_mask(self, ids: list[int]) -> list[bool]:
        """Which of ``ids`` are the tokenizer's special tokens ([CLS], [SEP], [PAD]…), asked of the tokenizer."""
        with self._tokenizer_lock:
            mask = self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        return [bool(m) for m in mask]

    def tokenize(self, text: str, **options):
        """The tokenizer's own output for one text (``options`` as the tokenizer takes them: offsets, truncation),
        under the tokenizer lock: the way to call the tokenizer from outside this class."""
        with self._tokenizer_lock:
            return self.tokenizer(str(text), **options)

    def count_tokens(self, text: str) -> int:
        """Word-pieces of ``text`` before truncation, [CLS]/[SEP] included."""
        with self._tokenizer_lock:
            return len(self.tokenizer(str(text), truncation=False)["input_ids"])

    def predict(self, text: str) -> dict[str, float]:
        """{label: probability} for one text, in label order; empty or over-long text is refused
        (``Limits.check_text``)."""
        probs = self.predict_proba([Limits.current().check_text(text)])[0]
        return {label: float(p) for label, p in zip(self.labels, probs)}

    def predict_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """``predict`` for several texts (each checked like one)."""
        limits = Limits.current()
        checked = [limits.check_text(t) for t in texts]
        return [{label: float(p) for label, p in zip(self.labels, row)} for row in self.predict_proba(checked)]

    def gradient_forward(self) -> tuple[torch.nn.Module, Callable[..., torch.Tensor]]:
        """(word-embedding layer, ``forward(embeds (B, T, d), **encoded_extras) -> logits (B, C)``) for
        gradients with respect to the word embeddings (integrated gradients, gradient×input).

        The prediction model itself (lean forward where it applies), so explanations explain the numbers
        the user sees. Only fp16 weights are swapped for the fp32 eager copy: fp16 gradients without loss
        scaling underflow. bf16 keeps fp32's exponent range (completeness error: bench/RESULTS.md).
        """
        if self.precision == "fp16":
            model, lean = self.eager_model(), None
        else:
            model, lean = self.model, self._lean
        if lean is not None:
            return lean.word_embeddings, lean.from_embeddings

        def forward(embeds: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
            return model(inputs_embeds=embeds, **extra).logits

        return model.get_input_embeddings(), forward

    def forward_with_attention(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits (B, C), each layer's attention weights (B, H, T, T)) for an encoded batch.

        The lean forward on the prediction weights where it applies (the same numbers the Predict view
        shows, ~2x faster than the eager copy); else the eager-attention copy (SDPA returns no weights).
        """
        if self._lean is not None:
            return self._lean.with_attentions(**batch)
        with torch.inference_mode():
            out = self.eager_model()(**batch, output_attentions=True)
        return out.logits, list(out.attentions or ())

    def eager_model(self):
        """A copy of the model with eager attention (SDPA returns no attention weights), loaded on first use."""
        with self._eager_lock:
            if self._eager is None:
                if self.source and Path(self.source).exists():
                    eager = load_classifier(self.source, attn="eager")
                else:
                    import copy

                    eager = copy.deepcopy(self.model)
                    eager.set_attn_implementation("eager")
                # fp32: attention weights to show (and gradients where predictions run fp16), not speed
                self._eager = eager.to(self.device, dtype=torch.float32).eval().requires_grad_(False)
            return self._eager


def _predict_precision(requested: str, device: torch.device) -> str:
    """bf16 weights where the hardware runs them natively: the same TREC accuracy, faster than fp32, more so on
    long texts (bench/RESULTS.md). Explanations use the same weights."""
    if requested == "auto":
        return choose_precision("auto", device)  # the same choice training makes
    if requested not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16 (got {requested!r}).")
    return requested


def _as_texts(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    return ["" if t is None else str(t) for t in texts]


_cache: "OrderedDict[str, Predictor]" = OrderedDict()
_cache_lock = threading.Lock()  # guards _cache; held only for lookups, never while loading
_build_lock = threading.Lock()  # one predictor is loaded at a time (transformers' lazy imports; memory)


def get_predictor(run_dir: str | Path) -> Predictor:
    """A cached ``Predictor`` for a run folder (least recently used ones are dropped past CACHE_SIZE).

    Two threads asking for the same run at once get the same predictor, loaded once."""
    key = str(Path(run_dir).resolve())
    stamp = config_stamp(run_dir)
    with _cache_lock:
        if key in _cache and _cache[key].config_stamp == stamp:
            _cache.move_to_end(key)
            return _cache[key]
    with _build_lock:
        stamp = config_stamp(run_dir)  # read before the config: a save during the load makes the next call reload
        with _cache_lock:
            if key in _cache and _cache[key].config_stamp == stamp:  # loaded while this thread waited
                return _cache[key]
        predictor = Predictor.from_run(run_dir)
        predictor.config_stamp = stamp
        with _cache_lock:
            _cache[key] = predictor
            _cache.move_to_end(key)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return predictor


def config_stamp(run_dir: str | Path) -> int:
    """When the run's config.json last changed (its thresholds are saved there): a cached predictor older than
    that is stale. 0 when there is none."""
    try:
        return (Path(run_dir) / "config.json").stat().st_mtime_ns
    except OSError:
        return 0


def forget_predictor(run_dir: str | Path) -> None:
    """Drop a run from the cache (after it was deleted)."""
    with _cache_lock:
        _cache.pop(str(Path(run_dir).resolve()), None)


def base_predictor(model: str, labels: tuple[str, ...], *, seed: int = 0, max_length: int = 128,
                   multi_label: bool = False) -> Predictor:
    """The base model before fine-tuning, with a freshly initialised (seeded) head: what training starts from.
    ``multi_label``: a sigmoid per label, as a multi-label run's (so the two read alike side by side)."""
    with _build_lock:
        tokenizer = load_tokenizer(model)
        with seeded(seed):  # the head's weights; never reseed the global generator (a run may be training)
            classifier = load_classifier(model, labels, attn="sdpa")
        if multi_label:
            classifier.config.problem_type = "multi_label_classification"
        return Predictor(classifier, tokenizer, max_length=max_length, source="")
