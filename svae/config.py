"""Typed configuration: dataclasses for data, model, objective and training, YAML I/O and validation."""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .atomic import write_text
from .datasets import DATASETS as _DATASETS, SOURCES
from .errors import SvaeError
from .kinds import KINDS


class ConfigError(SvaeError, ValueError):
    """A configuration value is wrong; the message names the key and what is allowed."""


DATASETS = ARCHES = tuple(_DATASETS)  # model.arch names the dataset whose tables' networks it builds
OBJECTIVES = tuple(KINDS)
PRIORS = ("normal", "uniform")
REC_DISTANCES = ("l2", "l1")
ESTIMATORS = ("joint", "marginal")
ENCODER_HEADS = ("deterministic", "gaussian")
CRITIC_HEADS = ("linear", "mlp")
CRITIC_STYLES = ("table", "dcgan", "lrelu")
CRITIC_NORMS = ("batch", "none", "spectral")
CRITIC_BN = ("joint", "apart")
INITS = ("default", "xavier")
DECODER_BNS = ("channels", "units")
BN_STATS = ("running", "pathway")  # train.eval_bn_stats
GEN_LOSSES = ("model", "probability")
REDUCTIONS = ("mean", "sum")
Z_ACTIVATIONS = ("auto", "none", "tanh")
ON_DIVERGENCE = ("stop", "rollback")
PRECISIONS = ("fp32", "bf16", "fp16")
# Keys that earlier svae wrote and this one no longer has, with the one value they could take in a run that
# trained: model.critic_input "pair" (an image and its partner stacked) was refused by every objective, so config.yaml
# and checkpoints of today hold "joint", which is what every critic computes. Such a key is dropped when a file is read.
REMOVED = {"model.critic_input": "joint"}
SEED_MAX = 2**32 - 1  # numpy's range; the trainer derives per-epoch and per-step seeds from it


def resumable(default: Any) -> Any:
    """A field a resumed run may change: how long, where and how fast it runs, what it logs and checks; never what
    it computes (run.py refuses to resume with any other key changed)."""
    return field(default=default, metadata={"resumable": True})


@dataclass
class DataConfig:
    name: str = "toy"
    data_dir: str | None = resumable(None)  # folder with the dataset files (real data only)
    source: str = resumable("auto")  # auto: npz if present, else the standard distribution files
    seed: int = 0  # the toy mixture's own seed: every training seed sees the same points
    n_train: int = 2048  # toy only
    n_test: int = 1024  # toy only
    limit: int = 0  # keep only the first N training images (0: all); for quick runs


@dataclass
class ModelConfig:
    arch: str = "toy"
    z_dim: int = 2
    enc_noise: int = 2  # noise concatenated to the encoder input (image nets: channels)
    dec_noise: int = 2  # noise dims concatenated to the decoder's z
    encoder_head: str = "deterministic"  # or gaussian: (mean, log-variance) + reparameterisation
    prior: str = "normal"  # p(z): standard normal, or uniform on [-1, 1]
    z_activation: str = "auto"  # encoder output: auto = tanh for the uniform prior, none for normal
    hidden: int = 256  # toy MLP width
    layers: int = 2  # toy MLP depth
    critic_head: str = "linear"  # after concatenating x and z features: the tables' one Linear, or an MLP
    # image critics' convs: the tables' BN + ReLU, DCGAN's (no BN on the first, leaky ReLU), or lrelu (BN on every conv,
    # leaky ReLU: the authors' scripts)
    critic_style: str = "table"
    critic_norm: str = "batch"  # image critics' convs: the tables' BN, none, or spectral normalisation (every layer)
    # critic BatchNorm in training: one batch of encoder and decoder pairs (joint), or each joint's pairs normalised
    # by their own statistics (apart), as two separate critic calls do (the authors' TF scripts)
    critic_bn: str = "joint"
    critic_x_noise: int = 0  # image critics: noise channels concatenated to the image (the authors' scripts: 1)
    critic_z_noise: int = 0  # image critics: noise dims concatenated to z (the authors' scripts: 20)
    # the BN of the decoder's MLP layer that feeds the deconvs: per channel after the reshape to a map (channels, as a
    # conv layer), or over its units before it (units, Table 1's "MLP output 3136, BN"; per channel, the decoder can
    # make every sample alike and ALI collapses: docs/recipe.md)
    decoder_bn: str = "channels"
    init: str = "default"  # weights: torch's defaults, or Xavier-uniform with zero biases (the authors' scripts)
    critic_dropout: float = 0.0  # image critics: dropout after each hidden activation (ALI's discriminators used 0.2)


