"""Where samples lose their IS: the decoder on the encoder's codes against on the prior (svae.metrics.codes)."""
import math

import pytest
import torch

from svae.data import Dataset
from svae.metrics.codes import PATH, _kl_to_isotropic, _nearest, code_gap, prior_spacing
from svae.model import Model
from svae.presets import get_preset


def test_the_kl_of_a_gaussian_fit_against_the_prior_is_the_closed_form():
    d = 2
    mean, cov = torch.zeros(d, dtype=torch.float64), 2 * torch.eye(d, dtype=torch.float64)
    # KL(N(0, 2I) || N(0, I)) = 0.5 * (tr 2I - d - log det 2I) = 0.5 * (4 - 2 - 2 log 2)
    assert float(_kl_to_isotropic(mean, cov, 1.0)) == pytest.approx(1 - math.log(2))
    # against the uniform prior's covariance I/3 the same codes sit 0.5 * (12 - 2 - 2 log 6) away
    assert float(_kl_to_isotropic(mean, cov, 1 / 3)) == pytest.approx(0.5 * (12 - 2 - 2 * math.log(6)))
    assert float(_kl_to_isotropic(torch.ones(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64), 1.0)) == \
        pytest.approx(1.0)  # a shifted mean alone: |mean|^2 / 2


def test_nearest_codes_match_brute_force_across_chunks_and_skip_each_code_itself():
    g = torch.Generator().manual_seed(0)
    q, codes = torch.randn(7, 3, generator=g), torch.randn(5, 3, generator=g)
    brute = torch.tensor([min(float((a - c).norm()) for c in codes) for a in q])
    assert torch.allclose(_nearest(q, codes, chunk=3), brute)
    others = torch.tensor([min(float((codes[i] - codes[j]).norm()) for j in range(5) if j != i) for i in range(5)])
    assert torch.allclose(_nearest(codes, codes, exclude_self=True, chunk=2), others)


def test_the_prior_spacing_is_the_nearest_neighbour_scale_of_prior_draws():
    # draws of a standard normal in 64 dimensions lie about sqrt(2 * 64) = 11.3 apart; the nearest of many is nearer,
    # the more the nearer, and farther in more dimensions; the uniform prior on [-1, 1] packs the same draws closer
    few, many = prior_spacing("normal", 64, 50), prior_spacing("normal", 64, 2000)
    assert many < few < math.sqrt(2 * 64)
    assert prior_spacing("normal", 8, 2000) < many
    assert prior_spacing("uniform", 64, 2000) < many
    assert prior_spacing("normal", 64, 2000, seed=0) == many != prior_spacing("normal", 64, 2000, seed=1)


def test_the_code_gap_of_an_mnist_model_scores_every_input_and_the_path_between():
    cfg = get_preset("mnist-svae-r")
    g = torch.Generator().manual_seed(0)
    data = Dataset("mnist", torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=g),
                   torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8, generator=g))
    torch.manual_seed(0)
    out = code_gap(Model(cfg), data, n=30)
    assert out["n"] == 30 and out["prior_kind"] == "normal" and out["classifier"] == "mnist"
    for name in ("real", "reconstructions", "prior", "fitted"):
        assert 1.0 <= out[name]["is"] <= 10.0 and out[name]["ambiguity"] >= 0
        # log IS over the whole set is coverage - ambiguity; the score is a mean over splits of 3, so close only
        assert out[name]["coverage"] <= math.log(10) + 1e-9
    assert [p["t"] for p in out["path"]] == [0.0, *PATH, 1.0]
    assert out["path"][0]["ambiguity"] == out["reconstructions"]["ambiguity"]
    assert out["path"][-1]["ambiguity"] == out["prior"]["ambiguity"]
    assert out["codes"]["dims"] == cfg.model.z_dim and out["codes"]["kl_fit"] > 0
    assert out["codes"]["nearest_code_median"]["prior_samples"] > 0
    assert "posterior_std_median" not in out["codes"]  # a deterministic encoder has no q(z|x) to measure
    model = Model(cfg)
    assert code_gap(model, data, n=30, seed=3) == code_gap(model, data, n=30, seed=3)  # the seed fixes every draw
    cfg.model.encoder_head = "gaussian"
    model = Model(cfg)
    head, d = model.encoder.head.linear, cfg.model.z_dim
    with torch.no_grad():  # log-variance log 0.25 whatever the image: q(z|x) has standard deviation 0.5
        head.weight[d:] = 0
        head.bias[d:] = math.log(0.25)
    assert code_gap(model, data, n=30)["codes"]["posterior_std_median"] == pytest.approx(0.5)


