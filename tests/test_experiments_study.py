"""Studies: the grid a YAML file describes, its command lines, a small study run end to end, resumed and summarised."""
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from svae.cli import _config_from_args, _parser, main
from svae.config import ConfigError
from svae.experiments.study import Study, run_study, train_command

TINY = {"train.steps": 4, "data.n_train": 64, "data.n_test": 32, "model.hidden": 16, "train.batch_size": 16,
        "train.log_every": 2, "train.eval_samples": 200, "train.probe_every": 2, "train.probe_samples": 100}


def write(tmp_path, **fields):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "presets": ["toy-ali", "toy-svae-r"], "sets": TINY, **fields}))
    return path


def test_the_grid_is_variants_x_presets_x_lambdas_x_seeds(tmp_path):
    s = Study.load(write(tmp_path, lams=[0, 0.5], seeds=[0, 3], variants={"base": {}, "lr": {"train.lr": 1e-4}}))
    runs = s.runs(tmp_path)
    assert len(runs) == 2 * 2 * 2 * 2
    lr = [r for r in runs if r.variant == "lr"]
    assert {r.cfg.train.lr for r in lr} == {1e-4} and {r.cfg.train.lr for r in runs if r.variant == "base"} == {1e-3}
    assert {(r.lam, r.seed) for r in lr if r.preset == "toy-ali"} == {(0, 0), (0, 3), (0.5, 0), (0.5, 3)}
    assert runs[0].dir == tmp_path / "base" / "toy-ali" / "lam_0" / "seed_0"
    assert all(r.cfg.train.steps == 4 for r in runs)


def test_without_lams_each_preset_keeps_its_own_lambda(tmp_path):
    runs = Study.load(write(tmp_path)).runs(tmp_path)
    assert [(r.preset, r.lam) for r in runs] == [("toy-ali", 0.0), ("toy-svae-r", 1.0)]


def test_lams_per_preset_leave_the_others_at_their_own(tmp_path):
    runs = Study.load(write(tmp_path, lams={"toy-svae-r": [0.1, 1]}, seeds=[0, 1])).runs(tmp_path)
    assert [(r.preset, r.lam, r.seed) for r in runs] == [
        ("toy-ali", 0.0, 0), ("toy-ali", 0.0, 1), ("toy-svae-r", 0.1, 0), ("toy-svae-r", 0.1, 1),
        ("toy-svae-r", 1.0, 0), ("toy-svae-r", 1.0, 1)]
    assert runs[2].dir == tmp_path / "baseline" / "toy-svae-r" / "lam_0.1" / "seed_0"


def test_the_lams_filter_runs_only_those_lambdas(tmp_path, monkeypatch, capsys):
    path = write(tmp_path, lams={"toy-svae-r": [0.1, 1]})
    started = []
    monkeypatch.setattr("svae.experiments.study.subprocess.Popen", lambda cmd, **kw: started.append(cmd) or _Done())
    rows = run_study(Study.load(path), tmp_path / "out", lams=[0.1], log=lambda m: None)
    assert [(r["preset"], r["lam"]) for r in rows] == [("toy-svae-r", 0.1)] and len(started) == 1
    assert main(["study", "list", str(path), "--lams", "0.5"]) != 0
    assert "the study's lambdas are 0, 0.1, 1" in capsys.readouterr().err


def test_where_a_run_computed_does_not_make_it_unfinished(tmp_path):
    import copy

    run = Study.load(write(tmp_path)).runs(tmp_path / "out")[0]
    run.dir.mkdir(parents=True)
    (run.dir / "eval.json").write_text("{}")
    cfg = copy.deepcopy(run.cfg)
    cfg.train.device, cfg.train.threads, cfg.data.data_dir = "cuda", 8, "/elsewhere"
    cfg.save(run.dir / "config.yaml")
    assert run.finished
    cfg.train.lr *= 2
    cfg.save(run.dir / "config.yaml")
    assert not run.finished
    assert train_command(run, device="cuda:1")[-2:] == ["--device", "cuda:1"]


