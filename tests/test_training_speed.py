"""The fast training step computes the same losses and gradients as the plain reference step
(svae/training/bench.py)."""
import copy

import pytest
import torch

from svae.training.bench import reference_step
from svae.config import validate
from svae.data import load_dataset
from svae.model import Model
from svae.models.convs import use_fast_convs
from svae.presets import get_preset
from svae.training.trainer import Trainer

from helpers import tiny_toy


def image_cfg(preset, batch=6, **train):
    """The preset at a tiny batch, NCHW unless asked (the MNIST presets train channels_last, whose NHWC
    kernels round differently: test_channels_last_changes_nothing_but_the_layout covers that layout)."""
    cfg = get_preset(preset)
    cfg.train.batch_size, cfg.train.channels_last = batch, False
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return validate(cfg)


def image_data(cfg, n=24):
    from svae.training.bench import synthetic_data
    return synthetic_data(cfg, n, 8)


def recording(opt, store):
    """Wrap opt.step so that every update's gradients are kept (None where a parameter got none)."""
    real = opt.step

    def step(*args, **kwargs):
        store.append([None if p.grad is None else p.grad.detach().clone()
                      for g in opt.param_groups for p in g["params"]])
        return real(*args, **kwargs)

    opt.step = step


def run_both(cfg, data, steps=2, separate_passes=True, prepare=None, break_fast=None, direct_convs=False):
    """`steps` batches of the fast Trainer step and of reference_step from the same weights, batches and random
    state; returns their outputs and the gradients of every optimiser update, in order. The reference's convs
    take the same forms as the fast step's (svae/models/convs.py), or with direct_convs the direct kernels."""
    torch.manual_seed(cfg.train.seed)
    model = Model(cfg)
    ref = copy.deepcopy(model)
    if direct_convs:
        use_fast_convs(ref, False)  # the reference runs every conv by its direct kernel, as svae bench does
    tr = Trainer(model, data, cfg)
    # the same optimiser implementation on both sides, so the comparison can be tight
    betas = (cfg.train.beta1, cfg.train.beta2)
    ref_gen = torch.optim.Adam(list(ref.encoder.parameters()) + list(ref.decoder.parameters()), lr=cfg.train.lr,
                               betas=betas, fused=True)
    ref_critic = (torch.optim.Adam(ref.critic.parameters(), lr=cfg.train.lr, betas=betas, fused=True)
                  if ref.critic is not None else None)
    if prepare:
        prepare(model), prepare(ref)
    fast_grads, ref_grads, fast_out, ref_out = [], [], [], []
    for opt, store in ((tr.opt_gen, fast_grads), (tr.opt_critic, fast_grads), (ref_gen, ref_grads),
                       (ref_critic, ref_grads)):
        if opt is not None:
            recording(opt, store)
    if break_fast:
        break_fast(tr)
    for step in range(steps):
        x = tr.batch(step).contiguous()
        torch.manual_seed(100 + step)
        fast_out.append(tr.train_step())
        torch.manual_seed(100 + step)
        ref_out.append(reference_step(ref, ref_critic, ref_gen, x, cfg.train.critic_steps, cfg.train.gen_steps,
                                      separate_passes=separate_passes))
    return fast_out, ref_out, fast_grads, ref_grads, model, ref


def assert_same(cfg, data, rtol=1e-5, atol=1e-6, params=True, **kw):
    fast_out, ref_out, fast_grads, ref_grads, model, ref = run_both(cfg, data, **kw)
    for f, r in zip(fast_out, ref_out):
        assert set(r) <= set(f)
        for k in r:
            torch.testing.assert_close(f[k], r[k], rtol=rtol, atol=atol, msg=lambda m: f"loss {k}: {m}")
    assert len(fast_grads) == len(ref_grads) > 0
    for i, (gf, gr) in enumerate(zip(fast_grads, ref_grads)):
        for a, b in zip(gf, gr):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m: f"update {i}: {m}")
    for (k, a), b in zip(model.state_dict().items() if params else (), ref.state_dict().values()):
        if "running" not in k and "num_batches" not in k:  # BN averages: see the docstring of train_step
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m: f"parameter {k}: {m}")


@pytest.mark.parametrize("preset", ["toy-svae-r", "toy-alice", "toy-ali", "toy-svae", "toy-vae"])
def test_fast_step_equals_reference_on_the_toy(preset):
    """The toy's MLP critic has no batch statistics: separate passes are the same mathematics."""
    assert_same(tiny_toy(preset), load_dataset(tiny_toy(preset).data))


def test_fast_step_equals_reference_with_two_critic_steps_and_several_generator_steps():
    cfg = tiny_toy("toy-svae-r", critic_steps=2, gen_steps=3)
    assert_same(cfg, load_dataset(cfg.data), steps=3)


