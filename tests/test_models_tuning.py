"""svae/models/tuning.py: NHWC kept through flatten and unflatten, in-place activations, split batches."""
import copy

import pytest
import torch
from torch import nn

from svae.config import ModelConfig
from svae.models import build_networks
from svae.models.blocks import with_noise
from svae.models.tuning import (BatchNorm1d, BatchNorm2d, Flatten, Unflatten, can_split_batch, is_nhwc,
                                split_batch, use_channels_last, use_inplace_acts)

CL = torch.channels_last


def test_flatten_of_nhwc_gives_the_nchw_order_and_hands_the_gradient_back_nhwc():
    x = torch.randn(3, 4, 5, 6)
    xl = x.contiguous(memory_format=CL).requires_grad_(True)
    y = Flatten()(xl)
    torch.testing.assert_close(y, x.flatten(1), rtol=0, atol=0)  # (C, H, W) order, as the Linear after it expects
    g = torch.randn_like(y)
    y.backward(g)
    assert is_nhwc(xl.grad)
    torch.testing.assert_close(xl.grad, g.view(3, 4, 5, 6), rtol=0, atol=0)
    xc = x.clone().requires_grad_(True)  # NCHW: nn.Flatten's view, gradient NCHW
    Flatten()(xc).backward(g)
    assert xc.grad.is_contiguous() and not is_nhwc(xc.grad)


def test_unflatten_gives_nhwc_only_under_use_channels_last():
    net = nn.Sequential(nn.Linear(3, 24), Unflatten(1, (4, 2, 3)), nn.Conv2d(4, 5, 1))
    h = torch.randn(2, 3)
    plain = net[1](net[0](h))
    assert not is_nhwc(plain)
    use_channels_last(net, True)
    assert net[2].weight.is_contiguous(memory_format=CL)
    nhwc = net[1](net[0](h))
    assert is_nhwc(nhwc)
    torch.testing.assert_close(nhwc, plain, rtol=0, atol=0)
    use_channels_last(net, False)
    assert not is_nhwc(net[1](net[0](h))) and net[2].weight.is_contiguous()


def test_is_nhwc_reads_strides_and_ignores_the_ambiguous_shapes():
    assert is_nhwc(torch.randn(2, 3, 4, 4).contiguous(memory_format=CL))
    assert not is_nhwc(torch.randn(2, 3, 4, 4))
    assert not is_nhwc(torch.randn(2, 1, 4, 4).contiguous(memory_format=CL))  # one channel: the same memory
    assert not is_nhwc(torch.randn(2, 3, 1, 1).contiguous(memory_format=CL))  # 1x1 map: the same memory
    assert not is_nhwc(torch.randn(2, 3))


def test_inplace_acts_only_after_layers_with_a_fresh_output():
    net = nn.Sequential(nn.ReLU(), nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.0), nn.ReLU(),
                        nn.Sequential(nn.Conv2d(1, 1, 1), nn.LeakyReLU(0.2), nn.BatchNorm1d(4), nn.ReLU()))
    use_inplace_acts(net, True)
    assert [m.inplace for m in net.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))] == [False, True, False, True,
                                                                                             True]
    use_inplace_acts(net, False)
    assert not any(getattr(m, "inplace", False) for m in net.modules())


@pytest.mark.parametrize("arch", ["mnist", "cifar10"])
def test_inplace_acts_change_no_value_or_gradient_and_leave_the_input_alone(arch):
    torch.manual_seed(0)
    cfg = ModelConfig(arch, z_dim=8, enc_noise=0, dec_noise=0)
    nets = build_networks(cfg, critics=1)
    fast = copy.deepcopy(nets)
    for net in (fast.encoder, fast.decoder, fast.critic):
        use_inplace_acts(net, True)
    assert any(m.inplace for m in fast.decoder.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU)))
    z = torch.randn(4, 8)
    outs = []
    for n in (nets, fast):
        zz = z.clone().requires_grad_(True)
        x = n.decoder(zz)
        before = x.detach().clone()
        loss = n.critic(x, n.encoder(x)).sum()
        loss.backward()
        torch.testing.assert_close(x, before, rtol=0, atol=0)  # the networks' inputs are not written over
        outs.append((loss.detach(), zz.grad, [p.grad for p in n.decoder.parameters()]))
    (l0, g0, p0), (l1, g1, p1) = outs
    torch.testing.assert_close(l1, l0, rtol=0, atol=0)
    torch.testing.assert_close(g1, g0, rtol=0, atol=0)
    for a, b in zip(p1, p0):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("norm,shape", [(BatchNorm1d, (8, 5)), (BatchNorm2d, (8, 3, 4, 4))])
def test_split_batch_norm_is_separate_calls_in_outputs_gradients_and_running_averages(norm, shape):
    torch.manual_seed(0)
    split = norm(shape[1])
    nn.init.uniform_(split.weight), nn.init.uniform_(split.bias)
    two = copy.deepcopy(split)
    x = torch.randn(shape) * 3 + 1
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    g = torch.randn(shape)
    with split_batch(split, 2):
        y1 = split(x1)
    y2 = torch.cat([two(x2[:4]), two(x2[4:])])
    (y1 * g).sum().backward(), (y2 * g).sum().backward()
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=0)
    torch.testing.assert_close(split.weight.grad, two.weight.grad, rtol=1e-6, atol=1e-6)  # summed in one order or
    torch.testing.assert_close(split.bias.grad, two.bias.grad, rtol=1e-6, atol=1e-6)      # the other
    for name in ("running_mean", "running_var", "num_batches_tracked"):  # updated once per half, in order
        torch.testing.assert_close(getattr(split, name), getattr(two, name), rtol=0, atol=0)
    assert int(split.num_batches_tracked) == 2
    # the halves really are normalised apart: one call on the whole batch differs
    assert not torch.allclose(two(x), y1)


def test_split_batch_resets_even_on_error_and_leaves_eval_mode_alone():
    bn = BatchNorm1d(3)
    with pytest.raises(RuntimeError, match="boom"):
        with split_batch(bn, 2):
            assert bn.splits == 2
            raise RuntimeError("boom")
    assert bn.splits == 1
    bn.eval()
    x = torch.randn(4, 3)
    with split_batch(bn, 2):
        torch.testing.assert_close(bn(x), bn.eval()(x))


def test_can_split_batch_needs_every_batchnorm_to_be_a_split_one():
    for arch in ("toy", "mnist", "cifar10", "celeba"):
        assert can_split_batch(build_networks(ModelConfig(arch), critics=1).decoder)
    assert can_split_batch(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))  # per-sample layers only
    assert not can_split_batch(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))


def test_a_split_decoder_call_draws_the_noise_of_separate_calls():
    """CIFAR-10's decoder concatenates 20 noise dims: one call on [z1; z2] under split_batch draws what two calls
    would, in the same order, at sizes where one draw of the whole would not (torch's normal sampler fills
    blocks of 16)."""
    cfg = ModelConfig("cifar10", z_dim=8, dec_noise=3)
    dec = build_networks(cfg, critics=1).decoder
    z = torch.randn(14, 8)
    torch.manual_seed(1)
    with split_batch(dec, 2):
        both = dec(z)
    torch.manual_seed(1)
    apart = torch.cat([dec(z[:7]), dec(z[7:])])
    torch.testing.assert_close(both, apart, rtol=1e-6, atol=1e-6)
    torch.manual_seed(1)
    whole = with_noise(z, 3)
    torch.manual_seed(1)
    assert not torch.equal(whole, torch.cat([with_noise(z[:7], 3), with_noise(z[7:], 3)]))