def test_finished_runs_are_scored_with_inception_not_trained_again(tmp_path, monkeypatch):
    import copy

    study = Study.load(write(tmp_path, inception=500, seeds=[0, 1]))
    runs = study.runs(tmp_path / "out")
    for run, images, ckpt in zip(runs, [None, 500, 200, None], [True, True, True, False]):
        run.dir.mkdir(parents=True)
        (run.dir / "eval.json").write_text(json.dumps({"inception_images": images} if images else {}))
        copy.deepcopy(run.cfg).save(run.dir / "config.yaml")
        if ckpt:
            (run.dir / "checkpoints").mkdir()
            (run.dir / "checkpoints" / "last.pt").write_bytes(b"")
    started = []
    monkeypatch.setattr("svae.experiments.study.subprocess.Popen", lambda cmd, **kw: started.append(cmd) or _Done())
    monkeypatch.setattr("svae.metrics.inception.find_weights", lambda: None)  # as if the weights were installed
    rows = run_study(study, tmp_path / "out", data_dir=str(tmp_path), log=lambda m: None)
    # no eval.json score and another number of images are scored; the same number, or no checkpoint (a run
    # restored from records), are left as they are; nothing trains
    assert [c[3:6] for c in started] == [["eval", str(runs[0].dir), "--inception"], ["eval", str(runs[2].dir),
                                                                                      "--inception"]]
    assert all(c[6] == "500" and c[-2:] == ["--data-dir", str(tmp_path.resolve())] for c in started)
    assert [r["status"] for r in rows] == ["done before, scored", "done before", "done before, scored", "done before"]

    # without weights nothing is started, and the runs say why they have no FID
    from svae.metrics.classifier import MetricError

    def missing():
        raise MetricError("no Inception-v3 weights; looked in ...")

    monkeypatch.setattr("svae.metrics.inception.find_weights", missing)
    started.clear()
    said = []
    rows = run_study(study, tmp_path / "out", log=said.append)
    assert started == [] and "2 run(s) not scored with Inception-v3: no Inception-v3 weights" in said[-1]
    assert rows[0]["status"] == "done before, not scored (no Inception-v3 weights)"


class _Done:
    returncode = 0

    def poll(self):
        return 0


@pytest.mark.parametrize("fields, message", [
    ({"lams": {"toy-vae": [1]}}, "does not run: toy-vae"),
    ({"lams": {"toy-ali": 1}}, "mapping preset -> list"),
    ({"variants": {"bad": {"train.nope": 1}}}, "unknown key 'train.nope'"),
    ({"variants": {"bad": {"train.lr": "fast"}}}, "train.lr: expected float"),
    ({"colour": "red"}, "unknown study field"),
    ({"presets": ["toy-nope"]}, "unknown preset"),
    ({"inception": -1}, "inception is a number of images"),
    ({"inception": "all"}, "inception is a number of images"),
    ({"frozen": True}, "frozen is a sentence"),
])
def test_a_bad_study_is_refused_before_anything_runs(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=message):
        Study.load(write(tmp_path, **fields))


def test_the_command_line_of_a_run_rebuilds_its_configuration(tmp_path):
    s = Study.load(write(tmp_path, lams=[0.25], seeds=[7], variants={"v": {"train.lr": 3e-4, "model.prior": "uniform"}}))
    for run in s.runs(tmp_path):
        cmd = train_command(run)
        assert cmd[:4] == [sys.executable, "-m", "svae", "train"]
        args = _parser().parse_args(cmd[3:])
        assert _config_from_args(args).to_dict() == run.cfg.to_dict()