def test_the_code_gap_needs_a_classifier_of_the_dataset():
    cfg = get_preset("toy-svae-r")
    data = Dataset("toy", torch.randn(8, 2), torch.randn(8, 2))
    with pytest.raises(ValueError, match="needs an image dataset with a classifier"):
        code_gap(Model(cfg), data)


def _script():
    """scripts/code_gap.py as a module (a script, not part of the package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("code_gap", Path(__file__).parents[1] / "scripts" / "code_gap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(recs_is: float, ambiguity_at_prior: float) -> dict:
    scores = lambda v, a: {"is": v, "coverage": 2.3, "ambiguity": a}  # noqa: E731
    return {"n": 100, "real": scores(9.8, 0.01), "reconstructions": scores(recs_is, 0.05),
            "prior": scores(8.0, ambiguity_at_prior), "fitted": scores(7.0, 0.3),
            "path": [{"t": t, **scores(8.0, a)} for t, a in ((0.0, 0.05), (0.5, 0.1), (1.0, ambiguity_at_prior))],
            "prior_kind": "normal",
            "codes": {"dims": 64, "kl_fit": 20.0, "nearest_code_median": {"prior_samples": 7.5, "codes": 3.5}}}


def test_the_page_block_averages_seeds_and_ignores_the_analysis_of_an_earlier_run(tmp_path):
    import json

    from helpers import finished_study

    script = _script()
    study, out, records = finished_study(tmp_path)
    for run, recs_is in zip(study.runs(out), (9.4, 9.6)):
        (run.dir / "codes.json").write_text(json.dumps({"eval_id": script.eval_id(run.dir),
                                                        **_result(recs_is, 0.2)}))
    text = script.block(study, out, records, tmp_path / "img", "img/code-gap")
    assert "| baseline | mnist-svae-r | 1 | 2 | 9.500 ± 0.141 | 8.000 ± 0.000 | 7.000 ± 0.000 | 0.050 ± 0.000 |" in text
    assert "real test images score IS 9.800 at ambiguity 0.010" in text
    assert (f"were the codes 100 draws of the prior itself, both would be about "
            f"{prior_spacing('normal', 64, 100):.2f} in 64 dimensions.") in text
    assert (tmp_path / "img" / "code-gap-s.png").stat().st_size > 1000
    run = study.runs(out)[1]  # the run trained again: its new evaluation is not what codes.json describes
    (run.dir / "eval.json").write_text(json.dumps({"is_mean": 8.5, "mse": 0.05}))
    assert "| baseline | mnist-svae-r | 1 | 1 | 9.400 |" in script.block(study, out, records, tmp_path / "img", "i")


def test_decode_is_the_decoder_in_batches():
    model = Model(get_preset("mnist-svae-r")).eval()
    z = model.sample_prior(5)
    with torch.no_grad():
        assert torch.allclose(model.decode(z, batch_size=2), model.decoder(z), atol=1e-6)


def test_the_page_block_shows_the_width_of_a_gaussian_encoder_beside_deterministic_ones(tmp_path):
    import json

    from helpers import finished_study

    script = _script()
    study, out, _ = finished_study(tmp_path, seeds=(0,),
                                   variants={"baseline": {}, "gauss": {"model.encoder_head": "gaussian"}})
    for run in study.runs(out):
        result = _result(9.5, 0.2)
        if run.variant == "gauss":
            result["codes"]["posterior_std_median"] = 0.0123
            result["codes"]["dims"] = 16  # codes of another size: the caption gives the prior's scale for each
        (run.dir / "codes.json").write_text(json.dumps({"eval_id": script.eval_id(run.dir), **result}))
    text = script.block(study, out, tmp_path / "records", tmp_path / "img", "img")
    assert "| q(z|x): median std |" in text
    assert " 7.50 / 3.50 | 0 (deterministic) |" in text and " 7.50 / 3.50 | 0.0123 |" in text
    assert (f"both would be about {prior_spacing('normal', 64, 100):.2f} in 64 dimensions and "
            f"{prior_spacing('normal', 16, 100):.2f} in 16 dimensions.") in text
    for run in study.runs(out):  # without a Gaussian encoder in the study, no such column
        if run.variant == "gauss":
            (run.dir / "codes.json").unlink()
    assert "q(z|x)" not in script.block(study, out, tmp_path / "records", tmp_path / "img", "img")