@dataclass
class ObjectiveConfig:
    kind: str = "svae_r"
    lam: float = 1.0  # weight of the reconstruction (likelihood) terms
    rec: str = "l2"  # d(., .): mean squared (Gaussian) or mean absolute (Laplace) error
    estimator: str = "joint"  # one critic on the joint, or two critics against q(x)p(z)
    vae_sigma: float = 0.1  # VAE: std of the Gaussian (scale of the Laplace) likelihood
    rec_reduction: str = "mean"  # rec terms: mean over elements, or sum per example (log-likelihood scale)
    z_weight: float = 1.0  # rec_z's weight beside rec_x: lam * (rec_x + z_weight * rec_z)
    # encoder+decoder adversarial loss: each model's own (ALI's non-saturating softplus, sVAE's raw logits), or
    # probability: mean sigmoid(f(x, E(x))) - mean sigmoid(f(G(z), z)) for every adversarial model (the authors' scripts)
    gen_loss: str = "model"
    # zero-centred gradient penalty on the critic at encoder pairs, r1 / 2 * E ||grad_(x, z) f(x, E(x))||^2 (R1 of
    # Mescheder et al. 2018, on the joint: x and the code both); 0 off. Computed on the first critic update of every
    # r1_every-th batch and weighted by r1_every then ("lazy", as StyleGAN2: the same penalty on average, less often)
    r1: float = 0.0
    r1_every: int = 1


