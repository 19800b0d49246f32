"""svae: symmetric VAE (sVAE, sVAE-r) and its baselines (ALICE, ALI, VAE) in PyTorch."""
__version__ = "0.1.0"

# Loaded on first use (PEP 562), so that `svae` starts without torch: the command line imports it inside its
# error handling, where a Ctrl-C during that import is one line, not a traceback.
_LAZY = {"Config": "config", "ConfigError": "config", "Model": "model", "build": "run", "evaluate_run": "run",
         "get_preset": "presets", "preset_names": "presets", "train": "run"}

__all__ = ["Config", "ConfigError", "Model", "build", "evaluate_run", "get_preset", "preset_names", "train",
           "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'svae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
