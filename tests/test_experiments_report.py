"""`svae report`: one markdown row per evaluated run directory, with the notes its numbers need."""
import json

import pytest

from svae.cli import main
from svae.run import train
from tests.helpers import tiny_toy


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    for lam in (0.0, 1.0):
        cfg = tiny_toy("toy-alice")
        cfg.objective.lam = lam
        train(cfg, root / "sweep" / f"lam_{lam:g}", progress=False)
    return root


@pytest.mark.slow
def test_report_has_one_row_per_run_and_writes_the_file(runs, capsys):
    out = runs / "report.md"
    assert main(["report", str(runs / "sweep" / "lam_0"), str(runs / "sweep" / "lam_1"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert printed == out.read_text()
    assert lines[0].startswith("| run | model | λ | IS | MSE | random-pairing MSE | steps | wall time (s) | machine |")
    rows = [line for line in lines[2:] if line.startswith("|")]
    assert len(rows) == 2 and "| ALICE | 0 |" in rows[0] and "| ALICE | 1 |" in rows[1]
    ev = json.loads((runs / "sweep" / "lam_1" / "eval.json").read_text())
    assert f"{ev['is_mean']:.3f} ± {ev['is_std']:.3f}" in rows[1] and f"{ev['mse']:.4g}" in rows[1]
    assert any("squared distance per point" in line for line in lines)


def test_report_finds_runs_below_a_folder(runs, capsys):
    assert main(["report", str(runs)]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if "| ALICE |" in line]) == 2


def test_report_without_runs_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no evaluated run" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_report_shows_class_shares_when_an_eval_has_them(tmp_path, runs, capsys):
    """A classifier-scored run gets the smallest-largest class share and the two parts of log IS; runs without
    them (the toy) keep the column off."""
    import shutil

    run = tmp_path / "scored"
    shutil.copytree(runs / "sweep" / "lam_1", run)
    ev = json.loads((run / "eval.json").read_text())
    ev.update(is_class_fractions=[0.5, 0.3, 0.2], is_marginal_entropy=1.03, is_conditional_entropy=0.25)
    (run / "eval.json").write_text(json.dumps(ev))
    assert main(["report", str(run), str(runs / "sweep" / "lam_0")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| class shares |" in lines[0]
    assert "| 0.200-0.500 (H 1.03, E H 0.25) |" in lines[2] and lines[3].count("| n/a |") == 1
