"""The lean forward must give the transformers model's own logits, padded batches included, and step
aside for any model it does not reproduce."""
import pytest
import torch
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification)

from bertdemo.fast.lean_forward import lean_forward
from bertdemo.inference.predict import Predictor


def _bert(**overrides) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=1200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3, **overrides)
    return BertForSequenceClassification(config).eval()


def test_same_logits_as_transformers_on_a_padded_batch():
    model = _bert()
    forward = lean_forward(model)
    assert forward is not None
    ids = torch.randint(5, 1200, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        got = forward(ids, attention_mask=mask, token_type_ids=types)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length", [9, 40])  # explicit attention maths; SDPA's fused kernel (long fp32 texts)
def test_gradients_through_the_word_embeddings_match_transformers(length):
    """Attributions differentiate ``from_embeddings``: same logits, same gradients, on short and long texts."""
    model = _bert().requires_grad_(False)
    lean = lean_forward(model)
    ids = torch.randint(5, 1200, (2, length))
    mask = torch.ones_like(ids)
    mask[1, length - 3:] = 0
    embeds = model.get_input_embeddings()(ids)
    grads, logits = [], []
    for forward in (lambda x: model(inputs_embeds=x, attention_mask=mask).logits,
                    lambda x: lean.from_embeddings(x, attention_mask=mask)):
        x = embeds.clone().requires_grad_(True)
        out = forward(x)
        (grad,) = torch.autograd.grad(out[:, 1].sum(), x)
        logits.append(out.detach())
        grads.append(grad)
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)
    assert grads[1][1, length - 3:].abs().max() == 0  # padding gets no gradient: the mask holds in either attention


def test_prepacked_bf16_weights_give_the_plain_bf16_logits():
    """On CPU, bf16 predictions run oneDNN's prepacked linear (GELU fused): same logits as F.linear, up to bf16."""
    model = _bert().to(torch.bfloat16)
    packed, plain = lean_forward(model), lean_forward(model, prepack=False)
    assert packed is not None and plain is not None
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert all(dense.packed is not None for dense in packed._layers[0] if hasattr(dense, "packed"))
    assert plain._layers[0][0].packed is None
    ids = torch.randint(5, 1200, (4, 13))
    mask = torch.ones_like(ids)
    mask[2, 8:] = 0
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask).logits.float()
        got = packed(ids, attention_mask=mask).float()
    torch.testing.assert_close(got, expected, rtol=3e-2, atol=3e-2)
    torch.testing.assert_close(plain(ids, attention_mask=mask).float(), expected, rtol=3e-2, atol=3e-2)


def test_attention_weights_match_the_eager_models():
    model = _bert(attn_implementation="eager")
    lean = lean_forward(model)
    ids = torch.randint(5, 1200, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask, output_attentions=True)
        logits, attentions = lean.with_attentions(ids, attention_mask=mask)
    torch.testing.assert_close(logits, expected.logits, rtol=1e-5, atol=1e-5)
    assert len(attentions) == len(expected.attentions) == 2
    for got, want in zip(attentions, expected.attentions):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert float(attentions[0][1, :, :, 7:].max()) == 0  # no attention to padding


def test_other_activations_are_reproduced_and_unknown_architectures_are_refused():
    assert lean_forward(_bert(hidden_act="relu")) is not None
    assert lean_forward(_bert(hidden_act="silu")) is None  # not in the lean forward's table: keep transformers'
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=1200, dim=32, n_layers=1, n_heads=4,
                                                                  hidden_dim=64, num_labels=2))
    assert lean_forward(distil) is None


def test_a_model_the_lean_forward_gets_wrong_is_refused():
    model = _bert()
    # a patched, non-standard feed-forward block
    model.bert.encoder.layer[0].intermediate.forward = lambda h: torch.ones(*h.shape[:-1], 64)
    assert lean_forward(model) is None


def test_predictor_uses_it_and_falls_back_without_it(tiny_run):
    lean = Predictor.from_run(tiny_run, precision="fp32")
    assert lean.uses_lean_forward
    plain = Predictor.from_run(tiny_run, precision="fp32", lean=False)
    assert not plain.uses_lean_forward
    texts = ["pizza and cheese", "a long tennis match that went on and on", "fog"]
    torch.testing.assert_close(torch.from_numpy(lean.predict_proba(texts)),
                               torch.from_numpy(plain.predict_proba(texts)), rtol=1e-4, atol=1e-5)
