"""Small configurations that train in well under a second."""
from svae.config import validate
from svae.presets import get_preset


def tiny_toy(preset: str = "toy-svae-r", **train) -> "Config":  # noqa: F821
    cfg = get_preset(preset)
    cfg.data.n_train, cfg.data.n_test = 64, 32
    cfg.model.hidden = 16
    cfg.train.batch_size, cfg.train.steps, cfg.train.log_every = 16, 8, 4
    cfg.train.eval_samples, cfg.train.eval_splits = 200, 10
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return validate(cfg)


def shared_data_dir() -> "Path":  # noqa: F821
    """The project's shared datasets (../shared/data beside the repository, or $SVAE_SHARED_DATA)."""
    import os
    from pathlib import Path

    env = os.environ.get("SVAE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def finished_study(tmp_path, seeds=(0, 1), variants=None):
    """A one-preset study (mnist-svae-r, lambda 1; variants: name -> sets) whose runs under tmp_path/runs are
    finished (config.yaml, and an eval.json of IS 8.0 at MSE 0.06), for the analysis blocks. Returns (study, runs
    folder, records folder)."""
    import json

    import yaml

    from svae.experiments.study import Study

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "presets": ["mnist-svae-r"], "seeds": list(seeds),
                                    "sets": {"train.steps": 4}, **({"variants": variants} if variants else {})}))
    study = Study.load(path)
    out = tmp_path / "runs"
    for run in study.runs(out):
        run.dir.mkdir(parents=True)
        run.cfg.save(run.dir / "config.yaml")
        (run.dir / "eval.json").write_text(json.dumps({"is_mean": 8.0, "mse": 0.06}))
    return study, out, tmp_path / "records"