@dataclass
class TrainConfig:
    epochs: int = resumable(100)
    steps: int = resumable(0)  # if > 0, overrides epochs: number of batches
    batch_size: int = 128
    lr: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    critic_steps: int = 1  # critic updates per batch
    gen_steps: int = 1  # encoder+decoder updates per batch (each after the critic's)
    seed: int = 0
    device: str = resumable("cpu")
    threads: int = resumable(0)  # torch CPU threads (0: leave torch's default)
    log_every: int = resumable(50)
    ckpt_every: int = resumable(0)  # steps between checkpoints (0: only at the end)
    # also keep the newest k checkpoints as checkpoints/step_XXXXXXXX.pt (0: last.pt only)
    keep_ckpts: int = resumable(3)
    on_divergence: str = resumable("stop")  # NaN/inf loss or parameter: stop, or rollback to the last checkpoint
    rollback_lr_factor: float = resumable(0.5)  # each rollback multiplies every optimiser's learning rate by this
    max_rollbacks: int = resumable(3)  # after this many rollbacks in a run, a divergence stops it
    # the last N epochs (at most the whole run) decay every learning rate linearly towards 0; 0: constant. Resumable,
    # so a constant-lr run resumed before the decay starts is the run that had the schedule from step 0
    lr_decay_epochs: float = resumable(0.0)
    # steps between learning-curve probes (metrics.jsonl, curves.png); -1: once an epoch, 0: never
    probe_every: int = resumable(-1)
    probe_samples: int = resumable(2000)  # samples behind a probe's IS
    probe_test: int = resumable(1000)  # test images (points) behind a probe's MSE
    # weight average of the encoder and decoder (svae/training/averaging.py): decay per step, 0 off; probed beside
    # the live weights (metrics *_ema), and what the final evaluation scores; never changes training, so resumable
    ema: float = resumable(0.0)
    eval_samples: int = resumable(10000)
    eval_splits: int = resumable(10)
    # images behind the Inception-v3 scores (FID, KID, IS where the weights have the classifier) on CIFAR-10 and
    # CelebA, samples and test images alike: -1 auto (every eval sample on a GPU; none on a CPU, where Inception-v3
    # takes 0.13-0.17 s an image on one core: 10,000 samples and 10,000 test images, about 50 minutes), 0 never,
    # N that many
    eval_inception: int = resumable(-1)
    # BatchNorm statistics the evaluation scores with: "running" (the running averages as trained, which blend the
    # decoder's two kinds of input, prior draws and codes) or "pathway" (re-estimated on each pathway's own inputs,
    # as training normalised them: svae/metrics/bn_stats.py, docs/evaluation.md section 5c; the image presets'
    # choice); `svae sample` and `svae reconstruct` draw with the same statistics
    eval_bn_stats: str = resumable("running")
    # speed (docs/speed.md, svae/training/speed.py): how a step is computed, never which losses it minimises;
    # resumable but for reuse_forward and precision, which change the noise draws and the rounding of a resumed run
    reuse_forward: bool = True  # the last critic update reuses the generator update's E(x), G(z) (one z per batch)
    precision: str = "fp32"  # autocast: fp32 (off), bf16, fp16 (with a gradient scaler)
    channels_last: bool = resumable(False)  # image tensors and conv weights in NHWC (faster for some nets and devices)
    compile: bool = resumable(False)  # torch.compile the networks (first steps slower while it compiles)
    fast_convs: bool = resumable(True)  # CPU: thin convs and convs on tiny maps by faster forms of the same function
    inplace_acts: bool = resumable(True)  # ReLU / leaky ReLU after a Linear, conv or BN overwrite that layer's output
    batch_decoder: bool = resumable(False)  # sVAE-r, ALICE: G(z) and G(E(x)) in one decoder call, BatchNorm per half
    # also log metrics rows and the final grids to RUN_DIR/tensorboard/ (svae.training.tracking)
    tensorboard: bool = resumable(False)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        cfg = cls()
        for key, value in _flatten(d):
            if key in REMOVED and value == REMOVED[key]:
                continue
            set_value(cfg, key, value, parse=False)
        validate(cfg)
        return cfg

    def save(self, path: str | Path) -> None:
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False), "configuration")

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        try:
            d = yaml.safe_load(Path(path).read_text())  # safe_load: a config is data, never code
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e.__class__.__name__})") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(d).__name__}")
        return cls.from_dict(d)


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def resumable_keys() -> set[str]:
    """The dotted keys declared with resumable(): what a resumed run may change."""
    cfg = Config()
    sections = [s.name for s in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, s.name))]
    return {f"{name}.{f.name}" for name in sections for f in dataclasses.fields(getattr(cfg, name))
            if f.metadata.get("resumable")}


def all_keys(cfg: Config | None = None) -> list[str]:
    return [k for k, _ in _flatten((cfg or Config()).to_dict())]


def _coerce(key: str, value: Any, typ: Any, parse: bool) -> Any:
    """Turn value (a string from the command line when parse) into typ, or say why not."""
    args = typing.get_args(typ)
    if args and type(None) in args:  # Optional[X]
        if value is None or (parse and str(value).lower() in ("none", "null", "")):
            return None
        typ = next(a for a in args if a is not type(None))
    name = getattr(typ, "__name__", str(typ))
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if parse and str(value).lower() in ("true", "1", "yes", "on"):
                return True
            if parse and str(value).lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value
            if parse or isinstance(value, str):
                f = float(str(value))
                if f != int(f):
                    raise ValueError
                return int(f)
            raise ValueError
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is str:
            if not isinstance(value, str) and not parse:
                raise ValueError
            return str(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key}: expected {name}, got {value!r}") from None
    return value


