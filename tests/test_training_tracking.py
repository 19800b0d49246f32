"""TensorBoard logging: every metrics.jsonl row reaches the sink (the trainer's one hook), and with the
tensorboard package installed the event files hold the scalars, the evaluation and the grids."""
import json
import sys

import pytest

from helpers import tiny_toy
from svae.training import tracking
from svae.cli import main
from svae.run import train


def rows_of(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_every_metrics_row_and_the_evaluation_reach_the_sink(tmp_path, monkeypatch):
    got = []

    class Collect:
        def __init__(self, run_dir, start_step=0):
            got.append(("open", start_step))

        def write(self, row):
            got.append(row)

        def write_eval(self, result, run_dir):
            got.append(("eval", result["is_mean"]))

        def close(self):
            got.append("close")

    monkeypatch.setattr(tracking, "TensorBoardSink", Collect)
    monkeypatch.setattr(tracking, "_writer_class", lambda: Collect)
    result = train(tiny_toy(tensorboard=True), tmp_path / "run", progress=False)
    assert got[0] == ("open", 0) and got[1:-2] == rows_of(tmp_path / "run") and len(got[1:-2]) == 2
    assert got[-2] == ("eval", result["is_mean"]) and got[-1] == "close"
    got.clear()
    train(tiny_toy(), tmp_path / "off", progress=False)
    assert got == []  # off by default


@pytest.mark.slow
def test_tensorboard_event_files_hold_the_curves_evaluation_and_grids(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    result = train(tiny_toy(tensorboard=True), run, progress=False)
    acc = EventAccumulator(str(run / tracking.LOG_DIR), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    rows = rows_of(run)
    assert [e.step for e in acc.Scalars("loss_critic")] == [r["step"] for r in rows] == [4, 8]
    assert acc.Scalars("loss_gen")[-1].value == pytest.approx(rows[-1]["loss_gen"])
    assert acc.Scalars("eval/is_mean")[0].value == pytest.approx(result["is_mean"])
    assert "toy" in acc.Tags()["images"]


ARGV = ["train", "--preset", "toy-svae-r", "--steps", "2", "--no-eval", "--tensorboard"]


def test_without_the_package_the_flag_says_how_to_install_it_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    assert main(ARGV + ["--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install tensorboard" in err and len(err.splitlines()) == 1 and not (tmp_path / "a").exists()


def test_the_flag_turns_it_on(tmp_path):
    pytest.importorskip("tensorboard")
    assert main(ARGV + ["--out", str(tmp_path / "b")]) == 0
    assert any((tmp_path / "b" / tracking.LOG_DIR).iterdir())
