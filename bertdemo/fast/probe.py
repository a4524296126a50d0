"""The padded probe batch on which a fast path checks its logits against the model's own before it is used
(``lean_forward``, ``first_token_top``): two texts of 9 ids, the second padded after 5, with a second segment where
the model has token types — what tokenizers of sentence pairs make."""
from __future__ import annotations

import torch


def probe_batch(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask (and token_type_ids where the model has more than one type), on its device."""
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(min(1000, vocab // 2), vocab, (2, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    probe = {"input_ids": ids, "attention_mask": mask}
    if getattr(model.config, "type_vocab_size", 1) > 1:
        types = torch.zeros_like(ids)
        types[:, 3:] = 1
        probe["token_type_ids"] = types
    device = next(model.parameters()).device
    return {name: tensor.to(device) for name, tensor in probe.items()}


def logits_tolerance(model: torch.nn.Module) -> float:
    """How far the logits of two exact paths may differ: fp32 rounding, or that of the weights' 16-bit type."""
    return 1e-4 if next(model.parameters()).dtype == torch.float32 else 3e-2
