"""The dataset table: every fact about a dataset that more than one module needs, in one row per dataset.

Adding a dataset is one row here plus its network file in svae/models/ (and, for a new file format, a reader in
svae/data/); every other module reads this table (docs/design.md). No torch here: config.py and the command
line read it before torch loads.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str                     # data.name and model.arch
    title: str                    # what the presets' descriptions say
    shape: tuple[int, ...]        # one example: (C, H, W) for images, (2,) for the toy's points
    networks: str                 # the module of svae/models/ that holds its Encoder, Decoder and Critic
    # the decoder's output range, to which uint8 images are normalised per batch (None: data coordinates)
    out_range: tuple[float, float] | None = None
    npz: str | None = None        # the shared file of source "npz" (real images only)
    reader: str | None = None     # the module of svae/data/ that reads the standard distribution files (source "raw")
    n_train: int | None = None    # training examples of the full dataset (the toy's come from data.n_train)
    classifier: str | None = None  # the domain of svae's own classifier that scores it (svae.metrics.classifier)
    inception: bool = False       # scored by Inception-v3 (IS, FID) when its weights are at hand

    @property
    def image(self) -> bool:
        return self.npz is not None


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("toy", "2-D mixture of 5 Gaussians, MLPs 2x256 (ALICE toy protocol)", (2,), "toy"),
    DatasetInfo("mnist", "MNIST, paper Table 1 networks", (1, 28, 28), "mnist", (0.0, 1.0), "mnist.npz",
                "mnist_idx", 60000, classifier="mnist"),
    DatasetInfo("cifar10", "CIFAR-10, paper Table 3 networks", (3, 32, 32), "cifar", (-1.0, 1.0), "cifar10.npz",
                "cifar_pickle", 50000, classifier="cifar10", inception=True),
    DatasetInfo("celeba", "CelebA 64x64, paper Table 2 networks", (3, 64, 64), "celeba", (-1.0, 1.0),
                "celeba64.npz", "celeba_jpeg", 162770, inception=True),
)}
IMAGE_DATASETS = tuple(name for name, d in DATASETS.items() if d.image)
SHAPES = {name: DATASETS[name].shape for name in IMAGE_DATASETS}  # (C, H, W) of the image datasets
CLASSIFIER_DOMAINS = tuple(d.classifier for d in DATASETS.values() if d.classifier)
SOURCES = ("auto", "npz", "raw", "download")  # where data.source may read an image dataset from


def dataset(name: str) -> DatasetInfo:
    """The row of a dataset; KeyError naming the known ones (config.validate has refused others before)."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[name]
