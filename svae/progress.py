"""Progress bars with an ETA on stderr for the long loops: sampling, classifier and Inception passes, sweeps."""
from __future__ import annotations

from tqdm import tqdm


def bar(total: int, desc: str, unit: str = "it") -> tqdm:
    """A tqdm bar (count, rate, elapsed < remaining) that stays quiet when stderr is not a terminal (logs, pipes,
    tests) and clears itself when done, so that only results stay on screen."""
    return tqdm(total=total, desc=desc, unit=unit, disable=None, leave=False, dynamic_ncols=True)