@pytest.mark.slow
def test_a_study_runs_resumes_and_summarises(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = write(tmp_path, variants={"base": {}, "lr": {"train.lr": 1e-4}})
    out = tmp_path / "out"
    assert main(["study", "run", str(path), "--out", str(out), "--jobs", "2"]) == 0
    text = capsys.readouterr().out
    assert text.count("| toy-") == 4 and "| base | toy-ali | 0 | 1/1 |" in text
    for d in ("base", "lr"):
        ev = json.loads((out / d / "toy-svae-r" / "lam_1" / "seed_0" / "eval.json").read_text())
        assert ev["steps"] == 4
    assert (out / "curves-toy-ali.png").is_file() and (out / "summary.md").read_text().startswith("# s")
    stamp = os.path.getmtime(out / "base" / "toy-ali" / "lam_0" / "seed_0" / "eval.json")
    rows = run_study(Study.load(path), out, jobs=2, log=lambda m: None)
    assert {r["status"] for r in rows} == {"done before"}
    assert os.path.getmtime(out / "base" / "toy-ali" / "lam_0" / "seed_0" / "eval.json") == stamp
    assert main(["study", "list", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("finished") == 4


def test_a_failed_run_is_named_and_makes_the_exit_status_one(tmp_path, monkeypatch, capsys):
    import svae.experiments.study as st

    class Failed:
        returncode = 3

        def poll(self):
            return 3

    monkeypatch.setattr(st.subprocess, "Popen", lambda cmd, **kw: Failed())
    monkeypatch.setattr(st.time, "sleep", lambda s: None)
    assert main(["study", "run", str(write(tmp_path)), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "toy-ali/lam_0/seed_0: failed (exit 3" in err and "toy-svae-r/lam_1/seed_0: failed" in err


def test_only_names_variants_and_presets_of_the_study(tmp_path, capsys):
    assert main(["study", "run", str(write(tmp_path)), "--only", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "variants are baseline" in capsys.readouterr().err
    assert main(["study", "run", str(write(tmp_path)), "--presets", "toy-vae", "--out", str(tmp_path / "o")]) == 2
    assert "presets are toy-ali, toy-svae-r" in capsys.readouterr().err
    assert main(["study", "run", str(write(tmp_path)), "--seeds", "5", "--out", str(tmp_path / "o")]) == 2
    assert "seeds are 0" in capsys.readouterr().err


def test_a_preset_filter_trains_only_that_preset(tmp_path, monkeypatch):
    import svae.experiments.study as st

    started = []

    class Done:  # a process that has finished at once
        returncode = 0

        def poll(self):
            return 0

    monkeypatch.setattr(st.subprocess, "Popen", lambda cmd, **kw: started.append(cmd) or Done())
    monkeypatch.setattr(st.time, "sleep", lambda s: None)
    rows = run_study(Study.load(write(tmp_path, seeds=[0, 1])), tmp_path / "o", jobs=2, presets=["toy-svae-r"],
                     log=lambda m: None)
    assert [r["preset"] for r in rows] == ["toy-svae-r"] * 2 and len(started) == 2
    assert all("toy-svae-r" in cmd for cmd in started)
    rows = run_study(Study.load(write(tmp_path, seeds=[0, 1])), tmp_path / "o", jobs=2, seeds=[1], log=lambda m: None)
    assert [(r["preset"], r["seed"]) for r in rows] == [("toy-ali", 1), ("toy-svae-r", 1)]


def test_curves_of_a_folder_without_metrics_is_a_one_line_error(tmp_path, capsys):
    assert main(["curves", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_a_run_counts_as_finished_wherever_its_data_was_read_from(tmp_path):
    run = Study.load(write(tmp_path)).runs(tmp_path / "o")[0]
    run.dir.mkdir(parents=True)
    (run.dir / "eval.json").write_text("{}")
    moved = run.cfg.__class__.from_dict(run.cfg.to_dict())
    moved.data.data_dir = str(tmp_path / "data")
    moved.save(run.dir / "config.yaml")
    assert run.finished
    moved.train.lr = 0.5
    moved.save(run.dir / "config.yaml")
    assert not run.finished


def _finish(run, config=None):
    """A run folder as svae train leaves it, without training: config, eval.json, metrics, a grid, a checkpoint."""
    _stop(run, config, '{"step": 4, "epoch": 1.0, "probe_mse": 0.2}')
    (run.dir / "eval.json").write_text('{"is_mean": 2.5, "mse": 0.1}')
    (run.dir / "toy.png").write_bytes(b"png")


def _stop(run, config=None, metrics='{"step": 2, "epoch": 0.5, "probe_mse": 0.3, "probe_is": 3.0}'):
    """A run folder as a study leaves a run it stopped part of the way: config, learning curves, a checkpoint."""
    from svae import rundir

    run.dir.mkdir(parents=True)
    rundir.mark(run.dir)
    (config or run.cfg).save(run.dir / "config.yaml")
    (run.dir / "metrics.jsonl").write_text(metrics + "\n")
    (run.dir / "checkpoints").mkdir()
    (run.dir / "checkpoints" / "last.pt").write_bytes(b"weights")


def test_records_keep_finished_runs_without_checkpoints_and_restore_them_elsewhere(tmp_path):
    import copy

    from svae.run import prepare
    from svae.experiments.study import keep_records, restore_records

    study = Study.load(write(tmp_path))
    first = study.runs(tmp_path / "machine1")
    _finish(first[0])
    records = tmp_path / "records"
    assert keep_records(study, tmp_path / "machine1", records) == [records / first[0].dir.relative_to(
        tmp_path / "machine1")]
    kept = records / first[0].dir.relative_to(tmp_path / "machine1")
    assert sorted(p.name for p in kept.iterdir()) == ["config.yaml", "eval.json", "metrics.jsonl", "toy.png"]
    # another machine: the recorded run is finished there without training, the other one is not
    second = study.runs(tmp_path / "machine2")
    assert restore_records(study, tmp_path / "machine2", records) == [second[0].dir]
    assert second[0].finished and not second[1].finished
    assert json.loads((second[0].dir / "eval.json").read_text())["is_mean"] == 2.5
    assert restore_records(study, tmp_path / "machine2", records) == []  # finished there now: nothing to copy
    # a record of another configuration is not restored; a restored run that must train again is cleared by train
    changed = copy.deepcopy(study)
    changed.sets = {**changed.sets, "train.steps": 8}
    assert restore_records(changed, tmp_path / "machine3", records) == []
    run = changed.runs(tmp_path / "machine2")[0]
    assert not run.finished and prepare(run.cfg, run.dir, resume=True) is None
    assert not (run.dir / "eval.json").exists()


def test_records_keep_the_curves_of_stopped_runs_and_restore_them_only_where_nothing_of_them_is(tmp_path):
    import copy

    from svae.run import prepare
    from svae.experiments.study import keep_records, restore_records, summarise

    study = Study.load(write(tmp_path))
    first = study.runs(tmp_path / "machine1")
    _finish(first[0])
    _stop(first[1])
    assert first[1].stopped and not first[1].finished and not first[0].stopped
    records = tmp_path / "records"
    kept = keep_records(study, tmp_path / "machine1", records)
    assert kept == [records / r.dir.relative_to(tmp_path / "machine1") for r in first]
    assert sorted(p.name for p in kept[1].iterdir()) == ["config.yaml", "metrics.jsonl"]  # no checkpoint
    # another machine: the stopped run's curves are there (no scores), and its row shows its probes
    second = study.runs(tmp_path / "machine2")
    assert restore_records(study, tmp_path / "machine2", records) == [r.dir for r in second]
    assert second[1].stopped and not (second[1].dir / "eval.json").exists()
    table = summarise(study, tmp_path / "machine2")
    assert "| baseline | toy-svae-r | 1 | 0/1 |" in table and "3.00 (0.5)" in table
    # a machine's own attempt at the run is never overwritten by a record, however far either got
    third = study.runs(tmp_path / "machine3")
    _stop(third[1], metrics='{"step": 2, "epoch": 0.5, "probe_mse": 0.3, "probe_is": 5.0}')
    restore_records(study, tmp_path / "machine3", records)
    assert '"probe_is": 5.0' in (third[1].dir / "metrics.jsonl").read_text()
    # a stopped record does not replace a finished one; a restored stopped run trains afresh (nothing to resume)
    _stop(study.runs(tmp_path / "machine4")[0])
    keep_records(study, tmp_path / "machine4", records)
    assert (kept[0] / "eval.json").is_file()
    assert prepare(second[1].cfg, second[1].dir, resume=True) is None and not (second[1].dir / "metrics.jsonl").exists()
    # under a changed study the old records are neither finished nor stopped: a stopped run of the new definition
    # replaces the finished record and leaves no eval.json of the old one behind
    changed = copy.deepcopy(study)
    changed.sets = {**changed.sets, "train.steps": 8}
    assert restore_records(changed, tmp_path / "machine5", records) == []
    _stop(changed.runs(tmp_path / "machine5")[0])
    keep_records(changed, tmp_path / "machine5", records)
    assert not (kept[0] / "eval.json").exists() and changed.runs(records)[0].stopped


def test_a_frozen_study_is_listed_and_summarised_but_never_run_and_its_page_block_stays(tmp_path, capsys):
    import shutil

    path = write(tmp_path, frozen="its runs are lost")
    study = Study.load(path)
    with pytest.raises(ConfigError, match="study s is frozen, it cannot run again: its runs are lost"):
        run_study(study, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main(["study", "run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "frozen" in capsys.readouterr().err
    assert main(["study", "list", str(path), "--out", str(tmp_path / "out")]) == 0
    assert main(["study", "summary", str(path), "--out", str(tmp_path / "out")]) == 0
    page_mod = _study_page()
    (tmp_path / "studies").mkdir()
    shutil.copy(path, tmp_path / "studies" / "s.yaml")
    page = tmp_path / "page.md"
    page.write_text("<!-- study:s:start -->\nthe rows of the lost runs\n<!-- study:s:end -->\n")
    assert page_mod.rewrite(page, tmp_path, train=True) == page.read_text()
    assert "the rows of the lost runs" in page.read_text() and not (tmp_path / "runs").exists()


def test_records_keep_colour_grids_as_small_palette_pictures(tmp_path):
    from PIL import Image

    from svae.experiments.study import keep_records

    study = Study.load(write(tmp_path))
    run = study.runs(tmp_path / "runs")[0]
    _finish(run)
    # a colour grid with thousands of colours and fine texture, like a grid of faces; a grey one is kept as it is
    y, x = np.mgrid[0:96, 0:96]
    noise = np.random.default_rng(0).normal(0, 6, (96, 96, 3))
    rgb = np.clip(np.stack([x * 2.5, y * 2.5, (x + y) * 1.2], -1) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(run.dir / "samples.png")
    Image.fromarray(rgb[..., 0]).save(run.dir / "reconstructions.png")
    kept = keep_records(study, tmp_path / "runs", tmp_path / "records")[0]
    with Image.open(kept / "samples.png") as small:
        assert small.mode == "P" and small.size == (96, 96)
        assert np.abs(np.asarray(small.convert("RGB"), float) - rgb).mean() < 8  # of 0..255
    assert (kept / "samples.png").stat().st_size < (run.dir / "samples.png").stat().st_size
    assert (kept / "reconstructions.png").read_bytes() == (run.dir / "reconstructions.png").read_bytes()
    assert (kept / "toy.png").read_bytes() == b"png"  # not a picture: copied as it is
    # a smooth colour ramp, which PNG compresses better than its palette version, stays as it is
    Image.fromarray(np.stack([x * 2.5, y * 2.5, (x + y) * 1.2], -1).astype(np.uint8)).save(run.dir / "samples.png")
    keep_records(study, tmp_path / "runs", tmp_path / "records")
    assert (kept / "samples.png").read_bytes() == (run.dir / "samples.png").read_bytes()


def test_the_command_line_restores_and_records(tmp_path, capsys):
    study = Study.load(path := write(tmp_path))
    for r in study.runs(tmp_path / "records"):
        _finish(r)
    out = tmp_path / "out"
    assert main(["study", "summary", str(path), "--out", str(out), "--records", str(tmp_path / "records")]) == 0
    assert "restored" in capsys.readouterr().err
    assert all(r.finished for r in study.runs(out))


def _study_page():
    """scripts/study_page.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("study_page", os.path.join(os.path.dirname(__file__), "..",
                                                                             "scripts", "study_page.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_page_block_is_rewritten_from_the_records_alone(tmp_path):
    """scripts/study_page.py on a machine that trained nothing: the recorded runs fill the table; other blocks and
    the prose around them stay as they were."""
    import shutil

    page_mod = _study_page()
    (tmp_path / "studies").mkdir()
    shutil.copy(write(tmp_path), tmp_path / "studies" / "s.yaml")
    study = Study.load(tmp_path / "studies" / "s.yaml")
    _finish(study.runs(tmp_path / "studies" / "records" / "s")[0])
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text("prose\n<!-- study:s:start -->\nold\n<!-- study:s:end -->\nmore\n"
                    "<!-- study:other:start -->\nkeep\n<!-- study:other:end -->\n")
    text = page_mod.rewrite(page, tmp_path, train=False, only=["s"])
    assert text.startswith("prose\n<!-- study:s:start -->\nCommand:") and "\nold\n" not in text
    assert "| baseline | toy-ali | 0 | 1/1 | 2.500 | 0.1000 |" in text and "| baseline | toy-svae-r | 1 | 0/1 |" in text
    assert text.endswith("more\n<!-- study:other:start -->\nkeep\n<!-- study:other:end -->\n")
    assert (tmp_path / "docs" / "img" / "s" / "curves-toy-ali.png").is_file()


def test_the_summary_shows_the_live_weights_beside_their_average(tmp_path):
    from svae.experiments.study import summarise

    study = Study.load(write(tmp_path))
    runs = study.runs(tmp_path / "out")
    _finish(runs[0])
    _finish(runs[1])
    (runs[1].dir / "eval.json").write_text('{"is_mean": 4.5, "mse": 0.02, "weights": "ema 0.999", '
                                           '"live": {"is_mean": 4.0, "mse": 0.05}}')
    (runs[1].dir / "metrics.jsonl").write_text(
        '{"step": 2, "epoch": 0.5, "probe_mse": 0.3, "probe_is": 3.5, "probe_is_ema": 1.5}\n'
        '{"step": 4, "epoch": 1.0, "probe_mse": 0.2, "probe_is": 3.0, "probe_is_ema": 4.25}\n')
    table = summarise(study, tmp_path / "out")
    assert "| IS | MSE | live IS | live MSE | best probe IS" in table
    # the probe columns follow the weights that IS scores: the average's probes
    assert "| baseline | toy-svae-r | 1 | 1/1 | 4.500 | 0.0200 | 4.000 | 0.0500 | 4.25 (1.0) | 4.25 |" in table
    assert "| baseline | toy-ali | 0 | 1/1 | 2.500 | 0.1000 |  |  |" in table


def test_the_summary_shows_fid_and_kid_with_their_floor_and_drops_scores_no_run_has(tmp_path):
    from svae.experiments.study import summarise

    study = Study.load(write(tmp_path))
    runs = study.runs(tmp_path / "out")
    for run, fid in zip(runs, (80.5, 60.25)):
        _finish(run)
        (run.dir / "eval.json").write_text(json.dumps({"is_mean": None, "mse": 0.1, "fid": fid, "kid_mean": 0.05,
                                                       "fid_real_halves": 12.5, "inception_images": 1000,
                                                       "steps": 300, "seconds": 600}))
    table = summarise(study, tmp_path / "out")
    # no run has an IS, a probe IS, coverage or ambiguity: those columns go; MSE, FID, KID and the budget stay
    assert "| variant | preset | λ | runs evaluated | MSE | FID | KID | steps | epochs | minutes |" in table
    assert "| baseline | toy-svae-r | 1 | 1/1 | 0.1000 | 60.25 | 0.0500 | 300 | 1.0 | 10.0 |" in table
    assert "give FID 12.50 at N = 1,000" in table


def test_the_front_is_drawn_from_every_seed_and_only_where_runs_have_an_is(tmp_path):
    from svae.experiments.study import draw_fronts, summarise

    study = Study.load(write(tmp_path, lams={"toy-svae-r": [0.1, 1]}, seeds=[0, 1]))
    runs = study.runs(tmp_path / "out")
    for r in runs:
        _finish(r)
    assert draw_fronts(study, tmp_path / "out") == [tmp_path / "out" / "front-toy.png"]
    summarise(study, tmp_path / "out")
    assert (tmp_path / "out" / "front-toy.png").stat().st_size > 1000
    for r in runs:  # no IS anywhere (as CelebA): no front, and no empty picture
        (r.dir / "eval.json").write_text('{"is_mean": null, "mse": 0.1}')
    (tmp_path / "out" / "front-toy.png").unlink()
    assert draw_fronts(study, tmp_path / "out") == [] and not (tmp_path / "out" / "front-toy.png").exists()
    for r, fid in zip(runs, (80.0, 70.0, 60.0, 50.0)):  # Inception FID (CelebA, CIFAR-10): the FID front only
        (r.dir / "eval.json").write_text(json.dumps({"is_mean": None, "mse": 0.1, "fid": fid}))
    assert draw_fronts(study, tmp_path / "out") == [tmp_path / "out" / "front-fid-toy.png"]
    for r in runs[1:]:  # one cell scored (a screen of one lambda-free run): a single point shows no front,
        (r.dir / "eval.json").unlink()
    assert draw_fronts(study, tmp_path / "out") == []
    assert not list((tmp_path / "out").glob("front-*.png"))  # and the earlier front is gone with its runs


def test_a_summary_keeps_no_picture_of_an_earlier_definition_of_the_study(tmp_path):
    """A variant added to a one-variant study renames its panels (panels-samples-toy -> ...-toy-VARIANT), and a
    preset dropped from it leaves its curves: the page must show neither beside the new pictures."""
    from PIL import Image

    from svae.experiments.study import summarise

    def finish_with_grid(run):
        _finish(run)
        Image.new("L", (8, 8), 128).save(run.dir / "samples.png")

    one = Study.load(write(tmp_path))
    for r in one.runs(tmp_path / "out"):
        finish_with_grid(r)
    summarise(one, tmp_path / "out")
    assert (tmp_path / "out" / "panels-samples-toy.png").is_file()
    assert (tmp_path / "out" / "curves-toy-ali.png").is_file()
    two = Study.load(write(tmp_path, presets=["toy-svae-r", "toy-alice"],
                           variants={"baseline": {}, "v": {"train.lr": 1e-3}}))
    for r in two.runs(tmp_path / "out"):
        if not r.dir.exists():
            finish_with_grid(r)
    summarise(two, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("panels-*.png")) == [
        "panels-samples-toy-baseline.png", "panels-samples-toy-v.png"]
    assert sorted(p.name for p in (tmp_path / "out").glob("curves-*.png")) == [
        "curves-toy-alice.png", "curves-toy-svae-r.png"]


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "studies").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_study_of_the_repository_loads(path):
    # the pages name these files' commands: a renamed key or preset must fail here, not on a long run
    study = Study.load(path)
    assert study.runs(path.parent) and study.name == path.stem


def test_a_compared_pair_is_set_side_by_side_seed_by_seed(tmp_path):
    from svae.experiments.study import summarise

    study = Study.load(write(tmp_path, lams=[0.5], seeds=[0, 1, 2], compare=[["toy-svae-r", "toy-ali"]]))
    runs = {(r.preset, r.seed): r for r in study.runs(tmp_path / "out")}
    scores = {("toy-svae-r", 0): (4.5, 0.02), ("toy-ali", 0): (4.0, 0.03),   # svae-r ahead on both
              ("toy-svae-r", 1): (4.0, 0.01), ("toy-ali", 1): (4.5, 0.02),   # a trade: neither
              ("toy-svae-r", 2): (3.0, 0.05), ("toy-ali", 2): (3.5, 0.05)}   # ali: higher IS at the same MSE
    for key, (is_mean, mse) in scores.items():
        _finish(runs[key])
        (runs[key].dir / "eval.json").write_text(json.dumps({"is_mean": is_mean, "mse": mse}))
    table = summarise(study, tmp_path / "out")
    assert "| variant | λ | seeds | quality, toy-svae-r − toy-ali | MSE, toy-svae-r − toy-ali |" in table
    # differences 0.5, -0.5, -0.5 (mean -0.167, sd 0.577) and -0.01, -0.01, 0 (mean -0.0067, sd 0.0058)
    assert ("| baseline | 0.5 | 3 | -0.167 ± 0.577 IS | -0.0067 ± 0.0058 | 1 (seed 0) | 1 (seed 2) | 1 (seed 1) |"
            in table)
    (runs[("toy-ali", 2)].dir / "eval.json").unlink()  # a seed only one of the two finished is not compared
    assert "| baseline | 0.5 | 2 | +0.000 ± 0.707 IS | -0.0100 ± 0.0000 | 1 (seed 0) | 0 | 1 (seed 1) |" in \
        summarise(study, tmp_path / "out")
    for key in scores:  # no IS (CelebA, CIFAR-10 without a classifier): FID, where lower is better
        if (runs[key].dir / "eval.json").is_file():
            (runs[key].dir / "eval.json").write_text(json.dumps({"is_mean": None, "mse": 0.02,
                                                                 "fid": 50.0 if key[0] == "toy-ali" else 40.0}))
    assert "| baseline | 0.5 | 2 | -10.00 ± 0.00 FID | +0.0000 ± 0.0000 | 2 (seed 0, 1) | 0 | 0 |" in \
        summarise(study, tmp_path / "out")
    (runs[("toy-ali", 1)].dir / "eval.json").unlink()
    for key in [("toy-svae-r", 0), ("toy-ali", 0)]:  # an in-domain IS that ranks the pair the other way: both rows
        (runs[key].dir / "eval.json").write_text(json.dumps({
            "is_mean": None, "is_indomain_mean": 2.0 if key[0] == "toy-ali" else 1.5, "mse": 0.02,
            "fid": 50.0 if key[0] == "toy-ali" else 40.0}))
    table = summarise(study, tmp_path / "out")
    assert "| baseline | 0.5 | 1 | -0.500 in-domain IS | +0.0000 | 0 | 1 (seed 0) | 0 |" in table
    assert "| baseline | 0.5 | 1 | -10.00 FID | +0.0000 | 1 (seed 0) | 0 | 0 |" in table


@pytest.mark.parametrize("compare, message", [
    ([["toy-svae-r"]], "compare is a list of preset pairs"),
    ([["toy-svae-r", "toy-alice"]], "compare names preset(s) the study does not run: toy-alice")])
def test_a_bad_comparison_is_refused(tmp_path, compare, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Study.load(write(tmp_path, compare=compare))


def test_a_seed_still_training_does_not_mix_its_first_probes_into_a_finished_cell(tmp_path):
    from svae.experiments.study import summarise

    study = Study.load(write(tmp_path, seeds=[0, 1]))
    runs = [r for r in study.runs(tmp_path / "out") if r.preset == "toy-ali"]
    _finish(runs[0])
    (runs[0].dir / "metrics.jsonl").write_text('{"step": 4, "epoch": 1.0, "probe_mse": 0.2, "probe_is": 4.5}\n')
    _stop(runs[1], metrics='{"step": 2, "epoch": 0.5, "probe_mse": 0.3, "probe_is": 1.25}')
    table = summarise(study, tmp_path / "out")
    assert "| baseline | toy-ali | 0 | 1/2 | 2.500 | 0.1000 | 4.50 (1.0) | 4.50 |" in table
    (runs[0].dir / "eval.json").unlink()  # no seed evaluated: the curves of what there is
    table = summarise(study, tmp_path / "out")
    assert "| baseline | toy-ali | 0 | 0/2 | 4.50 (1.0), 1.25 (0.5) | 2.88 ± 2.30 |" in table


def test_every_shipped_record_is_a_run_of_its_study_under_the_presets_as_they_are():
    """A preset change sends the recorded runs of the studies that trained under the old value back to 'to do' (the
    pages would lose their rows, and `study run` would train them again) unless those studies pin the old value in
    their sets: this names the runs such a change would orphan."""
    root = Path(__file__).resolve().parents[1] / "studies"
    checked = 0
    for path in sorted(root.glob("*.yaml")):
        records = root / "records" / path.stem
        if not records.is_dir():
            continue
        study = Study.load(path)
        runs = {run.dir: run for run in study.runs(records)}
        for config in sorted(records.rglob("config.yaml")):
            run = runs.get(config.parent)
            assert run is not None, f"{config.parent}: not a run of {path.name}"
            assert run.finished or run.stopped, f"{config.parent}: its config.yaml is not the run's under {path.name}"
            checked += 1
    assert checked > 100  # the project's records: 100+ runs over a dozen studies
