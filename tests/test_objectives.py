"""The five objectives against hand computations, and the signs of their gradients."""
import math

import pytest
import torch

from svae.objectives import (Objective, ali_generator_loss, critic_loss, distance, gaussian_kl,
                             marginal_critic_loss, svae_generator_loss, vae_loss)

LQ = torch.tensor([2.0, -1.0, 0.5])  # critic logits on encoder pairs (x, E(x))
LP = torch.tensor([-3.0, 1.0, 0.0])  # critic logits on decoder pairs (G(z), z)


def sp(v):  # softplus by hand
    return math.log1p(math.exp(v))


def test_critic_loss_is_the_logistic_loss():
    want = sum(sp(-v) for v in LQ.tolist()) / 3 + sum(sp(v) for v in LP.tolist()) / 3
    assert critic_loss(LQ, LP).item() == pytest.approx(want, rel=1e-6)
    # equals binary cross-entropy with encoder pairs labelled 1 and decoder pairs 0
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert critic_loss(LQ, LP).item() == pytest.approx(
        (bce(LQ, torch.ones(3)) + bce(LP, torch.zeros(3))).item(), rel=1e-6)


def test_critic_loss_decreases_when_logits_separate_the_pairs():
    lq, lp = LQ.clone().requires_grad_(), LP.clone().requires_grad_()
    critic_loss(lq, lp).backward()
    assert (lq.grad < 0).all() and (lp.grad > 0).all()  # raise encoder-pair logits, lower decoder-pair ones
    assert critic_loss(LQ + 1, LP - 1) < critic_loss(LQ, LP)


def test_ali_generator_loss_by_hand_and_it_fools_the_critic():
    want = sum(sp(v) for v in LQ.tolist()) / 3 + sum(sp(-v) for v in LP.tolist()) / 3
    assert ali_generator_loss(LQ, LP).item() == pytest.approx(want, rel=1e-6)
    lq, lp = LQ.clone().requires_grad_(), LP.clone().requires_grad_()
    ali_generator_loss(lq, lp).backward()
    assert (lq.grad > 0).all() and (lp.grad < 0).all()  # the opposite direction of the critic


def test_svae_generator_loss_is_the_plug_in_symmetric_kl():
    assert svae_generator_loss(LQ, LP).item() == pytest.approx(LQ.mean().item() - LP.mean().item())
    lq, lp = LQ.clone().requires_grad_(), LP.clone().requires_grad_()
    svae_generator_loss(lq, lp).backward()
    assert torch.allclose(lq.grad, torch.full((3,), 1 / 3)) and torch.allclose(lp.grad, torch.full((3,), -1 / 3))


def test_distances_are_per_element_means():
    a, b = torch.zeros(2, 3), torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, -3.0]])
    assert distance(a, b, "l2").item() == pytest.approx((1 + 4 + 9) / 6)
    assert distance(a, b, "l1").item() == pytest.approx((1 + 2 + 3) / 6)
    with pytest.raises(ValueError, match="l2, l1"):
        distance(a, b, "l3")


@pytest.mark.parametrize("kind,adv", [("alice", ali_generator_loss), ("svae_r", svae_generator_loss)])
def test_regularised_losses_add_lambda_times_both_reconstructions(kind, adv):
    rx, rz = torch.tensor(0.3), torch.tensor(0.7)
    loss = Objective(kind, lam=0.5).generator_loss(LQ, LP, rx, rz)
    assert loss.item() == pytest.approx(adv(LQ, LP).item() + 0.5 * (0.3 + 0.7), rel=1e-6)


def test_alice_with_lambda_zero_is_ali_and_svae_r_with_lambda_zero_is_svae():
    rx, rz = torch.tensor(5.0), torch.tensor(7.0)
    assert Objective("alice", lam=0).generator_loss(LQ, LP, rx, rz) == Objective("ali", lam=0).generator_loss(LQ, LP)
    assert Objective("svae_r", lam=0).generator_loss(LQ, LP, rx, rz) == Objective("svae", lam=0).generator_loss(LQ, LP)
    assert not Objective("alice", lam=0).uses_reconstruction and Objective("alice", lam=1e-6).uses_reconstruction


def test_plain_models_ignore_lambda():
    # ALI and sVAE have no reconstruction term whatever lambda says
    assert not Objective("ali", lam=1.0).uses_reconstruction and not Objective("svae", lam=1.0).uses_reconstruction


