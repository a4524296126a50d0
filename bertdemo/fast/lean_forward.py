"""A lean forward for BERT classifiers (fast path ``lean_forward``): transformers'
``BertForSequenceClassification`` maths with less Python around it, for predictions, the attention view and
gradients with respect to the word embeddings.

Why not the model's own forward: on a short text it spends about half of its time in Python (mask building,
output plumbing, a dispatch per submodule) rather than arithmetic. This forward runs the same operations on the
same weights — the three Q/K/V projections as one matmul, SDPA, post-LayerNorm blocks, the pooler and the
head — with far less of that, and bf16 predictions run oneDNN-prepacked weights (``_Dense``; the figures are
in bench/RESULTS.md). ``lean_forward(model)`` returns
it only for the architecture it reproduces, and only after its logits matched the model's own on probe
inputs; otherwise it returns None and the caller keeps the transformers forward.

Attributions (``bertdemo.explain.attributions``) differentiate ``LeanBert.from_embeddings``; the attention view reads
``LeanBert.with_attentions``. Both use explicit attention maths instead of SDPA (which returns no weights,
and whose CPU backward is slow at these sizes).
"""
from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F

from bertdemo.fast.cpu_training_kernels import fused_backward_pays
from bertdemo.fast.probe import logits_tolerance, probe_batch

_log = logging.getLogger(__name__)
# config.hidden_act -> (the function, oneDNN's name for it when fused into the linear before it)
_ACTIVATIONS = {"gelu": (F.gelu, ("gelu", "none")),
                "gelu_new": (lambda x: F.gelu(x, approximate="tanh"), ("gelu", "tanh")),
                "gelu_pytorch_tanh": (lambda x: F.gelu(x, approximate="tanh"), ("gelu", "tanh")),
                "relu": (F.relu, ("relu", ""))}


def lean_forward(model: torch.nn.Module, prepack: bool = True, *, first_token_top: bool = True) -> LeanBert | None:
    """The ``LeanBert`` of ``model`` (``lean(input_ids, attention_mask=None, token_type_ids=None) -> logits``), or None.

    It reads ``model``'s weights as they are now (Q/K/V are concatenated once): build it again after changing
    the weights, dtype or device, or the two would disagree. ``prepack=False`` keeps ``F.linear`` for
    predictions too (the benchmark's comparison); ``first_token_top=False`` computes every position of the last
    layer (fast path ``first_token_top`` off).
    """
    if not _supported(model):
        return None
    try:
        forward = LeanBert(model, prepack, first_token_top)
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
            and isinstance(config.hidden_act, str) and config.hidden_act in _ACTIVATIONS
            # logits only: a softmax or the sigmoids of a multi-label run are applied by the caller
            and config.problem_type in (None, "single_label_classification", "multi_label_classification")
            and getattr(model.bert, "pooler", None) is not None
            # plain Linear layers only: quantized or adapter-wrapped ones compute something else
            and all(type(m) is torch.nn.Linear for m in model.modules() if "Linear" in type(m).__name__))


