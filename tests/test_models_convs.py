"""The CPU conv forms (polyphase, GEMM, bias apart) compute what nn.Conv2d / nn.ConvTranspose2d compute, with their parameters."""
import copy

import pytest
import torch
from torch import nn

from svae.config import validate
from svae.model import Model
from svae.models import x_shape
from svae.models.convs import Conv2d, ConvTranspose2d, conv_weight, deconv_weight, use_fast_convs
from svae.models.tuning import use_channels_last
from svae.presets import get_preset


def _both_forms(layer, x, form):
    """Output and gradients (input, weight, bias) of the layer's own form and of the direct kernel."""
    results = []
    for fast in (True, False):
        layer.fast = fast
        assert layer.form(x) == (form if fast else "direct")
        xi = x.detach().clone().requires_grad_()
        layer.zero_grad(set_to_none=True)
        y = layer(xi)
        # a fixed random cotangent: every output element weighs differently, so a misplaced tap shows
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
        (y * g).sum().backward()
        results.append((y.detach(), xi.grad, layer.weight.grad.clone(), layer.bias.grad.clone()))
    (y, *grads), (y0, *grads0) = results
    assert y.shape == y0.shape
    for a, b in zip((y, *grads), (y0, *grads0)):
        torch.testing.assert_close(a, b, atol=5e-5, rtol=1e-5)
    return y


CONVS = [  # (in, out, kernel, padding, input size, form)
    (1, 7, 5, 2, 28, "polyphase"),   # MNIST's first encoder and critic convs
    (2, 7, 5, 2, 28, "polyphase"),   # the "pair" critic input
    (6, 5, 5, 2, 4, "gemm"),         # CIFAR-10's last critic and encoder convs: 4x4 -> 2x2
    (6, 5, 5, 2, 3, "gemm"),         # odd map -> 2x2
    (6, 5, 4, 1, 4, "gemm"),         # CelebA's 4x4 kernels
    (6, 5, 5, 2, 8, "direct"),       # 8x8 -> 4x4: the direct kernel measured faster
    (3, 5, 5, 2, 28, "direct"),      # three channels are not thin
    (1, 5, 5, 2, 7, "direct"),       # thin but odd: no 2x2 space-to-depth
]


