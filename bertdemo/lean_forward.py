"""A lean inference forward for BERT classifiers: transformers' ``BertForSequenceClassification`` maths with
less Python around it, for predictions only (no attention weights, no gradients).

Why not the model's own forward: on a 12-word-piece text it spends about half of its ~8.6 ms in Python
(mask building, output plumbing, a dispatch per submodule); the arithmetic takes ~3 ms. This forward runs the
same operations on the same weights — the three Q/K/V projections as one matmul, SDPA, post-LayerNorm
blocks, the pooler and the head — in about half the time (bench/RESULTS.md). ``lean_forward(model)`` returns
it only for the architecture it reproduces, and only after its logits matched the model's own on probe
inputs; otherwise it returns None and the caller keeps the transformers forward.

Not in here: explanations (``bertdemo.explain`` uses the full model, hooks and all).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F

_log = logging.getLogger(__name__)
_ACTIVATIONS = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
                "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}


def lean_forward(model: torch.nn.Module) -> Callable[..., torch.Tensor] | None:
    """A ``forward(input_ids, attention_mask=None, token_type_ids=None) -> logits`` for ``model``, or None.

    The returned function reads ``model``'s weights as they are now (Q/K/V are concatenated once): call it
    again after changing the weights, dtype or device, or the two would disagree.
    """
    if not _supported(model):
        return None
    try:
        forward = _build(model)
        if _matches(model, forward):
            return forward
        _log.info("lean forward disagrees with %s's own: using the transformers forward", type(model).__name__)
    except (AttributeError, RuntimeError, TypeError) as err:  # a layer laid out unlike BERT's: not ours to run
        _log.info("no lean forward for %s: %s", type(model).__name__, err)
    return None


def _supported(model: torch.nn.Module) -> bool:
    config = model.config
    return (type(model).__name__ == "BertForSequenceClassification"
            and getattr(config, "model_type", "") == "bert"
            and not getattr(config, "is_decoder", False)
            and getattr(config, "position_embedding_type", "absolute") in (None, "absolute")
            and config.hidden_act in _ACTIVATIONS
            and config.problem_type in (None, "single_label_classification")
            and getattr(model.bert, "pooler", None) is not None
            # plain Linear layers only: quantized or adapter-wrapped ones compute something else
            and all(type(m) is torch.nn.Linear for m in model.modules() if "Linear" in type(m).__name__))


def _build(model: torch.nn.Module) -> Callable[..., torch.Tensor]:
    bert, config = model.bert, model.config
    heads = config.num_attention_heads
    act = _ACTIVATIONS[config.hidden_act]
    layers = []
    for layer in bert.encoder.layer:
        att, out = layer.attention.self, layer.attention.output
        layers.append((
            torch.cat([att.query.weight, att.key.weight, att.value.weight]).detach(),  # (3·d, d)
            torch.cat([att.query.bias, att.key.bias, att.value.bias]).detach(),
            out.dense.weight, out.dense.bias, out.LayerNorm,
            layer.intermediate.dense.weight, layer.intermediate.dense.bias,
            layer.output.dense.weight, layer.output.dense.bias, layer.output.LayerNorm,
        ))

    def norm(x: torch.Tensor, ln: torch.nn.LayerNorm) -> torch.Tensor:
        return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)

    @torch.inference_mode()
    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        h = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, T, d)
        B, T, d = h.shape
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask[:, None, None, :].bool()  # (B, 1, 1, T): which keys each query may see
        for wqkv, bqkv, wo, bo, ln1, wi, bi, wo2, bo2, ln2 in layers:
            q, k, v = F.linear(h, wqkv, bqkv).view(B, T, 3, heads, d // heads).permute(2, 0, 3, 1, 4)  # (B, H, T, hd)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, T, d)
            h = norm(F.linear(context, wo, bo) + h, ln1)
            h = norm(F.linear(act(F.linear(h, wi, bi)), wo2, bo2) + h, ln2)
        pooled = torch.tanh(bert.pooler.dense(h[:, 0]))  # (B, d): the [CLS] position
        return model.classifier(pooled)  # (B, C)

    return forward


def _matches(model: torch.nn.Module, forward: Callable[..., torch.Tensor]) -> bool:
    """The lean logits equal the model's own on a padded probe batch (within the weights' precision)."""
    param = next(model.parameters())
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(min(1000, vocab // 2), vocab, (2, 9), generator=generator).to(param.device)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    types = torch.zeros_like(ids)
    if getattr(model.config, "type_vocab_size", 1) > 1:
        types[:, 3:] = 1  # a second segment, as sentence-pair tokenizers make
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            expected = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.float()
            got = forward(ids, attention_mask=mask, token_type_ids=types).float()
            alone = forward(ids[1:, :5], token_type_ids=types[1:, :5]).float()  # the padded row alone, no mask
    finally:
        model.train(was_training)
    tol = 1e-4 if param.dtype == torch.float32 else 3e-2
    return (got.shape == expected.shape and torch.allclose(got, expected, rtol=tol, atol=tol)
            and torch.allclose(alone, expected[1:], rtol=tol, atol=tol))