class LeanBert:
    """The lean forward of one BERT classifier: ``lean(input_ids, attention_mask, token_type_ids)`` for
    predictions (inference mode), ``lean.from_embeddings(...)`` for gradients with respect to the word
    embeddings (integrated gradients). Both read the model's weights as they were when it was built."""

    def __init__(self, model: torch.nn.Module, prepack: bool = True, first_token_top: bool = True):
        bert, config = model.bert, model.config
        self._bert = bert
        self._pooler = _Dense(bert.pooler.dense.weight, bert.pooler.dense.bias, prepack=prepack)
        self._head = _Dense(model.classifier.weight, model.classifier.bias, prepack=prepack)
        self._heads = config.num_attention_heads
        # The head reads position 0 of the last layer only: its query and everything after attention are computed
        # there alone, unless every position's attention is asked for (bertdemo.fast.first_token_top says why).
        self._first_token_top = first_token_top
        activation = _ACTIVATIONS[config.hidden_act]
        self._layers = []
        for layer in bert.encoder.layer:
            att, out = layer.attention.self, layer.attention.output
            self._layers.append((
                _Dense(torch.cat([att.query.weight, att.key.weight, att.value.weight]),  # (3·d, d)
                       torch.cat([att.query.bias, att.key.bias, att.value.bias]), prepack=prepack),
                _Dense(out.dense.weight, out.dense.bias, prepack=prepack), out.LayerNorm,
                _Dense(layer.intermediate.dense.weight, layer.intermediate.dense.bias, activation, prepack=prepack),
                _Dense(layer.output.dense.weight, layer.output.dense.bias, prepack=prepack), layer.output.LayerNorm,
            ))
        # the top layer's query apart from its keys and values, for the first token: rows of its packed Q/K/V
        top, d = self._layers[-1][0], config.hidden_size
        self._top_query = _Dense(top.weight[:d], top.bias[:d], prepack=prepack)
        self._top_key_value = _Dense(top.weight[d:], top.bias[d:], prepack=prepack)

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        return self._bert.embeddings.word_embeddings

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.from_embeddings(self.word_embeddings(input_ids), attention_mask, token_type_ids)

    @torch.inference_mode()
    def with_attentions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                        token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits (B, C), each layer's attention weights (B, H, T, T)): the attention view's forward."""
        attentions: list[torch.Tensor] = []
        logits = self.from_embeddings(self.word_embeddings(input_ids), attention_mask, token_type_ids,
                                      attentions=attentions)
        return logits, attentions

    def from_embeddings(self, embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                        token_type_ids: torch.Tensor | None = None, *,
                        attentions: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits (B, C) from word embeddings (B, T, d) in the model's dtype; differentiable in ``embeds``
        (position and token-type embeddings are added here, as the model's embedding layer does). Pass a list
        as ``attentions`` to have each layer's attention weights (B, H, T, T) appended to it."""
        h = self._bert.embeddings(inputs_embeds=embeds, token_type_ids=token_type_ids)  # (B, T, d)
        B, T, d = h.shape
        heads = self._heads
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask[:, None, None, :].bool()  # (B, 1, 1, T): which keys each query may see
        # torch's CPU SDPA picks a flash kernel whose backward is slower than the plain maths on short texts and
        # in bf16, faster on long fp32 ones; its forward is the faster one for predictions (bench/RESULTS.md)
        grad = embeds.requires_grad and torch.is_grad_enabled()
        if attentions is not None:
            attend = functools.partial(_attention, keep=attentions)
        elif grad and not fused_backward_pays(h.dtype, T):
            attend = _attention
        else:
            attend = F.scaled_dot_product_attention
        top = len(self._layers) - 1 if attentions is None and self._first_token_top else None
        for i, (qkv, attn_out, ln1, ffn_in, ffn_out, ln2) in enumerate(self._layers):
            if i == top:
                q = self._top_query(h[:, :1], grad).view(B, 1, heads, d // heads).transpose(1, 2)  # (B, H, 1, hd)
                k, v = self._top_key_value(h, grad).view(B, T, 2, heads, d // heads).permute(2, 0, 3, 1, 4)
                h = h[:, :1]
            else:
                q, k, v = qkv(h, grad).view(B, T, 3, heads, d // heads).permute(2, 0, 3, 1, 4)  # (B, H, T, hd)
            context = attend(q, k, v, attn_mask=mask).transpose(1, 2).reshape(B, h.shape[1], d)
            h = _norm(attn_out(context, grad) + h, ln1)
            h = _norm(ffn_out(ffn_in(h, grad), grad) + h, ln2)
        pooled = torch.tanh(self._pooler(h[:, 0], grad))  # (B, d): the [CLS] position
        return self._head(pooled, grad)  # (B, C)


class _Dense:
    """One Linear layer: ``F.linear`` where gradients flow, oneDNN's prepacked linear for predictions on CPU.

    At prediction sizes (a dozen rows) ``F.linear`` re-lays the bf16 weight out for oneDNN on every call, which
    costs about as much as the matmul itself (bench/RESULTS.md). Packing once is what torch's own compiler
    does when it freezes a model (``torch._inductor``'s ``freezing``), through the same two ``mkldnn`` ops
    used here. They are torch-internal, so the pack is checked against ``F.linear`` when built and any
    failure keeps ``F.linear`` (the logits are checked again by ``_matches``).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, activation: tuple | None = None, *,
                 prepack: bool = True):
        """``activation``: an ``_ACTIVATIONS`` entry applied after the layer (fused into it when prepacked)."""
        self.weight, self.bias = weight.detach(), bias.detach()
        self.activation, (self.attr, self.algorithm) = (activation or (None, ("none", "")))
        self.packed = None
        if prepack:
            self._prepack()

    def __call__(self, x: torch.Tensor, grad: bool = False) -> torch.Tensor:
        if self.packed is None or grad:
            y = F.linear(x, self.weight, self.bias)
            return self.activation(y) if self.activation else y
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, self.attr, [], self.algorithm)

    def _prepack(self) -> None:
        """Pack the weight for oneDNN, and keep the pack only if it computes what ``F.linear`` does."""
        weight = self.weight
        if weight.device.type != "cpu" or weight.dtype != torch.bfloat16 or not torch.backends.mkldnn.is_available():
            return
        try:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight)
            x = torch.randn(3, weight.shape[1], generator=torch.Generator().manual_seed(0)).to(weight.dtype)
            with torch.inference_mode():
                same = torch.allclose(self(x).float(), self(x, grad=True).float(), rtol=2e-2, atol=2e-2)
        except (AttributeError, RuntimeError, TypeError) as err:  # an op torch renamed or a build without it
            _log.info("no prepacked linear: %s", err)
            same = False
        if not same:
            self.packed = None


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None,
               keep: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Scaled dot-product attention as transformers' eager BERT writes it, except that the softmax is taken in
    fp32 (transformers takes it in the model's dtype: the same in fp32, less rounding in bf16); the weights
    (B, H, T, T), in fp32, are appended to ``keep`` when given."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, H, T, T)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32)
    if keep is not None:
        keep.append(weights)
    return torch.matmul(weights.to(v.dtype), v)


def _norm(x: torch.Tensor, ln: torch.nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _matches(model: torch.nn.Module, forward: LeanBert) -> bool:
    """The lean logits equal the model's own on the padded probe batch (within the weights' precision), also for
    the padded row run alone without a mask."""
    probe = probe_batch(model)
    types = probe.get("token_type_ids")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            expected = model(**probe).logits.float()
            got = forward(**probe).float()
            alone = forward(probe["input_ids"][1:, :5],
                            token_type_ids=None if types is None else types[1:, :5]).float()
    finally:
        model.train(was_training)
    tol = logits_tolerance(model)
    return (got.shape == expected.shape and torch.allclose(got, expected, rtol=tol, atol=tol)
            and torch.allclose(alone, expected[1:], rtol=tol, atol=tol))
