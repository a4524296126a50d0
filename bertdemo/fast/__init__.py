"""Optional speed paths. Each replaces a stock transformers/torch path, is tested against it
(``tests/test_fast_*.py``), and can be switched off, alone or all together, with one environment variable:

    BERTDEMO_FAST_OFF=master_weights,cpu_kernels,lean_forward,first_token_top,frozen_cache   # or "all"

- ``master_weights``: bf16 training on CPUs with native bf16 runs a bf16 model with fp32 master weights instead of
  autocast (off: autocast bf16, the stock mixed-precision path).
- ``cpu_kernels``: CPU training swaps torch's dropout for a cheaper mask and transformers' attention for a kernel
  with that dropout: the explicit maths on short texts and in bf16, where SDPA's flash backward is slower, and SDPA's
  fused kernel on fp32 texts of 32+ word-pieces without dropout, where it is faster (off: the model's own dropout
  and SDPA attention).
- ``lean_forward``: predictions, the attention view and attributions run a lean BERT forward with oneDNN-prepacked
  linears (off: the transformers forward; the attention view then uses an eager-attention copy).
- ``first_token_top``: training, and the lean forward's predictions and attributions, compute the classifier's last
  encoder layer for the first token only — the one position its head reads (off: every position, as transformers
  does; the attention view always computes every position).
- ``frozen_cache``: CPU training over more than one epoch keeps the frozen lower layers' output per text from the
  first epoch on and starts later batches above them (off: every epoch computes the frozen layers again).

What each buys is measured in ``bench/RESULTS.md``. Nothing in here is needed for correct results.
"""
from __future__ import annotations

import os

FAST_PATHS = ("master_weights", "cpu_kernels", "lean_forward", "first_token_top", "frozen_cache")
ENV = "BERTDEMO_FAST_OFF"


def enabled(name: str) -> bool:
    """False when ``$BERTDEMO_FAST_OFF`` names this fast path (or says "all"); read at each use, so a test or a
    benchmark can switch paths between runs in one process."""
    if name not in FAST_PATHS:
        raise ValueError(f"Unknown fast path {name!r}; the fast paths are {', '.join(FAST_PATHS)}.")
    off = {part.strip().lower() for part in os.environ.get(ENV, "").split(",") if part.strip()}
    unknown = off - {*FAST_PATHS, "all"}
    if unknown:
        raise ValueError(f"{ENV} names unknown fast paths: {', '.join(sorted(unknown))}. Use a comma-separated "
                         f"list of {', '.join(FAST_PATHS)}, or all.")
    return not ({name, "all"} & off)