def test_regularised_loss_without_reconstructions_is_an_error():
    with pytest.raises(ValueError, match="rec_x and rec_z"):
        Objective("svae_r", lam=1.0).generator_loss(LQ, LP)


def test_gaussian_kl_closed_form():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # 0.5 * (mu^2 + var - 1 - log var) per dim
    assert gaussian_kl(mu, logvar).item() == pytest.approx(0.5 * (1 + 0) + 0.5 * (4 - 1 - math.log(4)))
    assert gaussian_kl(torch.zeros(3, 2), torch.zeros(3, 2)).item() == 0.0


def test_vae_loss_is_negative_elbo():
    x, x_rec = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 2.5]])
    mu, logvar = torch.zeros(1, 2), torch.zeros(1, 2)
    loss, nll, kl = vae_loss(x, x_rec, mu, logvar, sigma=0.5, rec="l2")
    assert nll.item() == pytest.approx((1 + 0.25) / (2 * 0.25)) and kl.item() == 0.0 and loss == nll + kl
    _, nll1, _ = vae_loss(x, x_rec, mu, logvar, sigma=0.5, rec="l1")
    assert nll1.item() == pytest.approx((1 + 0.5) / 0.5)


def test_marginal_estimator_losses():
    # each critic: logistic loss of one joint against q(x)p(z); the generator pays E_q g_q + E_p g_p
    assert marginal_critic_loss(LQ, LP).item() == pytest.approx(critic_loss(LQ, LP).item())
    o = Objective("svae_r", lam=2.0, estimator="marginal")
    assert o.critics == 2
    loss = o.generator_loss(LQ, LP, torch.tensor(0.1), torch.tensor(0.2))
    assert loss.item() == pytest.approx(LQ.mean().item() + LP.mean().item() + 2.0 * 0.3, rel=1e-6)


def test_critic_counts():
    assert Objective("vae").critics == 0 and not Objective("vae").adversarial
    assert all(Objective(k).critics == 1 for k in ("ali", "alice", "svae", "svae_r"))


def test_sum_reduction_is_the_per_example_log_likelihood_scale():
    a, b = torch.zeros(2, 3), torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, -3.0]])
    assert distance(a, b, "l2", "sum").item() == pytest.approx((1 + 4 + 9) / 2)  # summed per example, batch mean
    assert distance(a, b, "l1", "sum").item() == pytest.approx((1 + 2 + 3) / 2)
    img = torch.rand(4, 1, 28, 28)
    assert distance(img, 0 * img, "l2", "sum").item() == pytest.approx(784 * distance(img, 0 * img).item(), rel=1e-5)
    with pytest.raises(ValueError, match="mean, sum"):
        distance(a, b, "l2", "max")
    o = Objective("svae_r", rec_reduction="sum")
    assert o.rec_distance(a, b).item() == pytest.approx(7.0)


def test_z_weight_scales_rec_z_only():
    lq, lp, rx, rz = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0]), torch.tensor(3.0), torch.tensor(5.0)
    obj = Objective(kind="svae_r", lam=2.0, z_weight=0.25)
    want = (lq.mean() - lp.mean()) + 2.0 * (3.0 + 0.25 * 5.0)
    assert obj.generator_loss(lq, lp, rx, rz).item() == pytest.approx(want.item())


def test_r1_penalty_is_the_mean_squared_input_gradient_over_x_and_z():
    """f(x, z) = w.x + |x|^2 + v.z by hand: grad_x = w + 2x, grad_z = v, so the penalty is the batch mean of
    |w + 2x|^2 + |v|^2; and it carries a graph, so a critic update can descend it."""
    from svae.objectives import r1_penalty
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(5, 3, generator=g).requires_grad_(), torch.randn(5, 2, generator=g).requires_grad_()
    w = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    v = torch.tensor([3.0, 0.25])
    logits = x @ w + x.pow(2).sum(1) + z @ v
    want = ((w.detach() + 2 * x.detach()).pow(2).sum(1) + v.pow(2).sum()).mean()
    pen = r1_penalty(logits, (x, z))
    assert pen.item() == pytest.approx(want.item(), rel=1e-6)
    pen.backward()  # d/dw mean |w + 2x|^2 = 2 mean (w + 2x)
    assert torch.allclose(w.grad, 2 * (w.detach() + 2 * x.detach()).mean(0), rtol=1e-5)
