"""Test-wide setup: caches go to a temporary folder, never into the user's home."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SVAE_CACHE", str(tmp_path_factory.mktemp("svae-cache")))
    yield
    mp.undo()
