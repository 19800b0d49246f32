"""The five objectives (ALI, ALICE, sVAE, sVAE-r, VAE) as small pure functions over logits and tensors.

Conventions (docs/method.md sections 2-3): the critic f(x, z) returns a logit; encoder pairs (x, E(x)) are
labelled 1 and decoder pairs (G(z), z) labelled 0, so at the critic's optimum
f = log q(x,z) - log p(x,z).  Every loss here is a scalar to be minimised.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, make_dataclass

import torch
import torch.nn.functional as F

from .config import ObjectiveConfig
from .kinds import KINDS

ADVERSARIAL = tuple(k for k, row in KINDS.items() if row.adversarial)
WITH_RECONSTRUCTION = tuple(k for k, row in KINDS.items() if row.reconstructs)


def critic_loss(logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Logistic loss: encoder pairs are real (1), decoder pairs fake (0)."""
    return F.softplus(-logit_q).mean() + F.softplus(logit_p).mean()


def ali_generator_loss(logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Non-saturating ALI/BiGAN loss: encoder and decoder try to swap the critic's labels."""
    return F.softplus(logit_q).mean() + F.softplus(-logit_p).mean()


def svae_generator_loss(logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Plug-in symmetric KL: KL(q||p) + KL(p||q) = E_q f* - E_p f* on the raw logit."""
    return logit_q.mean() - logit_p.mean()


def probability_generator_loss(logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """The authors' scripts' encoder+decoder loss, on the critic's probabilities rather than its logits:
    mean sigmoid(f(x, E(x))) - mean sigmoid(f(G(z), z)). Bounded, and its gradient fades where the critic is sure."""
    return torch.sigmoid(logit_q).mean() - torch.sigmoid(logit_p).mean()


def r1_penalty(logit_q: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """R1 (Mescheder et al., 2018) on the joint: the mean over encoder pairs of ||grad_(x, z) f(x, E(x))||^2, with
    a graph so that the critic's update can descend it. Zero-centred: it pulls the critic flat where the encoder's
    pairs lie, which damps the oscillation of the game around its equilibrium instead of letting the critic's
    logits grow without bound. `inputs` are the tensors the logits were computed from (requires_grad set)."""
    grads = torch.autograd.grad(logit_q.sum(), inputs, create_graph=True)
    return sum(g.float().pow(2).flatten(1).sum(1) for g in grads).mean()


def distance(a: torch.Tensor, b: torch.Tensor, kind: str = "l2", reduction: str = "mean") -> torch.Tensor:
    """Squared (l2, Gaussian) or absolute (l1, Laplace) error: the mean over every element ("mean", lambda
    comparable across data sizes), or summed over each example's elements and averaged over the batch ("sum",
    the scale of the log-likelihood -log p(x|z): 784 times the mean on MNIST)."""
    if kind not in ("l2", "l1"):
        raise ValueError(f"unknown reconstruction distance {kind!r}; allowed: l2, l1")
    err = (a - b).pow(2) if kind == "l2" else (a - b).abs()
    if reduction == "mean":
        return err.mean()
    if reduction == "sum":
        return err.flatten(1).sum(dim=1).mean()
    raise ValueError(f"unknown reduction {reduction!r}; allowed: mean, sum")


def marginal_critic_loss(logit_joint: torch.Tensor, logit_marginal: torch.Tensor) -> torch.Tensor:
    """Two-critic estimator: pairs of one joint (1) against pairs of q(x)p(z) (0); the optimum is
    the log density ratio log joint(x,z) / (q(x)p(z))."""
    return F.softplus(-logit_joint).mean() + F.softplus(logit_marginal).mean()


def marginal_generator_loss(g_q: torch.Tensor, g_p: torch.Tensor) -> torch.Tensor:
    """The critic part of -L_xz under the two-critic estimator: E_q g_q + E_p g_p, where
    -L_xz = E_q g_q + E_p g_p - E_q log p(x|z) - E_p log q(z|x) (the likelihoods are the rec terms)."""
    return g_q.mean() + g_p.mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent dims, averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


def vae_loss(x: torch.Tensor, x_rec: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             sigma: float = 0.1, rec: str = "l2") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-L_x = -E_q log p(x|z) + KL(q(z|x) || p(z)), per data point, constants dropped.
    Returns (loss, negative log-likelihood, kl). Gaussian likelihood of std sigma (l2) or Laplace of
    scale sigma (l1), summed over the data dims."""
    dims = tuple(range(1, x.dim()))
    if rec == "l2":
        nll = ((x - x_rec).pow(2).sum(dim=dims) / (2 * sigma**2)).mean()
    elif rec == "l1":
        nll = ((x - x_rec).abs().sum(dim=dims) / sigma).mean()
    else:
        raise ValueError(f"unknown reconstruction distance {rec!r}; allowed: l2, l1")
    kl = gaussian_kl(mu, logvar)
    return nll + kl, nll, kl


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a draw from the Gaussian encoder through which gradients flow."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


# Objective is ObjectiveConfig frozen: the fields are declared once, in config.py, with their defaults
_Fields = make_dataclass("_Fields", [(f.name, f.type, field(default=f.default)) for f in fields(ObjectiveConfig)],
                         frozen=True)


@dataclass(frozen=True)
class Objective(_Fields):
    """One of the five models (the kind table, kinds.py): which adversarial term, and how much reconstruction."""

    @classmethod
    def of(cls, cfg: ObjectiveConfig) -> "Objective":
        return cls(**asdict(cfg))

    def rec_distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return distance(a, b, self.rec, self.rec_reduction)

    @property
    def adversarial(self) -> bool:
        return KINDS[self.kind].adversarial

    @property
    def uses_reconstruction(self) -> bool:
        """Whether the cycles G(E(x)) and E(G(z)) are needed for the loss (not just for logging)."""
        return KINDS[self.kind].reconstructs and self.lam > 0

    @property
    def critics(self) -> int:
        if not self.adversarial:
            return 0
        return 2 if self.estimator == "marginal" else 1

    # ---- the critic(s): one on the joint, or two against q(x)p(z) ----------------------------------------
    def critic_inputs(self, x: torch.Tensor, z_hat: torch.Tensor, x_tilde: torch.Tensor, z: torch.Tensor
                      ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """What each critic network sees in its one forward pass: encoder pairs (x, E(x)) and decoder pairs
        (G(z), z) as one batch; for the two-critic estimator, critic (x, E(x)) against (x, z) and critic_p
        (G(z), z) against (x, z), where x and z are independent draws: q(x)p(z)."""
        if self.estimator == "marginal":
            return {"critic": (torch.cat([x, x]), torch.cat([z_hat, z])),
                    "critic_p": (torch.cat([x_tilde, x]), torch.cat([z, z]))}
        return {"critic": (torch.cat([x, x_tilde]), torch.cat([z_hat, z]))}

    def split_logits(self, logits: dict[str, torch.Tensor], b: int
                     ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """(logit_q, logit_p, the two-critic estimator's logits on q(x)p(z) or None) from critic_inputs' outputs."""
        if self.estimator == "marginal":
            g_q, g_p = logits["critic"], logits["critic_p"]
            return g_q[:b], g_p[:b], (g_q[b:], g_p[b:])
        return logits["critic"][:b], logits["critic"][b:], None

    def critic_loss(self, logit_q: torch.Tensor, logit_p: torch.Tensor,
                    marginal: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The critic's loss: the logistic loss, or for two critics each joint against q(x)p(z)."""
        if marginal is None:
            return critic_loss(logit_q, logit_p)
        return marginal_critic_loss(logit_q, marginal[0]) + marginal_critic_loss(logit_p, marginal[1])

    # ---- the encoder+decoder ----------------------------------------------------------------------------
    def adversarial_loss(self, logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
        """Encoder+decoder loss from the critic(s): ALI's non-saturating form or sVAE's plug-in KL."""
        if self.estimator == "marginal":
            return marginal_generator_loss(logit_q, logit_p)
        if self.gen_loss == "probability":
            return probability_generator_loss(logit_q, logit_p)
        if KINDS[self.kind].gen_loss == "ali":
            return ali_generator_loss(logit_q, logit_p)
        return svae_generator_loss(logit_q, logit_p)

    def generator_loss(self, logit_q: torch.Tensor, logit_p: torch.Tensor,
                       rec_x: torch.Tensor | None = None, rec_z: torch.Tensor | None = None) -> torch.Tensor:
        """ALI/sVAE loss, plus lambda * (rec_x + z_weight * rec_z) for ALICE and sVAE-r."""
        loss = self.adversarial_loss(logit_q, logit_p)
        if self.uses_reconstruction:
            if rec_x is None or rec_z is None:
                raise ValueError(f"{self.kind} with lam={self.lam} needs rec_x and rec_z")
            loss = loss + self.lam * (rec_x + self.z_weight * rec_z)
        return loss

    def vae_terms(self, x: torch.Tensor, x_rec: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
                  ) -> dict[str, torch.Tensor]:
        """The VAE's loss -L_x (vae_loss) with its two parts, as the trainer logs them."""
        loss, nll, kl = vae_loss(x, x_rec, mu, logvar, self.vae_sigma, self.rec)
        return {"loss_gen": loss, "nll": nll, "kl": kl}
