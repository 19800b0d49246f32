"""Configuration: dotted keys from the command line, types, validation messages, YAML round trip."""
import pytest
import yaml

from svae.config import Config, ConfigError, resumable_keys, set_value, validate
from svae.presets import PRESETS, get_preset


def test_set_value_parses_command_line_strings():
    cfg = get_preset("toy-svae-r")
    set_value(cfg, "train.lr", "3e-4")
    set_value(cfg, "train.batch_size", "64")
    set_value(cfg, "model.prior", "uniform")
    set_value(cfg, "data.data_dir", "none")
    assert cfg.train.lr == 3e-4 and cfg.train.batch_size == 64 and cfg.model.prior == "uniform"
    assert cfg.data.data_dir is None


@pytest.mark.parametrize("key,value,match", [
    ("train.lrr", "1", r"unknown key 'train.lrr'; allowed: .*train\.lr"),
    ("nosuch", "1", "unknown key 'nosuch'"),
    ("train", "1", "unknown key 'train'"),
    ("train.batch_size", "abc", r"train.batch_size: expected int, got 'abc'"),
    ("train.batch_size", "1.5", "expected int"),
    ("train.lr", "fast", "train.lr: expected float"),
])
def test_set_value_rejects_bad_keys_and_types(key, value, match):
    with pytest.raises(ConfigError, match=match):
        set_value(get_preset("toy-svae-r"), key, value)


@pytest.mark.parametrize("key,value,match", [
    ("train.lr", -1.0, "train.lr: must be > 0"),
    ("objective.lam", -0.5, "objective.lam: must be >= 0"),
    ("objective.kind", "gan", "objective.kind: 'gan' is not one of ali, alice, svae, svae_r, vae"),
    ("model.prior", "laplace", "model.prior: 'laplace' is not one of normal, uniform"),
    ("objective.rec", "l3", "objective.rec"),
    ("train.batch_size", 4096, "larger than the dataset"),
    ("train.device", "tpu", "train.device"),
    ("train.beta1", 1.0, "beta1"),
    ("model.arch", "mnist", "does not fit data.name 'toy'"),
    ("objective.estimator", "marginal", None),  # fine for svae-r
    ("objective.z_weight", -1.0, "objective.z_weight: must be >= 0"),
    ("model.critic_norm", "layer", "model.critic_norm: 'layer' is not one of batch, none, spectral"),
    ("model.critic_dropout", 1.0, r"model.critic_dropout: must lie in \[0, 1\)"),
    ("objective.r1", -1.0, "objective.r1: must be >= 0"),
    ("objective.r1_every", 0, "objective.r1_every: must be > 0"),
    ("train.compile", True, None),  # fine without r1
])
def test_validate_names_the_bad_key(key, value, match):
    cfg = get_preset("toy-svae-r")
    set_value(cfg, key, value, parse=False) if not isinstance(value, str) else set_value(cfg, key, value)
    if match is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


@pytest.mark.parametrize("preset,key,value,match", [
    ("toy-vae", None, None, "objective.r1 penalises a critic; objective.kind 'vae' has none"),
    ("toy-svae-r", "objective.estimator", "marginal", "objective.r1 needs objective.estimator 'joint'"),
    ("toy-svae-r", "train.compile", True, "objective.r1 needs train.compile false"),
    ("toy-ali", "train.precision", "fp16", "precision fp32 or bf16"),
    ("toy-ali", "train.precision", "bf16", None),
])
def test_r1_rules(preset, key, value, match):
    cfg = get_preset(preset)
    cfg.objective.r1 = 1.0
    if key:
        set_value(cfg, key, value, parse=False)
    if match is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError, match=match):
        validate(cfg)


def test_model_specific_rules():
    cfg = get_preset("toy-vae")
    cfg.model.encoder_head = "deterministic"
    with pytest.raises(ConfigError, match="needs model.encoder_head 'gaussian'"):
        validate(cfg)
    cfg = get_preset("toy-ali")
    cfg.objective.estimator = "marginal"
    with pytest.raises(ConfigError, match="marginal' needs objective.kind 'svae_r'"):
        validate(cfg)


def test_yaml_round_trip(tmp_path):
    cfg = get_preset("mnist-svae-r")
    cfg.objective.lam = 0.01
    cfg.save(tmp_path / "c.yaml")
    assert Config.load(tmp_path / "c.yaml") == cfg


def test_yaml_is_data_never_code(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("train: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.load(p)
    assert not (tmp_path / "pwned").exists()


def test_every_preset_is_valid_and_named_after_its_model():
    assert len(PRESETS) == 20
    for name, cfg in PRESETS.items():
        validate(cfg)
        assert cfg.preset == name and cfg.objective.kind == name.split("-", 1)[1].replace("-", "_")
        assert cfg.data.name == name.split("-")[0] == cfg.model.arch


def test_get_preset_returns_a_copy():
    get_preset("toy-svae-r").train.lr = 123.0
    assert get_preset("toy-svae-r").train.lr == 1e-3


def test_unknown_preset_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="unknown preset 'toy-gan'; allowed: toy-ali, toy-alice"):
        get_preset("toy-gan")


def test_a_config_written_before_critic_input_was_removed_still_loads(tmp_path):
    """config.yaml files and checkpoints written before the removal hold model.critic_input 'joint'."""
    d = get_preset("mnist-ali").to_dict()
    d["model"]["critic_input"] = "joint"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    cfg = Config.load(tmp_path / "config.yaml")
    assert cfg.to_dict() == get_preset("mnist-ali").to_dict() and "critic_input" not in cfg.to_dict()["model"]
    d["model"]["critic_input"] = "pair"
    with pytest.raises(ConfigError, match="model.critic_input: removed"):
        Config.from_dict(d)


def test_the_resumable_keys_are_where_and_how_long_and_how_fast_never_what():
    keys = resumable_keys()
    assert {"train.epochs", "train.steps", "train.device", "data.data_dir", "train.channels_last",
            "train.batch_decoder", "train.probe_every", "train.on_divergence"} <= keys
    assert not keys & {"train.lr", "train.seed", "train.batch_size", "train.reuse_forward", "train.precision",
                       "objective.lam", "model.z_dim", "data.name", "data.seed"}
    assert all(k.split(".")[0] in ("data", "train") for k in keys)
