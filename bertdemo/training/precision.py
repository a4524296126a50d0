"""How a training step handles numeric precision: one strategy object per choice, so the step never branches.

- ``Plain``: fp32 weights and maths — the stock path. It is also what runs under ``accelerate launch
  --mixed_precision``, where accelerate autocasts and scales by itself.
- ``Autocast``: fp32 weights, torch autocast to bf16 or fp16 (fp16 adds a gradient scaler): GPUs, and CPU bf16
  when the ``master_weights`` fast path is off.
- ``MasterWeightsBf16``: CPU bf16 — a bf16 model whose optimizer updates fp32 masters
  (``bertdemo.fast.master_weights``).

Each strategy is built from the fp32 model before ``accelerator.prepare`` and answers: which tensors the optimizer
updates, how the forward is wrapped, how backward and the optimizer step go, and how the best weights are kept
and put back for saving (always fp32).
"""
from __future__ import annotations

import contextlib

import torch
from accelerate import Accelerator

from bertdemo import fast
from bertdemo.device import choose_precision
from bertdemo.fast.master_weights import MasterWeights


class Plain:
    """fp32 (or whatever ``accelerate launch --mixed_precision`` set up): the plain training step."""

    def __init__(self, accelerator: Accelerator, model: torch.nn.Module, name: str = "fp32"):
        self.accelerator, self.model, self.name = accelerator, model, name

    def named_trainable(self) -> list[tuple[str, torch.Tensor]]:
        """(name, tensor) of what the optimizer updates."""
        return [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]

    def autocast(self):
        return self.accelerator.autocast()  # a no-op unless accelerate was launched with mixed precision

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def step(self, optimizer: torch.optim.Optimizer, max_grad_norm: float) -> None:
        self.accelerator.clip_grad_norm_(self.model.parameters(), max_grad_norm)
        optimizer.step()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the weights training changes (frozen ones need no copy)."""
        return {name: p.detach().to("cpu", copy=True) for name, p in self.named_trainable()}

    def restore(self, model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Put ``state`` (a snapshot) into ``model``, the unwrapped model about to be saved."""
        model.load_state_dict(state, strict=False)


class Autocast(Plain):
    """fp32 weights, bf16/fp16 maths under torch autocast; fp16 scales the loss so small gradients survive."""

    def __init__(self, accelerator: Accelerator, model: torch.nn.Module, name: str):
        super().__init__(accelerator, model, name)
        self.dtype = torch.bfloat16 if name == "bf16" else torch.float16
        self.scaler = torch.amp.GradScaler(accelerator.device.type) if name == "fp16" else None

    def autocast(self):
        return torch.autocast(device_type=self.accelerator.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        if self.scaler is None:
            return super().backward(loss)
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, max_grad_norm: float) -> None:
        if self.scaler is None:
            return super().step(optimizer, max_grad_norm)
        self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        self.accelerator.clip_grad_norm_(self.model.parameters(), max_grad_norm)
        self.scaler.step(optimizer)
        self.scaler.update()


class MasterWeightsBf16(Plain):
    """A bf16 model with fp32 masters: forward and backward in bf16, updates in fp32, written back each step."""

    def __init__(self, accelerator: Accelerator, model: torch.nn.Module):
        super().__init__(accelerator, model, "bf16")
        # Built from the fp32 weights, before accelerate.prepare; every rank builds the same ones (the seed
        # makes the new head identical), so DDP's start-up broadcast of the bf16 model agrees with them.
        self.master = MasterWeights(model)

    def named_trainable(self) -> list[tuple[str, torch.Tensor]]:
        return self.master.named_trainable()

    def autocast(self):
        return contextlib.nullcontext()  # the model is bf16 already

    def step(self, optimizer: torch.optim.Optimizer, max_grad_norm: float) -> None:
        self.master.grads_to_master()
        torch.nn.utils.clip_grad_norm_([m for _, m in self.master.named_trainable()], max_grad_norm)
        optimizer.step()
        self.master.write_back()

    def snapshot(self) -> dict[str, torch.Tensor]:
        return self.master.trainable_state()

    def restore(self, model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        self.master.restore_fp32(model, state)  # saved runs are fp32, like the model they came from


def precision_strategy(requested: str, accelerator: Accelerator, model: torch.nn.Module) -> Plain:
    """The strategy for ``requested`` ("auto", "bf16", "fp16", "fp32") on this accelerator's device."""
    if accelerator.mixed_precision != "no":  # `accelerate launch --mixed_precision` takes precedence
        return Plain(accelerator, model, accelerator.mixed_precision)
    device = accelerator.device
    name = choose_precision(requested, device)
    if name == "fp32":
        return Plain(accelerator, model)
    if name == "bf16" and device.type == "cpu" and fast.enabled("master_weights"):
        return MasterWeightsBf16(accelerator, model)
    return Autocast(accelerator, model, name)
