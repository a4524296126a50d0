"""Seeded torch randomness that leaves torch's global generators as they were for everyone else.

torch draws dropout masks and fresh weights from one global generator per device, and the app runs handlers in
many threads at once: a request that reseeds it (``torch.manual_seed``) changes what a training run in another
thread draws next, and its own draws are not reproducible either. ``TorchRng(seed, device)`` is a generator
state of one's own, seeded without touching the global one; ``with rng:`` swaps it in for a block (a model's
initialisation, one training step) and takes it out again with the draws made, so the next block goes on from
there. ``seeded(seed)`` is the same for a single block.

While one is swapped in it holds ``RNG_LOCK``, so two of them never draw from each other's state. Code that
draws from the global generators without one is not held back by it: keep such draws out of threads that
train (the training loaders have ``torch.Generator`` objects of their own).

Not in here: numpy and Python's ``random`` (the engine seeds its own ``np.random.default_rng`` where it needs one).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

RNG_LOCK = threading.RLock()  # held while any TorchRng is swapped in (re-entrant: seeded() inside a training step)


class TorchRng:
    """The CPU generator's state, and ``device``'s (CUDA or MPS) when it has one, seeded with ``seed``."""

    def __init__(self, seed: int, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._state = (_seeded_state("cpu", seed), _seeded_state(self.device, seed) if _own(self.device) else None)
        self._saved: tuple | None = None

    def __enter__(self) -> "TorchRng":
        RNG_LOCK.acquire()
        if self._saved is not None:
            RNG_LOCK.release()
            raise RuntimeError("This TorchRng is in use already: enter it once at a time.")
        self._saved = self._swap(self._state)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._state = self._swap(self._saved)
        finally:
            self._saved = None
            RNG_LOCK.release()

    def _swap(self, state: tuple) -> tuple:
        """Put ``state`` into the global generators; return what they held."""
        cpu, device = state
        before = (torch.get_rng_state(), _get_device_state(self.device) if device is not None else None)
        torch.set_rng_state(cpu)
        if device is not None:
            _set_device_state(self.device, device)
        return before


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run the block with torch's CPU generator (and ``device``'s) seeded with ``seed``; restore them after."""
    with TorchRng(seed, device):
        yield


# helpers

def _own(device: torch.device) -> bool:
    """Whether ``device`` has a generator of its own besides the CPU's."""
    return device.type in ("cuda", "mps")


def _seeded_state(device: torch.device | str, seed: int) -> torch.Tensor:
    # A fresh generator seeded with ``seed`` is in the state torch.manual_seed(seed) puts the global one in.
    return torch.Generator(device=device).manual_seed(int(seed)).get_state()


def _get_device_state(device: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.mps.get_rng_state()


def _set_device_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.mps.set_rng_state(state)
