"""This machine's matmul peak and the training-FLOP count that turns a throughput into an MFU.

Not a general profiler: it answers one question, "what share of the matmul rate this machine actually
delivers does training spend on real (non-padding) tokens?". The peak is *measured* (square matmuls in the
same process, all threads), not read off a datasheet, so "CPU MFU" here is relative to what torch reaches.

    python bench/hw.py                 # CPU bf16 + fp32 matmul TFLOP/s
    python bench/hw.py --device cuda   # the same on a GPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

# helpers


def machine_line(device: str = "cpu") -> str:
    """One line naming the hardware and software the numbers came from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
            f.seek(0)
            flags = next(line for line in f if line.startswith("flags")).split()
        extras = [name for name in ("avx512_bf16", "amx_bf16", "amx_tile") if name in flags]
    except (OSError, StopIteration):
        extras = []
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    line = (f"{cpu} ({'/'.join(extras) or 'no bf16 ISA'}), {os.cpu_count()} cores, {mem_gb:.0f} GB; "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    if device == "cuda" and torch.cuda.is_available():
        line += f"; GPU {torch.cuda.get_device_name(0)}"
    try:
        import transformers
        line += f", transformers {transformers.__version__}"
    except ImportError:
        pass
    return line


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _best_seconds(run, device: str, seconds: float) -> float:
    """The fastest single ``run()`` seen within ``seconds`` (best, so a noisy neighbour costs less)."""
    for _ in range(2):  # warm up: oneDNN/cuBLAS pick kernels on the first calls
        run()
    _sync(device)
    best = float("inf")
    reps_per_timing = 1 if device == "cpu" else 20  # a GPU matmul alone is shorter than its launch and sync
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(reps_per_timing):
            run()
        _sync(device)
        best = min(best, (time.perf_counter() - start) / reps_per_timing)
    return best


def matmul_tflops(dtype: torch.dtype, *, device: str = "cpu", n: int = 2048, seconds: float = 1.5) -> float:
    """Best-of-reps TFLOP/s of an n×n @ n×n matmul in ``dtype``."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n**3 / _best_seconds(lambda: a @ b, device, seconds) / 1e12


def linear_tflops(rows: int, d_in: int, d_out: int, *, device: str = "cpu", seconds: float = 0.5) -> float:
    """Best-of-reps bf16 TFLOP/s of one Linear's matmul, (rows × d_in) @ (d_in × d_out), as training runs it."""
    x = torch.randn(rows, d_in, device=device).to(torch.bfloat16)
    w = torch.randn(d_out, d_in, device=device).to(torch.bfloat16)
    return 2 * rows * d_in * d_out / _best_seconds(lambda: x @ w.t(), device, seconds) / 1e12


def step_shape_tflops(rows: int = 448, hidden: int = 384, ffn: int = 1536, device: str = "cpu") -> float:
    """The bf16 rate of the encoder's own Linear shapes at ``rows`` tokens per batch (32 texts × 14 word-pieces
    by default), FLOP-weighted: the ceiling an MFU at that batch shape can approach, below the square peak."""
    shapes = [(rows, hidden, hidden)] * 4 + [(rows, hidden, ffn), (rows, ffn, hidden)]
    flops = [2 * m * k * n for m, k, n in shapes]
    seconds = sum(f / (linear_tflops(m, k, n, device=device) * 1e12) for f, (m, k, n) in zip(flops, shapes))
    return sum(flops) / seconds / 1e12


def measure_peaks(device: str = "cpu", seconds: float = 1.0) -> dict:
    """{"bf16_tflops", "fp32_tflops", "by_size", "machine"} for ``device`` ("cpu" or "cuda").

    The peak is the best rate over a few square sizes: on a small shared VM the best size moves between runs,
    and a higher peak only makes the MFU we report more conservative.
    """
    sizes = (512, 1024, 2048) if device == "cpu" else (4096, 8192)
    by_size = {dtype_name: {n: round(matmul_tflops(dtype, device=device, n=n, seconds=seconds), 3) for n in sizes}
               for dtype_name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))}
    return {"bf16_tflops": max(by_size["bf16"].values()), "fp32_tflops": max(by_size["fp32"].values()),
            "by_size": by_size, "bf16_tflops_at_step_shapes": round(step_shape_tflops(device=device), 3),
            "threads": torch.get_num_threads(), "machine": machine_line(device)}


def model_shape(model_path: str) -> dict:
    """Non-embedding parameter count, layers and hidden size of a BERT-style encoder, from its config."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_path)
    d, layers, ffn = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    # per layer: Q,K,V,O (4·d² + 4·d) + FFN in/out (2·d·ffn + ffn + d) + two LayerNorms (4·d)
    per_layer = 4 * d * d + 4 * d + 2 * d * ffn + ffn + d + 4 * d
    # Embeddings (word/position/type) are lookups, not matmuls; the pooler and head see one token per text.
    return {"non_embedding_params": layers * per_layer, "layers": layers, "hidden": d}


def training_flops(lengths, shape: dict) -> float:
    """Training FLOPs for one pass over texts of these real-token ``lengths``.

    Per token 6·N (forward 2·N, backward 4·N) over the non-embedding parameters N, plus the attention
    scores and mixing, 12·L·d·T per token for a text of T tokens (the PaLM appendix count).
    """
    n, layers, d = shape["non_embedding_params"], shape["layers"], shape["hidden"]
    return float(sum(6 * n * t + 12 * layers * d * t * t for t in lengths))


def mfu(real_token_flops: float, train_seconds: float, peak_tflops: float) -> float:
    """Share of the measured peak spent on real-token training FLOPs."""
    return real_token_flops / train_seconds / (peak_tflops * 1e12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(measure_peaks(args.device)))


if __name__ == "__main__":
    main()
