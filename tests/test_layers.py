"""The shared layers keep the invariants their papers state."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_course.layers import ConditionalBatchNorm2d, ModulatedConv2d, SelfAttention2d, SNConv2d, SNLinear


def test_spectral_norm_top_singular_value_is_one():
    torch.manual_seed(0)
    layer = SNLinear(64, 32)
    nn.init.normal_(layer.parametrizations.weight.original, std=3.0)
    layer.train()
    for _ in range(30):  # one power-iteration step per forward
        layer(torch.randn(4, 64))
    sigma = torch.linalg.svdvals(layer.weight.detach())[0]
    assert abs(sigma.item() - 1.0) < 1e-2
    conv = SNConv2d(8, 16, 3)
    for _ in range(30):
        conv(torch.randn(2, 8, 8, 8))
    assert abs(torch.linalg.svdvals(conv.weight.detach().flatten(1))[0].item() - 1.0) < 2e-2


def test_attention_rows_sum_to_one_and_gamma_zero_is_identity():
    torch.manual_seed(0)
    block = SelfAttention2d(16)
    x = torch.randn(2, 16, 6, 5)
    y, beta = block(x, return_attention=True)
    assert beta.shape == (2, 30, 30)
    assert torch.allclose(beta.sum(-1), torch.ones(2, 30), atol=1e-5)
    assert torch.equal(y, x)  # gamma = 0 at initialisation


def test_attention_fused_path_matches_explicit_path():
    torch.manual_seed(0)
    block = SelfAttention2d(16, sn=False)
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(2, 16, 4, 4)
    y_explicit, _ = block(x, return_attention=True)
    assert torch.allclose(block(x), y_explicit, atol=1e-5)
    pooled = SelfAttention2d(16, value_channels=8, pool=True, sn=False)
    assert pooled(x, return_attention=True)[1].shape == (2, 16, 4)


def test_conditional_batch_norm_uses_the_condition():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(4, cond_dim=3, sn=False)
    x = torch.randn(8, 4, 5, 5)
    assert torch.allclose(cbn(x, torch.zeros(8, 3)), cbn.bn(x), atol=1e-6)  # zero condition -> plain BN
    nn.init.normal_(cbn.gain.weight)
    a, b = cbn(x, torch.ones(8, 3)), cbn(x, -torch.ones(8, 3))
    assert not torch.allclose(a, b)


def test_modulated_conv_demodulation_gives_unit_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 32, 3, style_dim=16)
    x = torch.randn(4, 64, 16, 16)
    y = conv(x, torch.randn(4, 16) * 3)
    assert y.shape == (4, 32, 16, 16)
    interior = y[:, :, 1:-1, 1:-1]  # away from zero padding
    assert abs(interior.var().item() - 1.0) < 0.1
    undemod = ModulatedConv2d(64, 32, 3, style_dim=16, demodulate=False)
    assert abs(undemod(x, torch.randn(4, 16) * 3)[:, :, 1:-1, 1:-1].var().item() - 1.0) > 0.3


def test_modulated_conv_is_per_sample():
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 8, 3, style_dim=4)
    x, style = torch.randn(3, 8, 6, 6), torch.randn(3, 4)
    together = conv(x, style)
    alone = torch.cat([conv(x[i:i + 1], style[i:i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_attention_pooling_order_official_after_and_course_before():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 4, 4)
    after = SelfAttention2d(16, value_channels=8, pool=True, sn=False)
    assert after.pool == "after"
    with torch.no_grad():
        after.gamma.fill_(1.0)
    q = after.W_g(x).flatten(2).transpose(1, 2)
    k = F.max_pool2d(after.W_f(x), 2).flatten(2).transpose(1, 2)        # convolve, then pool (the official code)
    v = F.max_pool2d(after.W_h(x), 2).flatten(2).transpose(1, 2)
    o = after.W_v((q @ k.transpose(1, 2)).softmax(-1).matmul(v).transpose(1, 2).reshape(2, 8, 4, 4))
    assert torch.allclose(after(x), o + x, atol=1e-5)
    before = SelfAttention2d(16, value_channels=8, pool="before", sn=False)
    before.load_state_dict(after.state_dict())
    assert before(x, return_attention=True)[1].shape == (2, 16, 4)
    assert not torch.allclose(before(x), after(x), atol=1e-4)           # a max does not commute with a linear map
    with pytest.raises(ValueError, match="pool must be one of"):
        SelfAttention2d(16, pool="maybe")
