"""svae's own classifiers for the inception score: an MNIST CNN and an in-domain CIFAR-10 net, shipped or cached."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..files import cache_dir, file_digest
from ..progress import bar
from ..atomic import write_atomic, write_text
from ..datasets import CLASSIFIER_DOMAINS
from ..errors import SvaeError
from .scores import inception_score

DOMAINS = CLASSIFIER_DOMAINS  # the datasets svae trains a classifier for (the dataset table)
WEIGHTS = {"mnist": "mnist-cnn.pt", "cifar10": "cifar10-indomain.pt"}
TRAIN_HINT = "svae classifier train --domain {domain} --data-dir DIR"
SHIPPED_DIR = Path(__file__).parent / "weights"
# The classifiers shipped inside the package (SHIPPED_DIR/WEIGHTS[domain], with the JSON sidecar beside it) and the
# sha256 each must have: checked at every load, so a damaged install fails loudly instead of scoring differently.
# A new one is added with scripts/ship_classifier.py, which prints its line for this table.
SHIPPED = {
    "mnist": "692ed2cdfa425af71362fe3af7a4c2c46e3691982106b47c661ed0208bf598aa",
    "cifar10": "0735422a46a67828f35940ee804c60715413adb450a01eb48b05a097d81e6e71",
}
# Pixel statistics of the training sets (scaled to [0, 1]); the networks normalise their own input,
# so every caller hands them images in [0, 1], the command line's array contract.
NORM = {"mnist": ((0.1307,), (0.3081,)), "cifar10": ((0.4913, 0.4821, 0.4465), (0.2452, 0.2428, 0.2606))}


class MetricError(SvaeError, ValueError):
    """A scorer cannot run (a classifier or weights file is missing, or an array does not fit); one line."""


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class Classifier(nn.Module):
    """Conv stacks of 3x3 conv-BN-ReLU pairs with max pooling, then one hidden layer (the feature layer
    for the classifier FID) and the 10 logits. Input: images in [0, 1], (N, C, H, W)."""

    def __init__(self, domain: str):
        super().__init__()
        if domain not in DOMAINS:
            raise MetricError(f"unknown classifier domain {domain!r}; expected one of {', '.join(DOMAINS)}")
        self.domain = domain
        mean, std = NORM[domain]
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        if domain == "mnist":  # 28 -> 14 -> 7: small enough to train in minutes on one core
            widths, hidden, pools = (1, 32, 32, 64, 64), 256, 2
        else:  # 32 -> 16 -> 8 -> 4: a small VGG; in-domain scores need a decent, not a state-of-the-art, net
            widths, hidden, pools = (3, 32, 32, 64, 64, 128, 128), 256, 3
        layers: list[nn.Module] = []
        for i in range(pools):
            layers += _block(widths[2 * i], widths[2 * i + 1]) + _block(widths[2 * i + 1], widths[2 * i + 2])
            layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers, nn.Flatten())
        side = (28 if domain == "mnist" else 32) // 2 ** pools
        self.hidden = nn.Sequential(nn.Linear(widths[-1] * side * side, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(hidden, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden layer's activations: the feature space of the in-domain FID."""
        return self.hidden(self.body((x - self.mean) / self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features(x)))


# ---------------------------------------------------------------- cache folder, saving and loading


def default_dir() -> Path:
    """Where `svae classifier train` writes: $SVAE_CACHE/classifiers, else ~/.cache/svae/classifiers."""
    return cache_dir("classifiers")


def weights_path(domain: str, path: str | Path | None = None) -> Path:
    """The weights file of a domain: path if given (a file, or a folder holding the default name)."""
    if path is None:
        return default_dir() / WEIGHTS[domain]
    path = Path(path).expanduser()
    return path / WEIGHTS[domain] if path.is_dir() or not path.suffix else path


@dataclass
class Loaded:
    """A trained classifier and its sidecar (test accuracy, real-test-set IS, how it was trained)."""
    net: Classifier
    info: dict[str, Any] = field(default_factory=dict)


def save(net: Classifier, info: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: torch.save(net.state_dict(), f), "classifier")
    write_text(path.with_suffix(".json"), json.dumps(info, indent=2) + "\n", "classifier information")
    return path


