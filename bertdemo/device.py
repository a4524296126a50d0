"""Which device and numeric precision to use, and the matching autocast context."""
from __future__ import annotations

import contextlib

import torch


def best_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_supports_bf16() -> bool:
    """True where oneDNN has native bf16 kernels (AVX512-BF16 or AMX): there bf16 autocast is ~2x fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def choose_precision(requested: str, device: torch.device) -> str:
    """Resolve "auto" to what the device does well; refuse what it can't do, with the alternative."""
    kind = device.type
    if requested == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if kind == "cpu":
            return "bf16" if cpu_supports_bf16() else "fp32"
        return "fp32"  # MPS autocast coverage is still partial; fp32 is the safe choice there
    if requested == "fp16" and kind == "cpu":
        raise ValueError("fp16 is not supported for training on a CPU. Use precision 'bf16' or 'fp32' (or 'auto').")
    if requested == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("This GPU has no bf16 support. Use precision 'fp16' or 'auto'.")
    return requested


def autocast(device: torch.device, precision: str):
    """An autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
