"""Regenerate the measured parts of pages from the studies they cite (training what is unfinished):

    python scripts/study_page.py [PAGE.md ...] [--jobs 2] [--data-dir ../shared/data] [--no-train]

PAGE defaults to docs/recipe.md and docs/results.md. Each study a page cites (studies/<name>.yaml) is run with
`svae study run` into runs/<name>/, then its summary table, learning curves and the samples and reconstructions of
every model and lambda side by side replace the block between `<!-- study:<name>:start -->` and
`<!-- study:<name>:end -->`. The prose around the blocks is written by hand and cites only what the blocks show.
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
PAGES = [ROOT / "docs" / "recipe.md", ROOT / "docs" / "results.md"]


def block(study: Study, out: Path) -> str:
    """The study's table, its curves per preset and its panels (samples and reconstructions of every model and
    lambda side by side), as markdown; the pictures are copied to docs/img/<study>/."""
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
    for picture in sorted(out.glob("panels-*.png")):
        shutil.copy(picture, img / picture.name)
        parts.append(f"![{picture.stem}](img/{study.name}/{picture.name})\n")
    return "\n".join(parts).strip() + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pages", nargs="*", type=Path, default=PAGES, help="pages to rewrite (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--no-train", action="store_true", help="only rewrite the pages from the runs there are")
    a = p.parse_args()
    for page in a.pages:
        text = page.read_text()
        for name in re.findall(r"<!-- study:([\w-]+):start -->", text):
            path = ROOT / "studies" / f"{name}.yaml"
            out = ROOT / "runs" / name
            if not a.no_train:
                subprocess.run([sys.executable, "-m", "svae", "study", "run", str(path), "--jobs", str(a.jobs),
                                "--data-dir", a.data_dir, "--out", str(out)], check=True, cwd=ROOT)
            start, end = f"<!-- study:{name}:start -->", f"<!-- study:{name}:end -->"
            head, rest = text.split(start, 1)
            text = head + start + "\n" + block(Study.load(path), out) + end + rest.split(end, 1)[1]
        page.write_text(text)
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
