"""Regenerate the measured parts of pages from the studies they cite (training what is unfinished):

    python scripts/study_page.py [PAGE.md ...] [--jobs 2] [--data-dir ../shared/data] [--no-train] [--study NAME]

PAGE defaults to docs/recipe.md and docs/results.md. Each study a page cites (studies/<name>.yaml) is run with
`svae study run` into runs/<name>/ (the runs recorded in studies/records/<name>/, which git keeps, are restored
there first, and every finished run is recorded there after: a page regenerates on a machine that trained none
of them), then its summary table, learning curves and the samples and reconstructions of
every model and lambda side by side replace the block between `<!-- study:<name>:start -->` and
`<!-- study:<name>:end -->`. The prose around the blocks is written by hand and cites only what the blocks show.
A frozen study (its YAML's `frozen:` says why it cannot run again) keeps its block as it was rendered.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from svae.experiments.study import Study, keep_records, restore_records, summarise

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "docs" / "recipe.md", ROOT / "docs" / "results.md"]


def block(study: Study, out: Path, root: Path = ROOT) -> str:
    """The study's table, its curves per preset, its IS-versus-MSE fronts and its panels (samples and
    reconstructions of every model and lambda side by side), as markdown; the pictures go to docs/img/<study>/."""
    table = summarise(study, out).split("\n", 3)[3].strip()  # drop the title and the why: the page has its own
    img = root / "docs" / "img" / study.name
    if img.exists():
        shutil.rmtree(img)
    img.mkdir(parents=True)
    parts = [f"Command: `svae study run studies/{study.name}.yaml --jobs 2 --data-dir DIR --records "
             f"studies/records/{study.name}` (one torch thread a run; the records hold every finished run, and the "
             "curves of the runs stopped part of the way).", "",
             table, ""]
    for preset in study.presets:
        if (out / f"curves-{preset}.png").is_file():
            shutil.copy(out / f"curves-{preset}.png", img / f"curves-{preset}.png")
            parts.append(f"![{preset} learning curves](img/{study.name}/curves-{preset}.png)\n")
    for picture in sorted(out.glob("front-*.png")) + sorted(out.glob("panels-*.png")):
        shutil.copy(picture, img / picture.name)
        parts.append(f"![{picture.stem}](img/{study.name}/{picture.name})\n")
    return "\n".join(parts).strip() + "\n"


def rewrite(page: Path, root: Path = ROOT, train: bool = True, only: list[str] | None = None, jobs: int = 2,
            data_dir: str | None = None) -> str:
    """Rewrite every study block of `page` (or those of the `only` studies) from root/runs/<name>, after restoring
    the runs recorded in root/studies/records/<name> there and, with `train`, training what is unfinished; every
    finished run is recorded. Returns the new text (also written to the page)."""
    text = page.read_text()
    for name in re.findall(r"<!-- study:([\w-]+):start -->", text):
        if only and name not in only:
            continue
        path = root / "studies" / f"{name}.yaml"
        out, records = root / "runs" / name, root / "studies" / "records" / name
        study = Study.load(path)
        if study.frozen:
            print(f"study_page: {name} is frozen, its block stays as it was rendered: {study.frozen}",
                  file=sys.stderr)
            continue
        if train:
            subprocess.run([sys.executable, "-m", "svae", "study", "run", str(path), "--jobs", str(jobs),
                            "--out", str(out), "--records", str(records),
                            *(["--data-dir", data_dir] if data_dir else [])], check=True, cwd=root)
        restore_records(study, out, records)
        keep_records(study, out, records)
        start, end = f"<!-- study:{name}:start -->", f"<!-- study:{name}:end -->"
        head, rest = text.split(start, 1)
        text = head + start + "\n" + block(study, out, root) + end + rest.split(end, 1)[1]
    page.write_text(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pages", nargs="*", type=Path, default=PAGES, help="pages to rewrite (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--no-train", action="store_true", help="only rewrite the pages from the runs there are")
    p.add_argument("--study", action="append", help="rewrite only this study's block (repeatable; default: all)")
    a = p.parse_args()
    for page in a.pages:
        rewrite(page, ROOT, not a.no_train, a.study, a.jobs, a.data_dir)
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
