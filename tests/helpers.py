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
