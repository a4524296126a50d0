"""The rules every training loop of the engine keeps — the run's own (``training.loop``) and the k-fold scoring of
suspicious labels (``labeling.suspicious``): a loss that is not a finite number stops it with a message, running
out of memory is a message that says what to lower, and a loop that ends, however it ends, frees its memory."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import math
import sys
from collections.abc import Iterator

import torch

OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")  # torch's CPU and CUDA wording


def finite_loss(loss: float, step: int, config, *, lost: str = "no run was saved") -> float:
    """``loss``, or a ValueError when it is NaN or infinite (nothing after this step would be worth keeping)."""
    if not math.isfinite(loss):
        raise ValueError(f"The training loss became {loss} at step {step}: training diverged and {lost}. Lower the "
                         f"learning rate (it is {config.learning_rate:g}), or use precision fp32.")
    return loss


@contextlib.contextmanager
def out_of_memory_as_message(config, *, lost: str = "nothing was saved") -> Iterator[None]:
    """Turn torch's out-of-memory errors raised inside into a ValueError that says what to lower; free memory
    on the way out."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        text = str(err).lower()
        if isinstance(err, MemoryError) or any(m in text for m in OUT_OF_MEMORY):
            raise ValueError(f"Training ran out of memory (batch size {config.batch_size}, max length "
                             f"{config.max_length}); {lost}. Lower the batch size or max_length, or train on "
                             "fewer rows.") from err
        raise
    finally:
        free_memory()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    _trim_heap()


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc only). A training run's activations and kept frozen
    output leave hundreds of MB free but held by the process, and what runs next (a test file's scoring, the next
    job on a shared server) allocates in other shapes and grows the process instead (bench/RESULTS.md)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, looked up once; None elsewhere (macOS, Windows, musl have none)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
