"""Run by tests/test_training_distributed.py under torchrun: a few toy steps with DDP; each rank saves its parameters.

z comes from one draw of the global batch per call, each rank taking its rows, so that a single process on the
combined batch sees the same codes (the noise inputs are off). Usage: dist_worker.py OUT_DIR STEPS BATCH
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import tiny_toy  # noqa: E402

from svae.training import distributed  # noqa: E402
from svae.data import load_dataset  # noqa: E402
from svae.model import Model  # noqa: E402
from svae.training.trainer import Trainer  # noqa: E402


def config(steps: int, batch: int):
    cfg = tiny_toy("toy-svae-r", steps=steps, batch_size=batch, log_every=2)
    cfg.model.enc_noise = cfg.model.dec_noise = 0
    return cfg


def shared_prior(world: distributed.World, global_batch: int):
    """Model.sample_prior replaced: call k draws the global batch's codes from seed k; this rank takes its rows."""
    calls = [0]

    def sample_prior(self, n, generator=None):
        g = torch.Generator().manual_seed(1000 + calls[0])
        calls[0] += 1
        z = torch.randn(global_batch, self.cfg.model.z_dim, generator=g)
        return z[world.rank * n:(world.rank + 1) * n]

    return sample_prior


def train(out: Path, steps: int, batch: int, world: distributed.World) -> None:
    cfg = config(steps, batch)
    Model.sample_prior = shared_prior(world, batch * world.size)
    torch.manual_seed(cfg.train.seed)
    model = Model(cfg)
    trainer = Trainer(model, load_dataset(cfg.data), cfg, world=world)
    trainer.fit(progress=False)
    torch.save(model.state_dict(), out / f"rank{world.rank}_of{world.size}.pt")


if __name__ == "__main__":
    torch.set_num_threads(1)
    out, steps, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    world, _ = distributed.setup("cpu")
    try:
        train(out, steps, batch, world)
    finally:
        distributed.cleanup()
