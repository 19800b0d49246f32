"""The generic trainer: one critic pass per update, which networks each update moves, seeds, exact resume."""
import pytest
import torch

from svae.data import load_dataset
from svae.model import Model
from svae.training.trainer import DivergenceError, Trainer

from helpers import tiny_toy


def make(cfg, run_dir=None):
    torch.manual_seed(cfg.train.seed)
    return Trainer(Model(cfg), load_dataset(cfg.data), cfg, run_dir)


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Counting(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls, self.batch = inner, 0, []

    def forward(self, x, z):
        self.calls += 1
        self.batch.append(len(x))
        return self.inner(x, z)


def test_critic_sees_real_and_fake_pairs_in_one_forward_pass():
    cfg = tiny_toy()
    tr = make(cfg)
    tr.model.critic = Counting(tr.model.critic)
    x = tr.batch(0)
    tr.critic_step(x)
    assert tr.model.critic.calls == 1 and tr.model.critic.batch == [2 * len(x)]
    tr.generator_step(x)
    assert tr.model.critic.calls == 2 and tr.model.critic.batch[-1] == 2 * len(x)


def test_critic_step_moves_only_the_critic_and_generator_step_only_encoder_decoder():
    tr = make(tiny_toy())
    x = tr.batch(0)
    before = params(tr.model)
    tr.critic_step(x)
    after = params(tr.model)
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"critic"}
    tr.generator_step(x)
    again = params(tr.model)
    changed = {k.split(".")[0] for k in after if not torch.equal(after[k], again[k])}
    assert changed == {"encoder", "decoder"}


def test_steps_per_batch_follow_the_config():
    cfg = tiny_toy(critic_steps=2, gen_steps=3)
    tr = make(cfg)
    tr.model.critic = Counting(tr.model.critic)
    tr.train_step()
    assert tr.model.critic.calls == 2 + 3 and tr.step == 1


def test_same_seed_same_result_and_other_seed_differs():
    def trained(cfg):  # build then train, one run after the other: seeding happens at the build
        t = make(cfg)
        t.fit(progress=False)
        return t

    a, b, c = trained(tiny_toy()), trained(tiny_toy()), trained(tiny_toy(seed=1))
    pa, pb, pc = params(a.model), params(b.model), params(c.model)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)


@pytest.mark.parametrize("preset", ["toy-svae-r", "toy-ali", "toy-vae"])
def test_resume_continues_bitwise_identically(tmp_path, preset):
    cfg = tiny_toy(preset, steps=10, log_every=3)
    full = make(cfg)
    full.fit(progress=False)
    half = make(cfg, tmp_path / "run")
    (tmp_path / "run").mkdir()
    half.fit(steps=5, progress=False)
    half.save()
    torch.manual_seed(1234)  # disturb the global RNG: the checkpoint must restore it
    resumed = make(cfg)
    resumed.resume(tmp_path / "run" / "checkpoints" / "last.pt")
    assert resumed.step == 5
    resumed.fit(progress=False)
    pf, pr = params(full.model), params(resumed.model)
    assert all(torch.equal(pf[k], pr[k]) for k in pf)
    assert full.opt_gen.state_dict()["state"][0]["exp_avg"].equal(resumed.opt_gen.state_dict()["state"][0]["exp_avg"])


def test_epoch_order_covers_every_point_once_per_epoch():
    cfg = tiny_toy(steps=8)  # 64 points, batch 16: 4 steps per epoch
    tr = make(cfg)
    seen = torch.cat([tr.batch(s) for s in range(4)])
    data = tr.data.x_train
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, data.tolist()))
    assert not torch.equal(torch.cat([tr.batch(s) for s in range(4, 8)]), seen)  # reshuffled next epoch


def test_marginal_estimator_trains_two_critics():
    cfg = tiny_toy("toy-svae-r")
    cfg.objective.estimator = "marginal"
    tr = make(cfg)
    assert tr.model.critic is not None and tr.model.critic_p is not None
    before = params(tr.model)
    hist = tr.fit(progress=False)
    after = params(tr.model)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("critic_p."))
    assert all(torch.isfinite(torch.tensor(r["loss_gen"])) for r in hist)


def test_divergence_stops_with_the_step_named():
    cfg = tiny_toy("toy-svae")
    tr = make(cfg)
    with torch.no_grad():
        next(tr.model.critic.parameters()).fill_(float("nan"))
    with pytest.raises(DivergenceError, match=r"diverged at step \d+: non-finite"):
        tr.fit(progress=False)


@pytest.mark.slow
def test_training_reduces_the_reconstruction_error():
    cfg = tiny_toy("toy-svae-r", steps=150, log_every=10)
    cfg.data.n_train, cfg.model.hidden = 512, 64
    tr = make(cfg)
    hist = tr.fit(progress=False)
    assert hist[-1]["rec_x"] < 0.5 * hist[0]["rec_x"]


def test_vae_loss_goes_down():
    cfg = tiny_toy("toy-vae", steps=100, log_every=10)
    hist = make(cfg).fit(progress=False)
    assert hist[-1]["loss_gen"] < hist[0]["loss_gen"]


