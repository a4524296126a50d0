"""CPU training kernels (fast path ``cpu_kernels``): dropout with a cheap random mask, and an eager attention
kernel that uses it. ``use_cpu_training_kernels(model)`` switches a model to both, whatever the dropout rate.

Why not ``torch.nn.Dropout``: on CPU it draws one Mersenne-Twister number per element from torch's single,
locked generator, and at MiniLM's sizes (32 texts x 14 word-pieces x 384) that is a large share of a bf16
training step (bench/RESULTS.md). Here one 64-bit draw yields four 16-bit uniforms, so the generator does a
quarter of the work, and the mask is applied with one ``torch.where``. Same seeding (torch's CPU generator),
same expectation: ``p`` is rounded to a multiple of 1/65536 and the survivors are scaled by exactly that rate.

Why the attention swap, also at dropout 0: transformers' SDPA attention with dropout falls back to the same
maths with torch's dropout, and without dropout it takes a flash kernel whose backward is slower than this
eager path on short texts, and in bf16 (bench/RESULTS.md). Where that kernel wins — fp32, keys of
``FUSED_FROM`` word-pieces or more, no dropout — the swapped function calls it. On GPUs torch's own kernels are
fast and nothing is swapped.

Not in here: which precision or attention the model predicts with (``bertdemo.inference``).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

ATTENTION = "bertdemo_cpu_training"  # the name our attention function is registered under in transformers
_INT64_MIN = torch.iinfo(torch.int64).min
# From this many keys on, SDPA's fused fp32 CPU kernel (forward and backward) beats the explicit maths below; under
# it the explicit maths win. bf16 keeps the explicit maths: its fused backward was slower on a bf16 CPU
# (bench/RESULTS.md, "Long texts, a third look" and "Second round").
FUSED_FROM = 32


def cpu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale survivors by 1/(1-p)."""
    if not training or p <= 0.0:
        return x
    if x.device.type != "cpu":
        return nn.functional.dropout(x, p, training=True)
    dropped = round(p * 65536)  # out of 65536 equally likely 16-bit values
    if dropped >= 65536:
        return torch.zeros_like(x)
    n = x.numel()
    # random_(min, None) fills all 64 bits uniformly; viewed as int16 that is four uniforms per draw.
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(_INT64_MIN, None).view(torch.int16)[:n]
    keep = bits.view(x.shape) >= -32768 + dropped
    return torch.where(keep, x * (65536 / (65536 - dropped)), 0)


class CpuDropout(nn.Dropout):
    """``nn.Dropout`` with the mask drawn by ``cpu_dropout`` (same ``p``, same train/eval switch; never in
    place, which transformers' BERTs do not ask for)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_dropout(x, self.p, self.training)


def eager_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                    **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' eager attention with ``cpu_dropout`` on the attention probabilities; SDPA's fused kernel where
    it is faster and nothing is dropped (the module docstring says where)."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    differentiated = torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)
    dropped = module.training and dropout > 0
    if not dropped and (not differentiated or fused_backward_pays(query.dtype, key.size(-2))):
        # evaluation passes, and the frozen lower layers (bertdemo.training.freezing), whose inputs and weights
        # need no gradient: without a backward, SDPA's fused CPU kernel is faster; with one, on long fp32 texts
        output = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                            scale=scaling)
        return output.transpose(1, 2).contiguous(), None
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, H, T, T)
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = cpu_dropout(nn.functional.softmax(weights, dim=-1), dropout, module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()  # (B, T, H, D)
    return output, weights


def fused_backward_pays(dtype: torch.dtype, keys: int) -> bool:
    """Whether SDPA's fused kernel differentiates an attention over ``keys`` positions faster than the explicit
    maths (``FUSED_FROM``)."""
    return dtype == torch.float32 and keys >= FUSED_FROM


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION, eager_attention)
    AttentionMaskInterface.register(ATTENTION, eager_mask)  # the additive float mask eager attention expects


def use_cpu_training_kernels(model: nn.Module) -> nn.Module:
    """Swap ``model``'s dropout layers (and, where the architecture allows, its attention) to ``cpu_dropout``.

    Meant for training on CPU; weights are untouched, so the model saves and reloads like any other. Returns
    the same model.
    """
    for module in model.modules():
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, name, CpuDropout(child.p, inplace=child.inplace))
    _register()
    try:
        model.set_attn_implementation(ATTENTION)
    except (AttributeError, ValueError) as err:  # no pluggable attention: it keeps its own, and torch's dropout
        logging.getLogger(__name__).info("%s keeps its own attention: %s", type(model).__name__, err)
    return model
