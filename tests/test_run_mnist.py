"""End to end on the real MNIST (shared data): a short sVAE-r run learns to reconstruct."""
import json

import pytest

from svae.presets import get_preset
from svae.run import train

from helpers import shared_data_dir


@pytest.mark.slow
def test_mnist_svae_r_short_run_beats_random_pairing(tmp_path):
    folder = shared_data_dir()
    if not (folder / "mnist.npz").is_file():
        pytest.skip(f"no mnist.npz in {folder} (set SVAE_SHARED_DATA to the folder holding it)")
    cfg = get_preset("mnist-svae-r")
    cfg.data.data_dir = str(folder)
    cfg.train.steps, cfg.train.log_every, cfg.train.ckpt_every = 120, 20, 0
    cfg.train.eval_samples = 1000
    result = train(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["rec_x"] < 0.7 * rows[0]["rec_x"]  # the loss moves
    # reconstructions keep something of their input: the live weights' (the preset's weight average, 0.999, is
    # still mostly the initial weights after 120 steps; eval.json scores it, with the live weights under "live")
    assert result["weights"] == "ema 0.999" and result["mse"] > result["live"]["mse"]
    assert result["live"]["mse"] < 0.6 * result["mse_random"]
    assert (tmp_path / "run" / "samples.png").is_file() and (tmp_path / "run" / "reconstructions.png").is_file()