def set_value(cfg: Config, key: str, value: Any, parse: bool = True) -> None:
    """Set a dotted key ('train.lr') from a command-line string (parse) or a YAML value."""
    if key in REMOVED:
        raise ConfigError(f"{key}: removed (no objective ever fed that critic an image's partner); every critic "
                          f"takes {REMOVED[key]!r}, drop the key")
    parts = key.split(".")
    obj: Any = cfg
    for p in parts[:-1]:
        if not dataclasses.is_dataclass(obj) or p not in {f.name for f in dataclasses.fields(obj)}:
            raise ConfigError(f"unknown key {key!r}; allowed: {', '.join(all_keys())}")
        obj = getattr(obj, p)
    fields = {f.name: f for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else {}
    leaf = parts[-1]
    if leaf not in fields or dataclasses.is_dataclass(getattr(obj, leaf)):
        raise ConfigError(f"unknown key {key!r}; allowed: {', '.join(all_keys())}")
    hints = typing.get_type_hints(type(obj))
    setattr(obj, leaf, _coerce(key, value, hints[leaf], parse))


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def _positive(key: str, value: float, allow_zero: bool = False) -> None:
    if value != value or value in (math.inf, -math.inf):  # no key means anything at infinity; NaN is no number
        raise ConfigError(f"{key}: must be a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def validate(cfg: Config) -> Config:
    """Check every value against what the code supports; raise ConfigError naming the first bad key."""
    d, m, o, t = cfg.data, cfg.model, cfg.objective, cfg.train
    _choice("data.name", d.name, DATASETS)
    _choice("data.source", d.source, SOURCES)
    _choice("model.arch", m.arch, ARCHES)
    _choice("model.prior", m.prior, PRIORS)
    _choice("model.encoder_head", m.encoder_head, ENCODER_HEADS)
    _choice("model.z_activation", m.z_activation, Z_ACTIVATIONS)
    _choice("model.critic_head", m.critic_head, CRITIC_HEADS)
    _choice("model.critic_style", m.critic_style, CRITIC_STYLES)
    _choice("model.critic_norm", m.critic_norm, CRITIC_NORMS)
    _choice("model.critic_bn", m.critic_bn, CRITIC_BN)
    _choice("model.init", m.init, INITS)
    _choice("model.decoder_bn", m.decoder_bn, DECODER_BNS)
    _choice("objective.gen_loss", o.gen_loss, GEN_LOSSES)
    _choice("objective.rec_reduction", o.rec_reduction, REDUCTIONS)
    _choice("objective.kind", o.kind, OBJECTIVES)
    _choice("objective.rec", o.rec, REC_DISTANCES)
    _choice("objective.estimator", o.estimator, ESTIMATORS)
    _choice("train.on_divergence", t.on_divergence, ON_DIVERGENCE)
    _choice("train.precision", t.precision, PRECISIONS)
    _choice("train.eval_bn_stats", t.eval_bn_stats, BN_STATS)
    if (d.name == "toy") != (m.arch == "toy"):
        raise ConfigError(f"model.arch {m.arch!r} does not fit data.name {d.name!r}")
    if m.arch not in ("toy", d.name):
        raise ConfigError(f"model.arch {m.arch!r} does not fit data.name {d.name!r}")
    for key, val in (("data.n_train", d.n_train), ("data.n_test", d.n_test), ("model.z_dim", m.z_dim),
                     ("model.hidden", m.hidden), ("model.layers", m.layers),
                     ("train.batch_size", t.batch_size), ("train.lr", t.lr), ("train.critic_steps", t.critic_steps),
                     ("train.gen_steps", t.gen_steps), ("train.log_every", t.log_every),
                     ("train.eval_samples", t.eval_samples), ("train.eval_splits", t.eval_splits),
                     ("objective.vae_sigma", o.vae_sigma), ("objective.r1_every", o.r1_every)):
        _positive(key, val)
    for key, val in (("model.enc_noise", m.enc_noise), ("model.dec_noise", m.dec_noise),
                     ("model.critic_x_noise", m.critic_x_noise), ("model.critic_z_noise", m.critic_z_noise),
                     ("objective.lam", o.lam), ("objective.z_weight", o.z_weight), ("objective.r1", o.r1),
                     ("train.epochs", t.epochs), ("train.steps", t.steps),
                     ("train.threads", t.threads), ("train.ckpt_every", t.ckpt_every), ("data.limit", d.limit),
                     ("train.keep_ckpts", t.keep_ckpts), ("train.max_rollbacks", t.max_rollbacks),
                     ("train.lr_decay_epochs", t.lr_decay_epochs)):
        _positive(key, val, allow_zero=True)
    if t.eval_inception < -1:
        raise ConfigError(f"train.eval_inception: -1 (auto), 0 (never) or a number of images, got {t.eval_inception}")
    if t.probe_every < -1:
        raise ConfigError(f"train.probe_every: -1 (once an epoch), 0 (never) or a number of steps, got {t.probe_every}")
    for key, val in (("train.probe_samples", t.probe_samples), ("train.probe_test", t.probe_test)):
        _positive(key, val)
    for key, seed in (("train.seed", t.seed), ("data.seed", d.seed)):
        if not 0 <= seed <= SEED_MAX:
            raise ConfigError(f"{key}: must lie in [0, {SEED_MAX}], got {seed}")
    if not 0 <= m.critic_dropout < 1:
        raise ConfigError(f"model.critic_dropout: must lie in [0, 1), got {m.critic_dropout}")
    if not 0 <= t.ema < 1:
        raise ConfigError(f"train.ema: a decay in [0, 1) (0: off; 0.999 averages about the last 1,000 steps), "
                          f"got {t.ema}")
    if not 0 < t.rollback_lr_factor < 1:
        raise ConfigError(f"train.rollback_lr_factor: must lie in (0, 1), got {t.rollback_lr_factor}")
    if t.epochs == 0 and t.steps == 0:
        raise ConfigError("train.epochs and train.steps are both 0: nothing to train")
    if not (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1):
        raise ConfigError(f"train.beta1/beta2: must lie in [0, 1), got {t.beta1}, {t.beta2}")
    if o.kind == "vae" and m.encoder_head != "gaussian":
        raise ConfigError("objective.kind 'vae' needs model.encoder_head 'gaussian'")
    if o.kind == "vae" and m.prior != "normal":
        raise ConfigError("objective.kind 'vae' needs model.prior 'normal' (its KL is the closed form for N(0, I))")
    if m.arch == "toy" and (m.critic_x_noise or m.critic_z_noise or m.critic_style != "table"):
        raise ConfigError("model.critic_x_noise, critic_z_noise and critic_style apply to the image critics; "
                          "the toy's critic is an MLP")
    if o.estimator == "marginal" and o.gen_loss != "model":
        raise ConfigError("objective.gen_loss 'probability' needs objective.estimator 'joint'")
    if o.estimator == "marginal" and not (o.kind == "svae_r" and o.lam > 0):
        # the likelihood terms are half of the two-critic estimate of L_xz, so they cannot be dropped
        raise ConfigError("objective.estimator 'marginal' needs objective.kind 'svae_r' with objective.lam > 0")
    if o.r1 and not KINDS[o.kind].adversarial:
        raise ConfigError(f"objective.r1 penalises a critic; objective.kind {o.kind!r} has none")
    if o.r1 and o.estimator != "joint":
        raise ConfigError("objective.r1 needs objective.estimator 'joint' (it penalises the one critic of the joint)")
    if o.r1 and (t.compile or t.precision == "fp16"):
        # torch.compile's graphs have no double backward; under fp16 the penalty's inner gradient is not loss-scaled
        raise ConfigError("objective.r1 needs train.compile false and train.precision fp32 or bf16 (the penalty "
                          "differentiates a gradient)")
    if t.eval_samples < t.eval_splits:
        raise ConfigError(f"train.eval_samples ({t.eval_samples}) must be >= train.eval_splits ({t.eval_splits})")
    if d.name == "toy" and t.batch_size > d.n_train:
        raise ConfigError(f"train.batch_size {t.batch_size} is larger than the dataset ({d.n_train} points)")
    dev = t.device
    if not (dev == "cpu" or dev == "cuda" or dev.startswith("cuda:") or dev == "mps"):
        raise ConfigError(f"train.device: {dev!r} is not one of cpu, cuda, cuda:N, mps")
    return cfg