def test_r1_is_computed_on_its_schedule_and_flattens_the_critic_at_encoder_pairs():
    """objective.r1: logged ("r1") on every r1_every-th batch only, and it does what it is for: after the same
    critic updates from the same weights, the critic's input gradient at the encoder pairs is far smaller."""
    def input_grad(tr, x):
        x = x.clone().requires_grad_()
        z_hat = tr.model.encoder(x).detach().requires_grad_()
        gx, gz = torch.autograd.grad(tr.model.critic(x, z_hat).sum(), (x, z_hat))
        return (gx.pow(2).sum(1) + gz.pow(2).sum(1)).mean().item()

    cfg = tiny_toy()
    cfg.objective.r1, cfg.objective.r1_every = 1.0, 2
    tr = make(cfg)
    logged = ["r1" in tr.train_step() for _ in range(4)]
    assert logged == [True, False, True, False]

    norms = {}
    for r1 in (0.0, 10.0):
        cfg = tiny_toy()
        cfg.objective.r1 = r1
        tr = make(cfg)
        x = tr.batch(0)
        for _ in range(100):  # the unpenalised critic's input gradient grows as it learns to tell the pairs apart
            tr.critic_step(x, r1=r1 > 0)
        norms[r1] = input_grad(tr, x)
    assert norms[10.0] < 0.2 * norms[0.0]  # measured: 0.014 against 0.126


def test_r1_through_the_fast_image_critic_equals_the_plain_one():
    """The penalty differentiates the critic's input gradient: through the MNIST critic's fast forms (channels_last,
    conv forms, in-place activations) its value and the critic's gradient equal those of the plain networks."""
    from svae.presets import get_preset
    from svae.training.bench import synthetic_data

    grads, pens = {}, {}
    for fast in (True, False):
        cfg = get_preset("mnist-svae-r")
        cfg.objective.r1 = 1.0
        cfg.train.batch_size, cfg.train.channels_last = 6, fast
        cfg.train.fast_convs = cfg.train.inplace_acts = fast
        torch.manual_seed(0)
        tr = Trainer(Model(cfg), synthetic_data(cfg, 24, 8), cfg)
        torch.manual_seed(1)
        x = tr.batch(0)
        pair = tr.forward_pair(x)
        captured = []
        real = tr.opt_critic.step

        def step(*a, _store=captured, _real=real, **k):
            _store.extend(p.grad.detach().clone() for g in tr.opt_critic.param_groups for p in g["params"])
            return _real(*a, **k)
        tr.opt_critic.step = step
        pens[fast] = tr.critic_step(x, pair, r1=True)["r1"].item()
        grads[fast] = captured
    assert pens[True] == pytest.approx(pens[False], rel=1e-3)
    for a, b in zip(grads[True], grads[False]):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5)


def test_lr_decay_runs_linearly_to_zero_over_the_last_epochs():
    cfg = tiny_toy(steps=8, lr_decay_epochs=1)  # 64 points, batch 16: 4 steps an epoch, so the last 4 decay
    tr = make(cfg)
    lr = cfg.train.lr
    assert [tr.lr_at(s) / lr for s in range(8)] == [1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    history = tr.fit(progress=False)
    assert [g["lr"] for o in tr.optimizers() for g in o.param_groups] == [0.25 * lr] * 2  # the last batch's
    assert [(r["step"], r["lr"] / lr) for r in history if "lr" in r] == [(4, 1), (8, 0.25)]
    assert make(tiny_toy(steps=8, lr_decay_epochs=5)).decay_steps == 8  # at most the whole run
    assert "lr" not in make(tiny_toy(steps=8)).fit(progress=False)[-1]  # constant: rows as before
    tr.rollbacks = 1  # a rollback halves the rate the schedule scales (tests/test_faults.py: the rollback itself)
    assert tr.lr_at(6) == lr * cfg.train.rollback_lr_factor * 0.5


def test_a_constant_run_resumed_before_the_decay_equals_a_run_decayed_from_the_start(tmp_path):
    # studies/mnist-lr-decay.yaml resumes constant-rate checkpoints with train.lr_decay_epochs set (docs/resuming.md)
    full = make(tiny_toy(steps=8, lr_decay_epochs=1))
    full.fit(progress=False)
    half = make(tiny_toy(steps=8), tmp_path / "run")
    (tmp_path / "run").mkdir()
    half.fit(steps=4, progress=False)
    half.save()
    resumed = make(tiny_toy(steps=8, lr_decay_epochs=1))
    resumed.resume(tmp_path / "run" / "checkpoints" / "last.pt")
    resumed.fit(progress=False)
    pf, pr = params(full.model), params(resumed.model)
    assert all(torch.equal(pf[k], pr[k]) for k in pf)
    constant = make(tiny_toy(steps=8))
    constant.fit(progress=False)
    assert not all(torch.equal(pf[k], v) for k, v in params(constant.model).items())
