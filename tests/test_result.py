"""EvalResult: eval.json as a typed record that goes back to disk as it came, and the one choice of a run's IS."""
import json

import pytest

from svae.result import EvalResult
from svae.rundir import RunError

# an eval.json as svae 0.1.0 wrote it for MNIST (keys in their written order, the long tail included)
MNIST = {"preset": "mnist-svae-r", "model": "svae_r", "lam": 1.0, "seed": 0, "mse": 0.0527, "mse_std": 0.01,
         "mse_random": 0.53, "mse_range": "[-1, 1]", "is_mean": 8.9, "is_std": 0.05, "is_classifier": "svae-mnist",
         "is_class_fractions": [0.1] * 10, "rec_accuracy": 0.97, "n_samples": 10000, "steps": 2400,
         "seconds": 960.5, "machine": {"cpu": "x86_64", "threads": 1}}


def test_a_file_goes_back_to_disk_byte_for_byte(tmp_path):
    text = json.dumps(MNIST, indent=2) + "\n"
    (tmp_path / "eval.json").write_text(text)
    ev = EvalResult.load(tmp_path)
    assert (ev.preset, ev.model, ev.lam, ev.mse, ev.is_mean, ev.steps, ev.machine["threads"]) == \
        ("mnist-svae-r", "svae_r", 1.0, 0.0527, 8.9, 2400, 1)
    assert ev.get("is_class_fractions") == [0.1] * 10 and "mse_std" in ev and not ev.is_toy
    ev.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text


def test_an_older_file_without_keys_reads_them_as_none(tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps({"model": "ali", "lam": 0, "mse": 4.7, "mse_per_coord": 2.35}))
    ev = EvalResult.load(tmp_path / "eval.json")
    assert ev.is_mean is None and ev.steps is None and ev.machine == {} and ev.is_toy
    assert ev.sample_score().kind == "" and ev.sample_score().mean is None


def test_the_is_proper_comes_first_then_the_in_domain_stand_in():
    both = EvalResult.from_dict({"is_mean": 6.1, "is_std": 0.1, "is_classifier": "inception-v3",
                                 "is_indomain_mean": 7.0})
    assert (both.sample_score().mean, both.sample_score().kind, both.sample_score().label) == \
        (6.1, "is", "Inception score")
    indomain = EvalResult.from_dict({"is_mean": None, "is_indomain_mean": 5.5, "is_indomain_std": 0.2})
    assert (indomain.sample_score().mean, indomain.sample_score().std, indomain.sample_score().kind) == \
        (5.5, 0.2, "indomain")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_an_unreadable_file_is_a_run_error(tmp_path, content):
    (tmp_path / "eval.json").write_text(content)
    with pytest.raises(RunError, match="unreadable"):
        EvalResult.load(tmp_path)


def test_a_key_outside_the_typed_fields_reads_as_in_the_file():
    ev = EvalResult.from_dict(MNIST)
    assert ev["mse_std"] == 0.01 and ev["is_class_fractions"] == [0.1] * 10
    with pytest.raises(KeyError):
        ev["fid"]


def test_machine_is_the_one_description_eval_json_and_bench_record():
    import torch

    from svae import __version__
    from svae.result import machine

    m = machine()
    # the keys eval.json has always written, so older files stay comparable, and what `svae bench` prints
    assert {"python", "torch", "svae", "cpu", "threads", "cpu_model", "date"} <= set(m)
    assert m["torch"] == torch.__version__ and m["svae"] == __version__ and m["threads"] == torch.get_num_threads()
    assert ("gpu" in m) == torch.cuda.is_available()