@pytest.mark.parametrize("preset", ["mnist-svae-r", "cifar10-alice"])
@pytest.mark.slow
def test_fast_step_equals_reference_with_a_batchnorm_critic_on_one_batch(preset):
    """Paper networks (BN everywhere; CIFAR-10 with noise inputs): the reference's critic on one batch of real
    and fake pairs, the definition of the mathematics (docs/method.md section 2). The decoder is called twice, as in
    the reference, so that both sides sum in the same order (test_batched_decoder_changes_nothing_but_rounding)."""
    cfg = image_cfg(preset, batch_decoder=False)
    # one BN batch for both joints, the estimator of this test; the MNIST presets' "apart" is two calls, whose
    # equality with the fast step's split batch is tests/test_metrics_evaluate_probe.py's (only up to rounding,
    # which Adam amplifies over two steps: see the separate-passes test below)
    cfg.model.critic_bn = "joint"
    assert_same(cfg, image_data(cfg), separate_passes=False, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("preset", ["mnist-svae-r", "cifar10-svae-r"])
def test_batched_decoder_changes_nothing_but_rounding(preset):
    """G(z) and G(E(x)) in one decoder call with BatchNorm per half (train.batch_decoder, on in the MNIST presets)
    against the reference's two calls; CIFAR-10's decoder draws noise for both halves in one call. One batch, no
    parameters: other summation orders (see the separate-passes test below)."""
    cfg = image_cfg(preset, batch_decoder=True)
    assert Trainer(Model(cfg), image_data(cfg), cfg).speed.batch_decoder
    assert_same(cfg, image_data(cfg), steps=1, separate_passes=False, rtol=1e-3, atol=1e-4, params=False)


@pytest.mark.parametrize("preset", ["mnist-svae-r", "cifar10-alice"])
def test_fast_conv_forms_change_nothing_but_rounding(preset):
    """The fast step with its conv forms (MNIST: polyphase, CIFAR-10: GEMM) against the reference with every conv
    by its direct kernel, as svae bench times them. Other summation orders round differently, so one batch and
    no parameters, for the reason given in the separate-passes test below (Adam on the zero-up-to-rounding
    gradients of conv biases before BN)."""
    cfg = image_cfg(preset)
    assert_same(cfg, image_data(cfg), steps=1, separate_passes=False, direct_convs=True, rtol=1e-3, atol=1e-4,
                params=False)


def test_the_decoder_is_batched_only_where_two_calls_compute_the_same():
    data = image_data(image_cfg("mnist-svae"))
    for preset, batched in (("mnist-svae-r", True), ("mnist-alice", True), ("mnist-svae", False), ("mnist-ali", False),
                            ("mnist-vae", False)):
        cfg = image_cfg(preset)
        assert Trainer(Model(cfg), data, cfg).speed.batch_decoder is batched, preset
    cfg = image_cfg("mnist-svae-r", batch_decoder=False)
    assert not Trainer(Model(cfg), data, cfg).speed.batch_decoder
    cfg = image_cfg("cifar10-svae-r")  # off in the CIFAR-10 presets: slower there (docs/speed.md)
    assert not Trainer(Model(cfg), image_data(cfg), cfg).speed.batch_decoder
    model = Model(image_cfg("mnist-svae-r"))
    model.decoder.net[1] = torch.nn.BatchNorm1d(1024)  # a BatchNorm that cannot normalise the halves apart
    assert not Trainer(model, data, model.cfg).speed.batch_decoder


def test_fast_step_equals_reference_with_separate_passes_when_the_critic_has_no_batch_statistics():
    """The reference as the benchmark runs it (separate passes), with the critic's BN in eval mode."""
    cfg = image_cfg("mnist-svae-r")

    def fixed_bn(m):
        for mod in m.critic.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.eval()

    # two half-size passes sum the convolutions in another order: float rounding, not mathematics. Parameters
    # are not compared: a conv bias before BN has a zero gradient up to rounding, and Adam turns that rounding
    # into steps of size lr, so those biases differ at 1e-4 while every loss and gradient agrees.
    # One batch only: from the second on, those Adam steps have changed the weights the gradients are taken at.
    assert_same(cfg, image_data(cfg), steps=1, prepare=fixed_bn, rtol=1e-3, atol=1e-4, params=False)


def test_channels_last_changes_nothing_but_the_layout():
    cfg = image_cfg("mnist-svae-r", channels_last=True)  # NHWC kernels round differently (see above)
    cfg.model.critic_bn = "joint"  # one critic pass on both sides: only the layout differs
    assert_same(cfg, image_data(cfg), steps=1, separate_passes=False, rtol=1e-3, atol=1e-4,
                params=False)


def test_the_comparison_fails_when_the_fast_step_changes_the_mathematics():
    """A fast step whose generator update ran against the critic before its update (a wrong reuse) is caught,
    and so is a step that draws a different z."""
    cfg = tiny_toy("toy-svae-r")

    def stale_critic(tr):
        real = tr.critic_step

        def critic_step(x, pair=None, **kw):
            before = copy.deepcopy(tr.model.critic.state_dict())
            loss = real(x, pair, **kw)
            tr.model.critic.load_state_dict(before)  # the generator update now sees the old critic
            return loss

        tr.critic_step = critic_step

    with pytest.raises(AssertionError):
        assert_same(cfg, load_dataset(cfg.data), break_fast=stale_critic)
    cfg.train.reuse_forward = False  # two draws per batch; the reference keeps one
    with pytest.raises(AssertionError):
        assert_same(cfg, load_dataset(cfg.data))


def test_reference_takes_two_passes_for_a_critic_normalised_apart():
    """model.critic_bn=apart is defined by two critic calls: asked for one pass, the reference still takes two, and
    equals the fast step's one call with each half normalised apart (one batch: Adam amplifies rounding after)."""
    cfg = image_cfg("mnist-svae-r", batch_decoder=False)
    assert cfg.model.critic_bn == "apart"
    assert_same(cfg, image_data(cfg), steps=1, separate_passes=False, rtol=1e-3, atol=1e-4, params=False)


def test_separate_passes_differ_on_a_batchnorm_critic():
    """Why the benchmark's reference is not the same estimator on BN critics (docs/speed.md)."""
    cfg = image_cfg("mnist-svae")
    cfg.model.critic_bn = "joint"  # one BN batch in the fast step (the MNIST presets' "apart" is two passes' estimator)
    with pytest.raises(AssertionError):
        assert_same(cfg, image_data(cfg), steps=1, rtol=1e-4, atol=1e-5)