@pytest.mark.parametrize("cin,cout,k,p,size,form", CONVS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_forms_match_the_direct_kernel(cin, cout, k, p, size, form, channels_last):
    torch.manual_seed(0)
    layer = Conv2d(cin, cout, k, stride=2, padding=p)
    x = torch.randn(3, cin, size, size)
    if channels_last:
        layer, x = layer.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = _both_forms(layer, x, form)
    if channels_last and form != "direct":  # the layout the direct kernel would hand on
        assert y.is_contiguous(memory_format=torch.channels_last)


DECONVS = [  # (in, out, input size, form)
    (6, 1, 14, "polyphase"),   # MNIST's last decoder layer
    (6, 2, 14, "polyphase"),
    (6, 5, 4, "gemm"),         # CIFAR-10's and CelebA's first decoder deconv: 4x4 -> 8x8
    (6, 5, 2, "gemm"),
    (6, 5, 7, "direct"),       # MNIST's 7x7 -> 14x14 (NCHW; NHWC adds its bias apart)
]


@pytest.mark.parametrize("cin,cout,size,form", DECONVS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_deconv_forms_match_the_direct_kernel(cin, cout, size, form, channels_last):
    torch.manual_seed(0)
    layer = ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)
    x = torch.randn(3, cin, size, size)
    if channels_last:
        layer, x = layer.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        form = "bias_apart" if form == "direct" else form
    y = _both_forms(layer, x, form)
    assert y.shape[-2:] == (2 * size, 2 * size)
    if channels_last:
        assert y.is_contiguous(memory_format=torch.channels_last)


def test_bias_apart_only_where_there_is_a_bias_and_not_for_an_output_size():
    layer = ConvTranspose2d(6, 5, 5, stride=2, padding=2, output_padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(2, 6, 7, 7).contiguous(memory_format=torch.channels_last)
    assert layer.form(x) == "bias_apart"
    # an explicit output_size takes nn.ConvTranspose2d's own path, with its checks and the same values
    torch.testing.assert_close(layer(x, output_size=[14, 14]), layer(x), atol=1e-5, rtol=1e-5)
    plain = ConvTranspose2d(6, 5, 5, stride=2, padding=2, output_padding=1, bias=False)
    assert plain.to(memory_format=torch.channels_last).form(x) == "direct"


@pytest.mark.parametrize("layer,size", [(Conv2d(1, 4, 5, stride=2, padding=2), 8), (Conv2d(6, 4, 5, stride=2, padding=2), 4),
                                        (ConvTranspose2d(6, 1, 5, stride=2, padding=2, output_padding=1), 4),
                                        (ConvTranspose2d(6, 4, 5, stride=2, padding=2, output_padding=1), 4),
                                        (ConvTranspose2d(6, 4, 5, stride=2, padding=2, output_padding=1)
                                         .to(memory_format=torch.channels_last), 7)])  # bias_apart
def test_forms_under_bf16_autocast_give_the_direct_kernels_dtype(layer, size):
    x = torch.randn(2, layer.in_channels, size, size)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        layer.fast = False
        y0 = layer(x)
    assert y.dtype == y0.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y0.float(), atol=0.1, rtol=0.05)


def test_rearranged_kernels_place_every_tap_once():
    """Each of the 25 taps lands in exactly one place of the 3x3 phase kernels; the other 11 entries are zeros."""
    w = torch.arange(1.0, 26.0).view(1, 1, 5, 5)
    for k in (conv_weight(w), deconv_weight(w)):
        assert k.numel() == 36
        assert sorted(k[k != 0].tolist()) == list(range(1, 26))


def test_options_the_forms_do_not_cover_take_the_direct_kernel():
    x = torch.randn(2, 4, 4, 4)
    assert Conv2d(4, 4, 5, stride=2, padding=2, groups=2).form(x) == "direct"
    assert Conv2d(4, 4, 5, stride=2, padding=2, padding_mode="reflect").form(x) == "direct"
    assert Conv2d(4, 4, 3, padding="same").form(x) == "direct"
    deconv = ConvTranspose2d(4, 1, 5, stride=2, padding=2, output_padding=1)
    direct = nn.functional.conv_transpose2d(x, deconv.weight, deconv.bias, stride=2, padding=2, output_padding=1)
    assert torch.equal(deconv(x, output_size=[8, 8]), direct)  # an explicit output size: the direct kernel, exactly


def test_state_dict_is_that_of_the_plain_layers():
    layer = Conv2d(1, 4, 5, stride=2, padding=2)
    plain = nn.Conv2d(1, 4, 5, stride=2, padding=2)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(layer(x), plain(x), atol=1e-5, rtol=1e-5)
    deconv = ConvTranspose2d(4, 1, 5, stride=2, padding=2, output_padding=1)
    assert deconv.state_dict().keys() == nn.ConvTranspose2d(4, 1, 5, 2, 2, 1).state_dict().keys()


def _forms_used(model, layout=torch.contiguous_format):
    """{network: sorted forms its conv layers took} in one training-mode forward of each network."""
    used: dict[str, list[str]] = {}
    handles = []
    for net_name, net in model.networks().items():
        for m in net.modules():
            if isinstance(m, (Conv2d, ConvTranspose2d)):
                handles.append(m.register_forward_pre_hook(
                    lambda mod, args, n=net_name: used.setdefault(n, []).append(mod.form(args[0]))))
    x = torch.rand(4, *x_shape(model.cfg.model.arch)).contiguous(memory_format=layout)
    z = model.sample_prior(4)
    model.encoder(x), model.decoder(z), model.critic(x, z)
    for h in handles:
        h.remove()
    return {k: sorted(v) for k, v in used.items()}


def test_the_paper_networks_take_the_forms_measured_faster():
    mnist = Model(validate(get_preset("mnist-svae-r")))
    assert _forms_used(mnist) == {"encoder": ["direct", "polyphase"], "decoder": ["direct", "polyphase"],
                                  "critic": ["direct", "direct", "polyphase"]}
    cifar = Model(validate(get_preset("cifar10-svae-r")))
    assert _forms_used(cifar) == {"encoder": ["direct"] * 3 + ["gemm"], "decoder": ["direct", "direct", "gemm"],
                                  "critic": ["direct"] * 3 + ["gemm"]}
    use_channels_last(mnist, True)  # as the MNIST presets train (train.channels_last)
    assert _forms_used(mnist, torch.channels_last)["decoder"] == ["bias_apart", "polyphase"]
    use_fast_convs(mnist, False)
    assert set(sum(_forms_used(mnist).values(), [])) == {"direct"}


@pytest.mark.parametrize("preset", ["mnist-svae-r", "cifar10-svae-r"])
def test_paper_networks_compute_the_same_either_way(preset):
    torch.manual_seed(0)
    model = Model(validate(get_preset(preset)))
    direct = copy.deepcopy(model)
    use_fast_convs(direct, False)
    model.eval(), direct.eval()
    x, z = torch.rand(4, *x_shape(model.cfg.model.arch)) * 2 - 1, model.sample_prior(4)
    torch.manual_seed(1)  # the CIFAR-10 networks draw noise inputs: the same draws on both sides
    outs = [model.encoder(x), model.decoder(z), model.critic(x, z)]
    torch.manual_seed(1)
    for a, b in zip(outs, [direct.encoder(x), direct.decoder(z), direct.critic(x, z)]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("make,size", [(lambda: Conv2d(1, 4, 5, stride=2, padding=2), 8),
                                       (lambda: Conv2d(6, 4, 5, stride=2, padding=2), 4),
                                       (lambda: ConvTranspose2d(6, 1, 5, stride=2, padding=2, output_padding=1), 4),
                                       (lambda: ConvTranspose2d(6, 4, 5, stride=2, padding=2, output_padding=1), 4),
                                       (lambda: ConvTranspose2d(6, 4, 5, stride=2, padding=2, output_padding=1), 7),
                                       (lambda: ConvTranspose2d(6, 4, 5, stride=2, padding=2, output_padding=1)
                                        .to(memory_format=torch.channels_last), 7)])  # direct, bias_apart
def test_spectral_norm_runs_one_power_iteration_per_call_in_every_form(make, size):
    """The critic_norm=spectral critics: a form that read the weight twice would run two power iterations."""
    torch.manual_seed(0)
    fast = nn.utils.parametrizations.spectral_norm(make())
    direct = copy.deepcopy(fast)
    use_fast_convs(direct, False)
    x = torch.randn(2, fast.in_channels, size, size)
    for _ in range(2):
        torch.testing.assert_close(fast(x), direct(x), atol=1e-5, rtol=1e-5)
    sn, sn0 = fast.parametrizations.weight[0], direct.parametrizations.weight[0]
    assert torch.equal(sn._u, sn0._u) and torch.equal(sn._v, sn0._v)