def resolve(domain: str, path: str | Path | None = None) -> tuple[Path, str]:
    """The weights file that scores a domain and where it came from, first found: the path given (--classifier),
    the user cache (one trained here with `svae classifier train`), the one shipped with svae."""
    if domain not in DOMAINS:
        raise MetricError(f"unknown classifier domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    hint = f"train it with `{TRAIN_HINT.format(domain=domain)}`"
    if path is not None:
        p = weights_path(domain, path)
        if not p.is_file():
            raise MetricError(f"{p} (from --classifier): no trained {domain} classifier there; {hint}")
        return p, "--classifier"
    user, shipped = weights_path(domain), SHIPPED_DIR / WEIGHTS[domain]
    if user.is_file():
        return user, "user cache"
    if domain in SHIPPED:
        if not shipped.is_file():
            raise MetricError(f"{shipped}: the {domain} classifier shipped with svae is missing; reinstall svae")
        return shipped, "shipped with svae"
    raise MetricError(f"no trained {domain} classifier: none in the user cache ({user}) and none ships with svae; "
                      f"{hint} (or pass --classifier FILE)")


def load(domain: str, path: str | Path | None = None, device: str = "cpu") -> Loaded:
    """The classifier of a domain in eval mode (see resolve()), its sidecar, and which file it is: info gets
    file, origin and sha256 (first 16 hex digits). MetricError naming the command that trains one if none."""
    p, origin = resolve(domain, path)
    digest = file_digest(p)
    if origin == "shipped with svae" and digest != SHIPPED[domain]:
        raise MetricError(f"{p}: sha256 {digest[:16]}..., expected {SHIPPED[domain][:16]}...: the {domain} "
                          "classifier shipped with svae is damaged; reinstall svae")
    net = Classifier(domain)
    try:
        net.load_state_dict(torch.load(p, map_location=device, weights_only=True))
    except Exception as e:  # any damage or a different architecture: say which file
        raise MetricError(f"{p}: not a {domain} classifier of this svae version ({type(e).__name__})") from None
    side = p.with_suffix(".json")
    info = json.loads(side.read_text()) if side.is_file() else {}
    info.update({"file": str(p), "origin": origin, "sha256": digest[:16]})
    return Loaded(net.to(device).eval(), info)


# ---------------------------------------------------------------- inference


@torch.no_grad()
def predict(net: nn.Module, x01: torch.Tensor, batch_size: int = 500, what: str = "probs") -> torch.Tensor:
    """Class probabilities ("probs") or hidden features ("features") of images in [0, 1], batch by batch."""
    net.eval()
    dev = next(net.parameters()).device
    out = []
    with bar(len(x01), f"classifier {what}", "img") as b:
        for i in range(0, len(x01), batch_size):
            xb = x01[i:i + batch_size].to(dev).float()
            out.append((net.features(xb) if what == "features" else net(xb).softmax(dim=1)).double().cpu())
            b.update(len(xb))
    return torch.cat(out)


def accuracy(net: nn.Module, x01: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict(net, x01).argmax(dim=1) == y.cpu()).double().mean())


# ---------------------------------------------------------------- training with augmentation


def random_shift(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `pad` pixels: pad (replicating the border) then crop at a random offset."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad,) * 4, mode="replicate")
    oy, ox = (torch.randint(0, 2 * pad + 1, (n,), generator=g) for _ in range(2))
    rows = (oy[:, None] + torch.arange(h))[:, :, None]  # (n, h, 1)
    cols = (ox[:, None] + torch.arange(w))[:, None, :]  # (n, 1, w)
    return xp.permute(0, 2, 3, 1)[torch.arange(n)[:, None, None], rows, cols].permute(0, 3, 1, 2)


def augment(x: torch.Tensor, domain: str, g: torch.Generator) -> torch.Tensor:
    """Shifts of up to 2 pixels (MNIST) or 4 (CIFAR-10, plus horizontal flips: digits are not mirror-symmetric)."""
    if domain == "mnist":
        return random_shift(x, 2, g)
    x = random_shift(x, 4, g)
    flip = torch.rand(len(x), generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def train(domain: str, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
          epochs: int, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
          log: Callable[[str], None] = print) -> Loaded:
    """Train on uint8 (N, C, H, W) images with Adam and a one-cycle learning rate; score the test split.
    Returns the net and its sidecar: test accuracy, and the IS of the real test set (10 splits)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = Classifier(domain)
    steps_per_epoch = len(x_train) // batch_size
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=g)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            xb = augment(x_train[idx].float() / 255.0, domain, g)
            loss = F.cross_entropy(net(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        acc = accuracy(net, x_test.float() / 255.0, y_test)
        log(f"epoch {epoch + 1}/{epochs}: train loss {total / steps_per_epoch:.4f}, test accuracy {acc:.4f} "
            f"({time.perf_counter() - start:.0f} s)")
    net.eval()
    x01 = x_test.float() / 255.0
    is_mean, is_std = inception_score(predict(net, x01), splits=10)
    info = {"name": f"svae-{domain}-{'cnn' if domain == 'mnist' else 'indomain'}", "domain": domain,
            "in_domain": True, "test_accuracy": accuracy(net, x01, y_test), "n_test": len(x_test),
            "real_test_is_mean": is_mean, "real_test_is_std": is_std, "is_splits": 10,
            "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
            "train_seconds": round(time.perf_counter() - start, 1), "threads": torch.get_num_threads()}
    return Loaded(net, info)


DEFAULT_EPOCHS = {"mnist": 5, "cifar10": 15}


def train_and_save(domain: str, data_dir: str | Path | None, epochs: int | None = None, out: str | Path | None = None,
                   seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """`svae classifier train`: train on the dataset in data_dir (None: the default data folder), store weights +
    JSON sidecar, return the sidecar."""
    from ..data.images import load_images

    if domain not in DOMAINS:
        raise MetricError(f"unknown classifier domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    epochs = epochs or DEFAULT_EPOCHS[domain]
    if epochs <= 0:
        raise MetricError(f"--epochs must be > 0, got {epochs}")
    splits = load_images(domain, data_dir)
    path = weights_path(domain, out)
    loaded = train(domain, splits.x_train, splits.y_train, splits.x_test, splits.y_test, epochs, seed=seed, log=log)
    folder = f" --data-dir {data_dir}" if data_dir else ""
    loaded.info.update({"data_dir": str(data_dir) if data_dir else None, "weights": path.name,
                        "command": f"svae classifier train --domain {domain}{folder} --epochs {epochs}"})
    save(loaded.net, loaded.info, path)
    log(f"wrote {path} and {path.with_suffix('.json').name}")
    return loaded.info
