"""Progress bars: shown with a count and an ETA on a terminal, silent when stderr is a pipe or a file."""
import io
import sys

import numpy as np
import pytest
import torch

from svae.cli import main
from svae.metrics import classifier as clf
from svae.metrics import inception
from svae.model import Model
from svae.presets import get_preset
from tests.test_metrics_inception import TinyInception
from tests.test_experiments_sweep import TINY


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def terminal(monkeypatch) -> Terminal:
    """stderr as a terminal, from here on (inside the test: pytest resets sys.stderr after fixtures run)."""
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    return screen


def shown(screen: Terminal, desc: str, total: int) -> bool:
    """A bar named desc counted to total, with its elapsed<remaining time (the ETA)."""
    text = screen.getvalue()
    return f"{desc}:" in text and f"/{total} [" in text and "<" in text


LOOPS = {
    "classifier probs": lambda: clf.predict(clf.Classifier("mnist"), torch.rand(30, 1, 28, 28), batch_size=10),
    "inception-v3": lambda: inception.inception_outputs(TinyInception(), torch.rand(30, 3, 8, 8), batch_size=10),
    "sampling": lambda: Model(get_preset("toy-svae-r")).sample(30, batch_size=10),
    "reconstructing": lambda: Model(get_preset("toy-svae-r")).reconstruct(torch.zeros(30, 2), batch_size=10),
}


@pytest.mark.parametrize("desc", list(LOOPS))
def test_long_loops_show_a_bar_on_a_terminal_only(desc, capsys, monkeypatch):
    LOOPS[desc]()
    assert capsys.readouterr().err == ""  # not a terminal: nothing
    screen = terminal(monkeypatch)
    LOOPS[desc]()
    assert shown(screen, desc, 30)


@pytest.mark.slow
def test_score_and_sweep_show_their_bars(tmp_path, monkeypatch):
    screen = terminal(monkeypatch)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((20, 1, 28, 28), dtype=np.float32))
    assert main(["score", str(tmp_path / "x.npy"), "--domain", "mnist"]) == 0
    assert shown(screen, "classifier probs", 20)
    assert main(["sweep", "--preset", "toy-svae-r", "--lam", "0", "--out", str(tmp_path / "s")] + TINY) == 0
    assert shown(screen, "sweep", 1) and "toy-svae-r lambda=0" in screen.getvalue()
