"""Regenerate the measured parts of docs/recipe.md from the studies it cites (training what is unfinished):

    python scripts/recipe_page.py [--jobs 2] [--data-dir ../shared/data] [--no-train]

Each study (studies/<name>.yaml) is run with `svae study run` into runs/<name>/, then its summary table, learning
curves and sample grids replace the block between `<!-- study:<name>:start -->` and `<!-- study:<name>:end -->`.
The prose around the blocks is written by hand and cites only what the blocks show.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from svae.study import Study, summarise

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "recipe.md"


def block(study: Study, out: Path) -> str:
    """The study's table, its curves per preset and the last sample grid of each run, as markdown."""
    table = summarise(study, out).split("\n", 3)[3].strip()  # drop the title and the why: the page has its own
    img = ROOT / "docs" / "img" / study.name
    if img.exists():
        shutil.rmtree(img)
    img.mkdir(parents=True)
    parts = [f"Command: `svae study run studies/{study.name}.yaml --jobs 2 --data-dir DIR` "
             f"(one torch thread a run).", "", table, ""]
    for preset in study.presets:
        if (out / f"curves-{preset}.png").is_file():
            shutil.copy(out / f"curves-{preset}.png", img / f"curves-{preset}.png")
            parts.append(f"![{preset} learning curves](img/{study.name}/curves-{preset}.png)\n")
    for run in study.runs(out):
        if (run.dir / "samples.png").is_file():
            name = f"samples-{run.variant}-{run.preset}-s{run.seed}.png"
            shutil.copy(run.dir / "samples.png", img / name)
            parts.append(f"![{run.variant} {run.preset} samples](img/{study.name}/{name})")
    return "\n".join(parts).strip() + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--no-train", action="store_true", help="only rewrite the page from the runs there are")
    a = p.parse_args()
    text = PAGE.read_text()
    for name in re.findall(r"<!-- study:([\w-]+):start -->", text):
        path = ROOT / "studies" / f"{name}.yaml"
        out = ROOT / "runs" / name
        if not a.no_train:
            subprocess.run([sys.executable, "-m", "svae", "study", "run", str(path), "--jobs", str(a.jobs),
                            "--data-dir", a.data_dir, "--out", str(out)], check=True, cwd=ROOT)
        start, end = f"<!-- study:{name}:start -->", f"<!-- study:{name}:end -->"
        head, rest = text.split(start, 1)
        text = head + start + "\n" + block(Study.load(path), out) + end + rest.split(end, 1)[1]
    PAGE.write_text(text)
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
