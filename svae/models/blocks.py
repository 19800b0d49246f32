"""Pieces every architecture shares: noise concatenation, the latent head, the prior, the network contract.

The contract the trainer relies on (and nothing more):
  encoder(x) -> z                    (B, z_dim); encoder.gaussian(x) -> (mu, logvar) for a Gaussian head
  decoder(z) -> x                    in the data's model range; decoder.out_range is (lo, hi) or None
  critic(x, z) -> logits             (B,)
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import ModelConfig
from .convs import Conv2d, ConvTranspose2d
from .tuning import BatchNorm1d, BatchNorm2d, Unflatten


def sample_prior(n: int, z_dim: int, prior: str, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw n codes from p(z): standard normal, or uniform on [-1, 1]."""
    if prior == "normal":
        return torch.randn(n, z_dim, device=device, generator=generator)
    if prior == "uniform":
        return torch.rand(n, z_dim, device=device, generator=generator) * 2 - 1
    raise ValueError(f"unknown prior {prior!r}")


def with_noise(h: torch.Tensor, n: int, splits: int = 1) -> torch.Tensor:
    """Concatenate n standard-normal noise features (dim 1) to h: how the implicit models stay stochastic.
    splits > 1: h holds that many batches (tuning.split_batch), and each draws its noise as its own call would."""
    if n == 0:
        return h
    shape = (h.shape[0] // splits, n, *h.shape[2:])  # channels for images, features for vectors
    draws = [torch.randn(shape, device=h.device, dtype=h.dtype) for _ in range(splits)]
    return torch.cat([h, draws[0] if splits == 1 else torch.cat(draws)], dim=1)


def uses_tanh(cfg: ModelConfig) -> bool:
    """Encoder output squashed to [-1, 1]: it matches the uniform prior, and would clip a normal one."""
    return cfg.z_activation == "tanh" or (cfg.z_activation == "auto" and cfg.prior == "uniform")


class LatentHead(nn.Module):
    """Last encoder layer: a linear map to z, or to (mean, log-variance) sampled by reparameterisation."""

    def __init__(self, in_features: int, cfg: ModelConfig):
        super().__init__()
        self.is_gaussian = cfg.encoder_head == "gaussian"
        self.linear = nn.Linear(in_features, cfg.z_dim * (2 if self.is_gaussian else 1))
        self.tanh = uses_tanh(cfg)

    def gaussian(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_gaussian:
            raise RuntimeError("this encoder has a deterministic head; set model.encoder_head=gaussian")
        mu, logvar = self.linear(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)  # keeps exp(logvar) finite in fp32 and bf16

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.is_gaussian:
            mu, logvar = self.gaussian(h)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        else:
            z = self.linear(h)
        return torch.tanh(z) if self.tanh else z


class Encoder(nn.Module):
    """Base encoder: x -> [x, cfg.enc_noise noise features] -> body -> (B, width) -> LatentHead(width, cfg).

    Subclasses pass their body (whose input width must count the noise) and its output width; the module
    names (body, head) are the state_dict keys of every checkpoint.
    """

    def __init__(self, cfg: ModelConfig, body: nn.Module, width: int):
        super().__init__()
        self.noise = cfg.enc_noise
        self.body = body
        self.head = LatentHead(width, cfg)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(with_noise(x, self.noise))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def gaussian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head.gaussian(self.features(x))


class Decoder(nn.Module):
    """Base decoder: z -> [z, cfg.dec_noise noise features] -> net. Subclasses pass their net (whose input width
    must count the noise) and set out_range; `net` is the state_dict prefix of every checkpoint.

    splits: set by tuning.split_batch while z holds that many batches (G(z) and G(E(x)) in one call), so that
    each draws its noise as a call of its own would, and the draws stay those of separate calls."""

    out_range: tuple[float, float] | None = None
    splits = 1

    def __init__(self, cfg: ModelConfig, net: nn.Module):
        super().__init__()
        self.noise = cfg.dec_noise
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(with_noise(z, self.noise, self.splits))


def init_xavier(net: nn.Module) -> nn.Module:
    """Xavier-uniform weights and zero biases for every Linear and (transposed) conv: model.init=xavier, as the
    authors' TensorFlow scripts initialise; BatchNorm keeps its (1, 0)."""
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU, last_act: bool = False) -> nn.Sequential:
    """Linear layers of the given sizes with act between them (and after the last if last_act)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_act:
            layers.append(act())
    return nn.Sequential(*layers)


# --- Image building blocks (mnist, cifar, celeba) -------------------------------------------------------


def lrelu() -> nn.LeakyReLU:
    """The tables' "lReLU": leaky ReLU with slope 0.2."""
    return nn.LeakyReLU(0.2)


def conv_bn(cin: int, cout: int, k: int = 5, act: Callable[[], nn.Module] = nn.ReLU) -> list[nn.Module]:
    """k x k conv, stride 2, padding (k - 1) // 2 (2 for 5x5, 1 for 4x4: halves exactly, 28 -> 14 -> 7 -> 4,
    64 -> 32 -> ... -> 2), then BN, then the activation (the DCGAN order, as in the ALICE scripts).
    convs.Conv2d is nn.Conv2d, computed faster on CPU where oneDNN is slow (svae/models/convs.py)."""
    return [Conv2d(cin, cout, k, stride=2, padding=(k - 1) // 2), BatchNorm2d(cout), act()]


def linear_to_map(cfg: ModelConfig, cin: int, shape: tuple[int, int, int], act: Callable[[], nn.Module]) -> list[nn.Module]:
    """A decoder's MLP layer that feeds its deconvs: Linear to C*H*W units, BN, activation, reshaped to (C, H, W).

    cfg.decoder_bn "units": BN over each of the C*H*W units (BatchNorm1d), as an MLP layer with BN; every unit then
    varies across the batch, so the decoder cannot map all codes to one image. "channels": BN per channel after
    the reshape (BatchNorm2d), as a conv layer; the statistics then pool the H*W positions, and a decoder whose
    Linear output stops depending on z keeps unit variance from its spatial pattern alone: ALI collapses that way
    on MNIST within 50 steps (docs/recipe.md)."""
    c, h, w = shape
    if cfg.decoder_bn == "units":
        return [nn.Linear(cin, c * h * w), BatchNorm1d(c * h * w), act(), Unflatten(1, shape)]
    return [nn.Linear(cin, c * h * w), Unflatten(1, shape), BatchNorm2d(c), act()]


def deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    """5x5 transposed conv, stride 2; padding 2 + output_padding 1 doubles exactly (7 -> 14 -> 28, 4 -> 8 -> ...).
    convs.ConvTranspose2d is nn.ConvTranspose2d, computed faster on CPU where oneDNN is slow."""
    return ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


def critic_channels(cfg: ModelConfig, channels: int) -> int:
    """Input channels of a critic's image branch: one image per pair, and cfg.critic_x_noise noise channels."""
    return channels + cfg.critic_x_noise


def critic_convs(cfg: ModelConfig, channels: list[int]) -> list[nn.Module]:
    """The stride-2 5x5 convs of a critic's image branch, channels[0] -> channels[1] -> ...

    critic_style "table": ReLU, as the three tables say; "dcgan": leaky ReLU (0.2) and no BN on the first conv,
    the DCGAN discriminator's habits. critic_norm "batch": BN after each conv, as the tables say; "none": no
    normalisation; "spectral": no BN, and JointCritic puts spectral normalisation on every layer.
    critic_dropout > 0: dropout after each activation, as ALI's discriminators. The options exist because
    the tables' critic overpowered the decoder on MNIST (docs/recipe.md has the screens)."""
    dcgan, leaky = cfg.critic_style == "dcgan", cfg.critic_style in ("dcgan", "lrelu")
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(Conv2d(cin, cout, 5, stride=2, padding=2))
        if cfg.critic_norm == "batch" and not (dcgan and i == 0):
            layers.append(BatchNorm2d(cout))
        layers.append(lrelu() if leaky else nn.ReLU())
        if cfg.critic_dropout:
            layers.append(nn.Dropout(cfg.critic_dropout))
    return layers


CRITIC_HIDDEN = 1024  # width of the joint layer of critic_head "mlp"


class JointCritic(nn.Module):
    """(x, z) -> logit (B,).  Image branch x_net(x) -> (B, x_features); z branch Linear(z_dim, z_features) + ReLU;
    the two concatenated, then the head: the tables' one Linear to a raw logit (critic_head "linear"), or
    Linear 1024 + leaky ReLU + Linear ("mlp").

    Why the option: a Linear on [a(x), b(z)] is a sum a'(x) + b'(z), so the "linear" critic sees the two
    marginals but not how x and z depend on each other, which is what joint matching (and with it the
    reconstruction ability of ALI) rests on. The "mlp" head adds the joint layer that ALI's discriminator has.
    cfg.critic_dropout adds dropout after the z branch and the head's hidden layer too; cfg.critic_norm
    "spectral" normalises every Conv2d and Linear of the critic (x_net included) by its spectral norm.
    """

    def __init__(self, cfg: ModelConfig, x_net: nn.Module, x_features: int, z_features: int):
        super().__init__()
        def drop() -> list[nn.Module]:
            return [nn.Dropout(cfg.critic_dropout)] if cfg.critic_dropout else []

        self.x_net = x_net
        self.x_noise, self.z_noise = cfg.critic_x_noise, cfg.critic_z_noise
        self.z_net = nn.Sequential(nn.Linear(cfg.z_dim + cfg.critic_z_noise, z_features),
                                   lrelu() if cfg.critic_style == "lrelu" else nn.ReLU(), *drop())
        if cfg.critic_head == "linear":
            self.out = nn.Linear(x_features + z_features, 1)
        elif cfg.critic_head == "mlp":
            self.out = nn.Sequential(nn.Linear(x_features + z_features, CRITIC_HIDDEN), lrelu(), *drop(),
                                     nn.Linear(CRITIC_HIDDEN, 1))
        else:
            raise ValueError(f"unknown critic head {cfg.critic_head!r}; allowed: linear, mlp")
        if cfg.critic_norm == "spectral":
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        # critic_x_noise / critic_z_noise: random inputs beside the pair (the authors' scripts), a fresh draw per call
        x, z = with_noise(x, self.x_noise), with_noise(z, self.z_noise)
        return self.out(torch.cat([self.x_net(x), self.z_net(z)], dim=1)).squeeze(1)
