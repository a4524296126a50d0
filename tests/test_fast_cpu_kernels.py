"""The CPU dropout the training loop swaps in must behave like torch's dropout: same rate, same scaling, same
switch between train and eval, reproducible under a seed, and gradients through the same mask."""
import torch

from bertdemo.fast.cpu_training_kernels import ATTENTION, CpuDropout, cpu_dropout, use_cpu_training_kernels


def test_drops_at_the_requested_rate_and_scales_survivors():
    x = torch.ones(200_000)
    for p in (0.1, 0.5):
        y = cpu_dropout(x, p)
        kept = (y != 0).float().mean().item()
        assert abs(kept - (1 - p)) < 0.005
        assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
        assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_is_the_identity_in_eval_and_at_zero_and_keeps_shape_and_dtype():
    x = torch.randn(3, 5, 7, dtype=torch.bfloat16)
    assert cpu_dropout(x, 0.1, training=False) is x
    assert cpu_dropout(x, 0.0) is x
    y = cpu_dropout(x, 0.3)
    assert y.shape == x.shape and y.dtype == x.dtype
    layer = CpuDropout(0.3).eval()
    assert torch.equal(layer(x), x)


def test_same_seed_same_mask_and_gradient_uses_that_mask():
    torch.manual_seed(7)
    a = cpu_dropout(torch.ones(4, 33), 0.25)
    torch.manual_seed(7)
    x = torch.ones(4, 33, requires_grad=True)
    b = cpu_dropout(x, 0.25)
    assert torch.equal(a, b)
    b.sum().backward()
    assert torch.equal(x.grad, b.detach())  # d(mask * x / (1-p))/dx = mask / (1-p)


def test_model_switch_keeps_eval_outputs_and_uses_our_attention(tiny_model_dir):
    from bertdemo.models import load_classifier

    ids = torch.tensor([[2, 7, 9, 11, 3, 0], [2, 5, 6, 3, 0, 0]])
    mask = (ids != 0).long()
    plain = load_classifier(str(tiny_model_dir), ("a", "b"), attn="sdpa").eval()
    torch.manual_seed(0)
    swapped = use_cpu_training_kernels(load_classifier(str(tiny_model_dir), ("a", "b"), attn="sdpa")).eval()
    swapped.load_state_dict(plain.state_dict())
    assert swapped.config._attn_implementation == ATTENTION
    assert not any(type(m) is torch.nn.Dropout for m in swapped.modules())
    expected = plain(input_ids=ids, attention_mask=mask).logits
    # with gradients on, training's own attention path (masked softmax on the padded rows), then SDPA's
    assert torch.allclose(swapped(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(swapped(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-5)


def test_attention_probabilities_are_dropped_in_training(tiny_model_dir):
    from bertdemo.fast.cpu_training_kernels import eager_attention
    from bertdemo.models import load_classifier

    attention = use_cpu_training_kernels(load_classifier(str(tiny_model_dir), ("a", "b"))).bert.encoder.layer[0].attention.self
    attention.train()
    q = k = v = torch.randn(2, 4, 6, 16, requires_grad=True)  # (B, H, T, D)
    _, weights = eager_attention(attention, q, k, v, None, dropout=0.5)
    dropped = (weights == 0).float().mean().item()
    assert 0.4 < dropped < 0.6
    kept = weights[weights != 0]
    assert torch.all(kept > 0)
