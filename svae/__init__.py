"""svae: symmetric VAE (sVAE, sVAE-r) and its baselines (ALICE, ALI, VAE) in PyTorch."""
__version__ = "0.1.0"

from .config import Config, ConfigError  # noqa: E402
from .model import Model  # noqa: E402
from .presets import get_preset, preset_names  # noqa: E402
from .run import build, evaluate_run, train  # noqa: E402

__all__ = ["Config", "ConfigError", "Model", "build", "evaluate_run", "get_preset", "preset_names", "train",
           "__version__"]
