"""bf16 weights with fp32 master copies: how the training loop runs bf16 on CPUs (fast path ``master_weights``;
off, CPU bf16 training uses autocast).

Why not autocast there: autocast keeps fp32 weights and, at every step, casts each weight and every
activation that crosses an fp32 op (LayerNorm, residual adds) to bf16 and their gradients back; at MiniLM's
sizes that copying is a noticeable share of a CPU step (bench/RESULTS.md). Here the model itself is bf16, so forward and
backward run in bf16 throughout, while the optimizer updates fp32 master copies (an update of 1e-4 relative
size would vanish in bf16's 8-bit mantissa) that are written back into the model after each step. On GPUs
autocast's casts are cheap and the training loop keeps it.

Validation during training runs the bf16 model, so a saved run's metrics were measured in bf16; the run
itself holds the fp32 masters, whose predictions can differ from them in the last digits.

Not in here: the optimizer, clipping and the schedule (``bertdemo.training``); the precision strategy that uses
this class is ``bertdemo.training.precision.MasterWeightsBf16``.
"""
from __future__ import annotations

import torch


class MasterWeights:
    """Turns ``model`` into bf16 and keeps an fp32 copy of every parameter (frozen ones too, so the saved
    model has exactly the weights it started from)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.master = {name: param.detach().to(torch.float32, copy=True).requires_grad_(param.requires_grad)
                       for name, param in model.named_parameters()}
        self.pairs = [(param, self.master[name]) for name, param in model.named_parameters() if param.requires_grad]
        model.to(torch.bfloat16)

    def named_trainable(self) -> list[tuple[str, torch.Tensor]]:
        """(name, fp32 master) of the trainable parameters: what the optimizer updates."""
        return [(name, m) for name, m in self.master.items() if m.requires_grad]

    def grads_to_master(self) -> None:
        """Move the bf16 gradients backward left on the model onto the fp32 masters."""
        for param, master in self.pairs:
            master.grad = None if param.grad is None else param.grad.to(torch.float32)
            param.grad = None

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the masters, just updated by the optimizer, into the bf16 model."""
        for param, master in self.pairs:
            param.copy_(master)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """A CPU fp32 copy of the weights training changes."""
        return {name: m.detach().to("cpu", copy=True) for name, m in self.named_trainable()}

    @torch.no_grad()
    def restore_fp32(self, model: torch.nn.Module, trainable_state: dict[str, torch.Tensor]) -> None:
        """Make ``model`` (the unwrapped model) fp32 with the master weights, then ``trainable_state`` on top."""
        model.to(torch.float32)
        params = dict(model.named_parameters())
        for name, master in self.master.items():
            params[name].copy_(trainable_state.get(name, master))
