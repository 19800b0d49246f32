"""scripts/mnist_demo.py writes docs/mnist.md from run folders: every placeholder filled, and the sentences about
the comparison table follow the numbers in it (never a trend the runs do not show)."""
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from svae.presets import get_preset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mnist_demo.py"


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.chdir(os.getcwd())  # main() works from the repository root; the test's folder comes back after
    spec = importlib.util.spec_from_file_location("mnist_demo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(folder: Path, is_mean: float | None, mse: float, live: bool = False, bn_stats: str = "") -> None:
    """A finished MNIST run folder as svae train leaves it, without training."""
    folder.mkdir(parents=True)
    get_preset("mnist-svae-r").save(folder / "config.yaml")
    ev = {"model": "svae-r", "lam": 1.0, "mse": mse, "mse_random": 0.52, "mse_01": mse / 4, "mse_random_01": 0.13,
          "is_mean": is_mean, "is_std": 0.05, "real_test_is_mean": 9.81, "real_test_is_std": 0.08,
          "is_classifier": "svae-mnist-cnn", "classifier_test_accuracy": 0.9965, "rec_accuracy": 0.97,
          "is_marginal_entropy": 2.29, "is_conditional_entropy": 0.21, "is_class_fractions": [0.08] * 5 + [0.12] * 5,
          "steps": 6000, "seconds": 1500.0, "machine": {"cpu": "x86_64", "threads": 1, "torch": "2.13.0+cpu"}}
    if live:
        ev["live"] = {"is_mean": 7.5, "mse": 0.09}
    if bn_stats:
        ev["bn_stats"] = bn_stats
    (folder / "eval.json").write_text(json.dumps(ev))
    rows = [{"step": s, "loss_gen": 1.0, "rec_x": r, "logit_q": 0.4, "logit_p": -3.9}
            for s, r in ((100, 22.5), (6000, 9.8))]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("samples", "reconstructions", "curves"):
        (folder / f"{name}.png").write_bytes(b"png")


@pytest.mark.parametrize("weights_is, trend", [((2.0, 3.0, 4.0), "rises as the weight falls"),
                                                ((4.0, 3.0, 2.0), "falls as the weight falls"),
                                                ((3.0, 4.0, 2.0), None)])
def test_the_page_fills_every_placeholder_and_says_only_the_trend_its_table_shows(demo, tmp_path, monkeypatch,
                                                                                 weights_is, trend):
    runs, docs = tmp_path / "runs", tmp_path / "docs"
    fake_run(runs / "mnist-svae-r", 8.0, 0.058, live=True, bn_stats="pathway")
    fake_run(runs / "mnist-svae-r-z-weight-1", weights_is[0], 0.03)
    fake_run(runs / "mnist-svae-r-z-weight-0.1", weights_is[1], 0.03)
    fake_run(runs / "mnist-svae-r-preset", weights_is[2], 0.04)
    fake_run(runs / "mnist-svae-r-rec-mean", 1.0, 0.57)
    monkeypatch.setattr(sys, "argv", ["mnist_demo.py", "--runs", str(runs), "--docs", str(docs)])
    demo.main()
    page = (docs / "mnist.md").read_text()
    assert "${" not in page and "$preset" not in page
    assert "the live weights of the last step score IS 7.500 at MSE 0.0900" in page
    assert "(the ten classes drawn\n0.080-0.120 of the time)" in page
    assert ("z_weight 1 scores IS %.2f at MSE 0.0300, 0.1 scores IS %.2f at MSE 0.0300, 0.01 (the preset) scores "
            "IS %.2f at MSE 0.0400." % weights_is) in page
    if trend:
        assert f"The inception score {trend}." in page
    else:
        assert "as the weight falls" not in page
    assert "the per-pixel mean scores IS 1.00 at MSE 0.5700 against the preset's IS" in page
    assert "(a collapse: every sample the same class)" in page
    assert "| BatchNorm statistics at evaluation | per pathway: the decoder's from prior draws" in page
    assert (docs / "img" / "mnist-svae-r-curves.png").is_file()
