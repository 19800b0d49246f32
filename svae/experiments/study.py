"""Studies: presets x lambdas x seeds x variants (configuration overrides) from a YAML file, run by a job pool,
resumable, and summarised as a table and learning curves (docs/results.md and the recipe study are made this way)."""
from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import rundir
from ..config import Config, ConfigError, set_value, validate
from ..presets import get_preset
from ..result import EvalResult


# train keys that say where a run computes, not what: a study run on a GPU finds its CPU runs finished, and back
WHERE_KEYS = ("device", "threads")


@dataclass(frozen=True)
class Run:
    """One cell of a study: which preset, variant, lambda and seed, its resolved config and its folder."""
    variant: str
    preset: str
    lam: float
    seed: int
    cfg: Config
    dir: Path

    @property
    def finished(self) -> bool:
        """Evaluated under this configuration (a changed study definition trains again); where it ran (the data
        folder, the device and CPU threads, given at run time) does not count."""
        return (self.dir / "eval.json").is_file() and self.same_config

    @property
    def stopped(self) -> bool:
        """Trained part of the way under this configuration (learning curves, no evaluation): a run that a study
        stopped once its curves had said enough, or one still training."""
        return not (self.dir / "eval.json").is_file() and (self.dir / "metrics.jsonl").is_file() and self.same_config

    @property
    def same_config(self) -> bool:
        """The folder's config.yaml is this run's configuration, up to where it ran."""
        if not (self.dir / "config.yaml").is_file():
            return False
        try:
            done, want = Config.load(self.dir / "config.yaml").to_dict(), self.cfg.to_dict()
        except ValueError:
            return False
        done["data"]["data_dir"] = want["data"]["data_dir"] = None
        for key in WHERE_KEYS:
            done["train"][key] = want["train"][key] = None
        return done == want


@dataclass
class Study:
    """A grid: every preset under every variant, at every lambda (none: the preset's own) and seed.

    sets: keys every run shares (the budget, threads); variants: name -> keys that differ from the shared ones.
    One factor at a time against a baseline is a variant per factor beside an empty "baseline" variant.
    lams: one list for every preset, or a mapping preset -> list (presets it does not name keep their own lambda),
    so that a lambda sweep of sVAE-r and ALICE and the lambda-free ALI and sVAE share one study folder.
    inception: images behind the Inception-v3 FID/KID of every finished run (CIFAR-10, CelebA), scored after
    training by `svae eval RUN --inception N` where eval.json has another number: an evaluation setting, so a run
    that finished without it is scored, not trained again (0: the runs' own train.eval_inception).
    frozen: why the study can no longer be run as its pages show it (its runs predate records and the presets have
    changed since): `study run` refuses it and scripts/study_page.py leaves its blocks as they were rendered.
    compare: pairs [A, B] of the study's presets to set side by side seed by seed in the summary (sVAE-r against
    ALICE: which of the two is ahead on the front in each seed, not only in the means)."""
    name: str
    presets: list[str]
    variants: dict[str, dict[str, Any]] = field(default_factory=lambda: {"baseline": {}})
    lams: list[float] | dict[str, list[float]] | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    sets: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    why: str = ""
    inception: int = 0
    frozen: str = ""
    compare: list[list[str]] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> "Study":
        path = Path(path)
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read the study ({e.__class__.__name__})") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{path}: a study is a mapping (name, presets, variants, lams, seeds, sets)")
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ConfigError(f"{path}: unknown study field(s) {', '.join(sorted(unknown))}; allowed: "
                              f"{', '.join(cls.__dataclass_fields__)}")
        d.setdefault("name", path.stem)
        variants = d.get("variants") or {"baseline": {}}
        d["variants"] = {str(k): dict(v or {}) for k, v in variants.items()}
        lams = d.get("lams")
        if isinstance(lams, dict) and set(lams) - set(d.get("presets") or []):
            raise ConfigError(f"{path}: lams names preset(s) the study does not run: "
                              f"{', '.join(sorted(set(lams) - set(d.get('presets') or [])))}")
        if lams is not None and not all(isinstance(v, list) for v in (lams.values() if isinstance(lams, dict)
                                                                       else [lams])):
            raise ConfigError(f"{path}: lams is a list of numbers, or a mapping preset -> list of numbers")
        if not isinstance(d.get("frozen", ""), str):
            raise ConfigError(f"{path}: frozen is a sentence that says why the study cannot run again, "
                              f"got {d['frozen']!r}")
        pairs = d.get("compare") or []
        if not (isinstance(pairs, list) and all(isinstance(q, list) and len(q) == 2 for q in pairs)):
            raise ConfigError(f"{path}: compare is a list of preset pairs, e.g. [[mnist-svae-r, mnist-alice]], "
                              f"got {pairs!r}")
        strangers = {p for q in pairs for p in q} - set(d.get("presets") or [])
        if strangers:
            raise ConfigError(f"{path}: compare names preset(s) the study does not run: "
                              f"{', '.join(sorted(map(str, strangers)))}")
        d["compare"] = [list(q) for q in pairs]
        n = d.get("inception", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"{path}: inception is a number of images (0 or more), got {n!r}")
        study = cls(**d)
        study.runs(Path("."))  # every configuration is validated before anything runs
        return study

    def lams_of(self, preset: str) -> list[float | None]:
        """The lambdas a preset runs at (None: the preset's own)."""
        lams = self.lams.get(preset) if isinstance(self.lams, dict) else self.lams
        return list(lams) if lams is not None else [None]

    def runs(self, out: Path) -> list[Run]:
        """Every run of the grid, in the order they are trained (variants outermost, so each finishes in turn)."""
        runs = []
        for variant, keys in self.variants.items():
            for preset in self.presets:
                for lam in self.lams_of(preset):
                    for seed in self.seeds:
                        cfg = get_preset(preset)
                        for key, value in {**self.sets, **keys}.items():
                            set_value(cfg, key, value, parse=isinstance(value, str))
                        if lam is not None:
                            cfg.objective.lam = float(lam)
                        cfg.train.seed = int(seed)
                        validate(cfg)
                        where = out / variant / preset / f"lam_{cfg.objective.lam:g}" / f"seed_{seed}"
                        runs.append(Run(variant, preset, cfg.objective.lam, int(seed), cfg, where))
        return runs


# what a record of a finished run keeps: enough for the summary, the curves and the panels, and small enough for git
# (about 0.1 MB a run); the checkpoints stay in the study folder
RECORD_FILES = ("config.yaml", "eval.json", "metrics.jsonl", "samples.png", "reconstructions.png", "toy.png")
# analyses made after a run from its checkpoint (scripts/code_gap.py, scripts/bn_stats.py): copied where there, never
# deleted where not (the machine with the checkpoint may be gone); each names the eval.json it belongs to, so a stale
# one is ignored
ANALYSIS_FILES = ("codes.json", "bn.json")


def _copy_record(src: Path, dest: Path) -> Path:
    """Make dest hold src's record files and no others of theirs (a stale eval.json must not outlive its run)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
        if (src / name).is_file():
            _copy_light(src / name, dest / name)
        else:
            (dest / name).unlink(missing_ok=True)
    for name in ANALYSIS_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
    return dest


def _copy_light(src: Path, dest: Path) -> None:
    """Copy one record file, a colour picture as a 256-colour PNG: git keeps every version of every record, and
    a grid of 100 faces takes a third of its bytes so (0.9 MB -> 0.37 MB) with no difference one sees."""
    if src.suffix == ".png":
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(src) as picture:
                if picture.mode == "RGB":
                    small = io.BytesIO()
                    picture.quantize(256).save(small, "PNG", optimize=True)
                    if small.tell() < src.stat().st_size:  # flat pictures compress better as they are
                        dest.write_bytes(small.getvalue())
                        return
        except UnidentifiedImageError:  # not a picture after all: keep the bytes as they are
            pass
    shutil.copyfile(src, dest)


def keep_records(study: Study, out: str | Path, records: str | Path) -> list[Path]:
    """Copy the light files (RECORD_FILES, no checkpoints) of every finished run, and of every run stopped part of
    the way whose record is not finished, from the study folder `out` to `records` (the same tree): a study's
    results, and the learning curves of the runs it stopped early, then outlive the machine that trained them,
    since a project keeps records/ in git and runs/ out of it. Returns the runs copied."""
    out, records = Path(out), Path(records)
    kept = []
    for run, record in zip(study.runs(out), study.runs(records)):
        if run.finished or (run.stopped and not record.finished):
            kept.append(_copy_record(run.dir, record.dir))
    return kept


def restore_records(study: Study, out: str | Path, records: str | Path) -> list[Path]:
    """Copy the runs that `records` holds finished (under the study's present definition) into the study folder
    `out` where they are not finished there, and the runs it holds stopped part of the way where `out` has no
    trace of them: `study run` then trains only what no machine has finished, and the summary and pages see every
    record. A restored run has no checkpoint: if it must train (a stopped one, or any after the study changed),
    svae train starts it afresh. Returns the runs restored."""
    out, records = Path(out), Path(records)
    restored = []
    for run, kept in zip(study.runs(out), study.runs(records)):
        if run.finished or not (kept.finished or kept.stopped):
            continue
        if kept.stopped and any((run.dir / name).exists() for name in ("config.yaml", "metrics.jsonl")):
            continue  # this machine's own attempt at the run, perhaps further along: never overwritten
        _copy_record(kept.dir, run.dir)
        rundir.mark(run.dir)  # svae's own files: a run that must train again may clear them
        restored.append(run.dir)
    return restored


def train_command(run: Run, data_dir: str | None = None, device: str | None = None) -> list[str]:
    """The `svae train` command line of one run: the preset, then every key that differs from it."""
    base = get_preset(run.preset).to_dict()
    cmd = [sys.executable, "-m", "svae", "train", "--preset", run.preset, "--out", str(run.dir), "--resume", "auto"]
    for section, values in run.cfg.to_dict().items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if value != base[section][key] and f"{section}.{key}" != "data.data_dir":
                cmd += ["--set", f"{section}.{key}={value}"]
    if data_dir or run.cfg.data.data_dir:
        cmd += ["--data-dir", str(Path(data_dir or run.cfg.data.data_dir).resolve())]
    if device:
        cmd += ["--device", device]
    return cmd


def eval_command(run: Run, inception: int, data_dir: str | None = None, device: str | None = None) -> list[str]:
    """The `svae eval` command line that scores a finished run's Inception-v3 FID/KID on `inception` images."""
    cmd = [sys.executable, "-m", "svae", "eval", str(run.dir), "--inception", str(inception)]
    if data_dir:
        cmd += ["--data-dir", str(Path(data_dir).resolve())]
    return cmd + (["--device", device] if device else [])


def needs_inception(run: Run, inception: int) -> bool:
    """Whether a finished run's eval.json lacks the study's Inception-v3 scores (another number of images, or
    none). A run restored from records has no checkpoint to score; it keeps what its record says."""
    if not inception or not run.finished or not (run.dir / "checkpoints" / "last.pt").is_file():
        return False
    return EvalResult.load(run.dir / "eval.json").get("inception_images") != inception


def _pool(work: list[tuple[Run, list[str], str]], jobs: int, logs: Path, log, what: str) -> dict[Path, str]:
    """Run each (run, command, done-label) as its own process, `jobs` at a time, output appended to the run's log
    in `logs`; returns run dir -> the label, or why it failed. A failure does not stop the others."""
    pending, running, status = list(work), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            run, cmd, label = pending.pop(0)
            log(f"{what} {run.dir} ({len(pending)} waiting)")
            name = str(run.dir.relative_to(logs.parent)).replace("/", "__")
            with open(logs / f"{name}.log", "a") as f:
                running[run.dir] = (subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT), label)
        time.sleep(1)
        for d, (p, label) in list(running.items()):
            if p.poll() is not None:
                status[d] = label if p.returncode == 0 else f"failed (exit {p.returncode}, see {logs})"
                del running[d]
    return status


def run_study(study: Study, out: str | Path, jobs: int = 1, data_dir: str | None = None,
              only: list[str] | None = None, log=print, presets: list[str] | None = None,
              seeds: list[int] | None = None, lams: list[float] | None = None,
              device: str | None = None) -> list[dict[str, Any]]:
    """Train every unfinished run (of the `only` variants, `presets`, `seeds` and `lams`, when given; on `device`
    when given), `jobs` processes at a time (each its own `svae train --resume auto`, so a stopped study continues
    where it was), then score the study's Inception-v3 images where a finished run lacks them; returns one status
    row per run. A failed run does not stop the others."""
    if study.frozen:
        raise ConfigError(f"study {study.name} is frozen, it cannot run again: {study.frozen}")
    out = Path(out)
    todo = [r for r in study.runs(out) if (only is None or r.variant in only)
            and (presets is None or r.preset in presets) and (seeds is None or r.seed in seeds)
            and (lams is None or r.lam in lams)]
    status = {r.dir: "done before" for r in todo if r.finished}
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    status.update(_pool([(r, train_command(r, data_dir, device), "trained") for r in todo if r.dir not in status],
                        jobs, logs, log, f"study {study.name}: training"))
    scoring = [(r, eval_command(r, study.inception, data_dir, device), status[r.dir] + ", scored")
               for r in todo if needs_inception(r, study.inception)]
    if scoring:
        from ..metrics.classifier import MetricError
        from ..metrics.inception import find_weights

        try:
            find_weights()  # once here, rather than an evaluation per run that writes "no weights" and exits 0
        except MetricError as e:
            log(f"study {study.name}: {len(scoring)} run(s) not scored with Inception-v3: {e}")
            status.update({r.dir: status[r.dir] + ", not scored (no Inception-v3 weights)" for r, _, _ in scoring})
            scoring = []
    status.update(_pool(scoring, jobs, logs, log, f"study {study.name}: Inception-v3 on {study.inception} images of"))
    return [{"variant": r.variant, "preset": r.preset, "lam": r.lam, "seed": r.seed, "run_dir": str(r.dir),
             "status": status[r.dir]} for r in todo]


# ---------------------------------------------------------------- summary


def _cell(values: list[float], digits: int) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _is(ev: EvalResult) -> tuple[float | None, str]:
    """A run's sample score: Inception (or MNIST classifier / toy posterior) IS, else the in-domain classifier's
    (EvalResult.sample_score makes the choice)."""
    score = ev.sample_score()
    return score.mean, "in-domain" if score.kind == "indomain" else "is"


def _fid(ev: EvalResult) -> tuple[float | None, str]:
    """FID against the test split: Inception features, else the in-domain classifier's features."""
    if ev.get("fid") is not None:
        return ev["fid"], "inception"
    return ev.get("fid_indomain"), "in-domain"


def draw_panels(study: Study, out: str | Path, seed: int | None = None) -> list[Path]:
    """The paper's figure layout per dataset and variant: samples of every model (a row each) at every lambda (a
    column each) in panels-samples-DATASET[-VARIANT].png, their reconstructions in panels-reconstructions-...;
    the runs of one seed (default: the study's first)."""
    from .. import viz

    out, seed = Path(out), study.seeds[0] if seed is None else seed
    drawn = []
    for old in out.glob("panels-*.png"):  # an earlier definition's panels (one variant then, two now) must not
        old.unlink()                      # outlive it: the pages copy every panel there is
    for variant in study.variants:
        mine = [r for r in study.runs(out) if r.variant == variant and r.seed == seed]
        for dataset in dict.fromkeys(r.cfg.data.name for r in mine):
            suffix = dataset if len(study.variants) == 1 else f"{dataset}-{variant}"
            for kind in ("samples", "reconstructions"):
                have = [r for r in mine if r.cfg.data.name == dataset and (r.dir / f"{kind}.png").is_file()]
                if len(have) < 2:
                    continue
                rows = [[(r.dir / f"{kind}.png", f"{r.preset.split('-', 1)[1]} λ={r.lam:g}")
                         for r in have if r.preset == preset] for preset in dict.fromkeys(r.preset for r in have)]
                drawn.append(viz.panels(rows, out / f"panels-{kind}-{suffix}.png",
                                        f"{dataset}: {kind} (seed {seed})"))
    return drawn


# The fronts drawn per dataset: (file prefix, score of a run (value, kind), axis label per kind, better direction).
FRONTS = (("front", _is, {"is": "IS", "in-domain": "in-domain IS"}, "higher"),
          ("front-fid", _fid, {"inception": "FID (Inception)", "in-domain": "FID (in-domain features)"}, "lower"))


def _sd(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def draw_fronts(study: Study, out: str | Path) -> list[Path]:
    """Sample quality against reconstruction error per dataset and variant, from every seed: one line per preset
    through its lambdas (mean over seeds, bars one standard deviation where there are several), lambda-free presets
    as one point. IS in front-DATASET[-VARIANT].png, FID in front-fid-DATASET[-VARIANT].png; a score that fewer than
    two (preset, lambda) cells of the dataset have (IS on CelebA, FID where nothing was scored) gets no picture."""
    from .. import viz

    out, drawn = Path(out), []
    for old in out.glob("front-*.png"):  # a front that the runs no longer give must not outlive them (pages copy all)
        old.unlink()
    for variant in study.variants:
        mine = [r for r in study.runs(out) if r.variant == variant and (r.dir / "eval.json").is_file()]
        evals = {r.dir: EvalResult.load(r.dir) for r in mine}
        for dataset in dict.fromkeys(r.cfg.data.name for r in mine):
            suffix = dataset if len(study.variants) == 1 else f"{dataset}-{variant}"
            for prefix, score, labels, better in FRONTS:
                plt = viz._plt()
                fig, ax = plt.subplots(figsize=(6.0, 4.4))
                kinds, cells = set(), 0
                presets = dict.fromkeys(r.preset for r in mine if r.cfg.data.name == dataset)
                for i, preset in enumerate(presets):
                    pts = []
                    for lam in dict.fromkeys(r.lam for r in mine if r.preset == preset):
                        evs = [evals[r.dir] for r in mine if r.preset == preset and r.lam == lam]
                        scored = [(e.mse, *score(e)) for e in evs if e.mse is not None and score(e)[0] is not None]
                        if scored:
                            mse, value, kind = zip(*scored)
                            kinds.update(kind)
                            pts.append((lam, statistics.mean(mse), statistics.mean(value), _sd(mse), _sd(value),
                                        len(mse)))
                    if not pts:
                        continue
                    pts.sort()
                    cells += len(pts)
                    _, m, sc, dm, ds, n = zip(*pts)
                    ax.errorbar(m, sc, xerr=dm, yerr=ds, fmt="o-", color=f"C{i % 10}", ms=5, capsize=3,
                                label=preset)
                    for lam, mx, sy, *_, k in pts:
                        ax.annotate(f"λ={lam:g}" + (f" ({k} seeds)" if k > 1 else ""), (mx, sy),
                                    textcoords="offset points", xytext=(4, 4), fontsize=7)
                if cells < 2:  # no point, or one: no trade-off to show
                    plt.close(fig)
                    continue
                ylabel = " / ".join(labels[k] for k in sorted(kinds))  # a mix of scorers shows as both names
                viz.front_axes(ax, "test MSE per pixel on [-1, 1] (lower is better)",
                               f"{ylabel} ({better} is better)",
                               f"{dataset}: sample quality against reconstruction error ({variant})")
                drawn.append(viz.save_figure(fig, out / f"{prefix}-{suffix}.png"))
    return drawn


def _signed(values: list[float], digits: int) -> str:
    mean = f"{statistics.mean(values):+.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ± {statistics.stdev(values):.{digits}f}"


def _ahead(q: tuple[float, float], other: tuple[float, float], higher: bool) -> bool:
    """(quality, MSE) q is ahead of other on the front: quality at least as good at an MSE at most as large, one
    of the two strictly better."""
    (a, ma), (b, mb) = q, other
    at_least = a >= b if higher else a <= b
    return at_least and ma <= mb and (a, ma) != (b, mb)


def _seeds(seeds: list[int]) -> str:
    return f"{len(seeds)}" + (f" (seed {', '.join(map(str, seeds))})" if seeds else "")


def paired(study: Study, evals: dict[Path, EvalResult], runs: list[Run]) -> list[str]:
    """Markdown lines per `compare` pair [A, B]: for each variant and lambda both ran, the seeds where both were
    evaluated side by side (the same seed, data order and initial critic): A - B in sample quality (a row for IS
    and one for FID, where both runs of every seed have it) and in MSE, and in how many seeds each is ahead on the
    front. Means over seeds can hide that one seed carries a gap; the count per seed cannot."""
    lines = []
    for a, b in study.compare:
        rows = []
        for variant in study.variants:
            cell = {(r.preset, r.lam, r.seed): evals.get(r.dir) for r in runs if r.variant == variant}
            for lam in dict.fromkeys(lam for (p, lam, _) in cell if p == a):
                pairs = []
                for seed in study.seeds:
                    ea, eb = cell.get((a, lam, seed)), cell.get((b, lam, seed))
                    if ea is None or eb is None or ea.mse is None or eb.mse is None:
                        continue
                    pairs.append((seed, ea, eb))
                if not pairs:
                    continue
                for score, higher, name, digits in ((_is, True, "IS", 3), (_fid, False, "FID", 2)):
                    # each sample score both runs of every seed have gets its own row: on CIFAR-10 the in-domain
                    # IS and Inception's FID can rank a pair differently, and neither hides the other
                    if not all(score(ea)[0] is not None and score(eb)[0] is not None for _, ea, eb in pairs):
                        continue
                    qa = {s: (score(ea)[0], ea.mse) for s, ea, _ in pairs}
                    qb = {s: (score(eb)[0], eb.mse) for s, _, eb in pairs}
                    if any(score(e)[1] == "in-domain" for _, ea, eb in pairs for e in (ea, eb)):
                        name = f"in-domain {name}"
                    won = [s for s in qa if _ahead(qa[s], qb[s], higher)]
                    lost = [s for s in qa if _ahead(qb[s], qa[s], higher)]
                    level = [s for s in qa if s not in won and s not in lost]
                    rows.append(f"| {variant} | {lam:g} | {len(pairs)} | "
                                f"{_signed([qa[s][0] - qb[s][0] for s in qa], digits)} {name} | "
                                f"{_signed([qa[s][1] - qb[s][1] for s in qa], 4)} | {_seeds(won)} | "
                                f"{_seeds(lost)} | {_seeds(level)} |")
        if rows:
            lines += ["", f"Seed by seed, {a} against {b} (the same seed for both; ahead on the front: a sample "
                      "score (IS: higher, FID: lower) at least as good as the other's at an MSE at most the other's, "
                      "one of the two strictly better):", "",
                      f"| variant | λ | seeds | quality, {a} − {b} | MSE, {a} − {b} | {a} ahead | {b} ahead | "
                      "neither |", "|---|---|---|---|---|---|---|---|", *rows]
    return lines


def summarise(study: Study, out: str | Path) -> str:
    """A markdown table (one row per variant, preset and lambda; seeds as mean ± std) from the runs' eval.json and
    learning curves, and one curves picture per preset with the variants overlaid; written to out/summary.md."""
    from .. import viz

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)  # a study no machine has run yet summarises as a table of blanks
    runs = study.runs(out)
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault((r.variant, r.preset, r.lam), []).append(r)
    evals = {r.dir: EvalResult.load(r.dir) for r in runs if (r.dir / "eval.json").is_file()}
    with_fid = any(_fid(e)[0] is not None for e in evals.values())
    # runs that scored a weight average (train.ema) keep the live weights' scores beside it
    with_live = any(e.get("live") for e in evals.values())
    with_kid = any(e.get("kid_mean") is not None for e in evals.values())
    header = ["variant", "preset", "λ", "runs evaluated", "IS", "MSE", *(["FID"] if with_fid else []),
              *(["KID"] if with_kid else []), *(["live IS", "live MSE"] if with_live else []),
              "best probe IS (epoch)", "last probe IS", "coverage H", "ambiguity", "steps", "epochs", "minutes"]
    rows = []
    for (variant, preset, lam), cell in groups.items():
        done = [evals[r.dir] for r in cell if r.dir in evals]
        # the probes of the weights that IS scores: the average's where the run kept one (train.ema); of the
        # evaluated runs where the cell has any (a seed still training, or stopped early, would mix its first
        # epochs into the columns of finished runs), else of the runs stopped part of the way
        curved = [r for r in cell if r.dir in evals] or cell
        probes = [[{**row, "probe_is": row.get("probe_is_ema", row.get("probe_is"))}
                   for row in viz.read_metrics(r.dir) if "probe_mse" in row] for r in curved]
        best = [max(p, key=lambda row: row.get("probe_is") or 0) for p in probes if p]
        last = [p[-1] for p in probes if p]
        scores = [_is(e) for e in done]
        is_cell = _cell([v for v, _ in scores if v is not None], 3)
        if is_cell and any(kind == "in-domain" for v, kind in scores if v is not None):
            is_cell += " (in-domain)"
        fids = [_fid(e) for e in done]
        fid_cell = _cell([v for v, _ in fids if v is not None], 2)
        if fid_cell and any(kind == "in-domain" for v, kind in fids if v is not None):
            fid_cell += " (in-domain)"
        rows.append([
            variant, preset, f"{lam:g}", f"{len(done)}/{len(cell)}", is_cell,
            _cell([e["mse"] for e in done], 4), *([fid_cell] if with_fid else []),
            *([_cell([e["kid_mean"] for e in done if e.get("kid_mean") is not None], 4)] if with_kid else []),
            *([_cell([e["live"][k] for e in done if (e.get("live") or {}).get(k) is not None], d)
               for k, d in (("is_mean", 3), ("mse", 4))] if with_live else []),
            ", ".join(f"{b['probe_is']:.2f} ({b['epoch']:.1f})" for b in best if b.get("probe_is") is not None),
            _cell([row["probe_is"] for row in last if row.get("probe_is") is not None], 2),
            _cell([e[k] for e in done for k in ("is_marginal_entropy", "is_marginal_entropy_indomain")
                   if e.get(k) is not None], 3),
            _cell([e[k] for e in done for k in ("is_conditional_entropy", "is_conditional_entropy_indomain")
                   if e.get(k) is not None], 3),
            _cell([float(e["steps"]) for e in done if "steps" in e], 0),
            _cell([row["epoch"] for row in last], 1),
            _cell([e["seconds"] / 60 for e in done if "seconds" in e], 1)])
    # a score no run has (IS where no classifier scores CelebA, the probes' IS there) is a column of blanks: left out
    keep = [i for i in range(len(header)) if i < 4 or any(row[i] for row in rows)]
    lines = ["| " + " | ".join(header[i] for i in keep) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(row[i] for i in keep) + " |" for row in rows]
    lines += paired(study, evals, runs)
    floors = sorted({(e["inception_images"], e["fid_real_halves"]) for e in evals.values()
                     if e.get("fid_real_halves") is not None and e.get("inception_images")})
    if floors:
        lines += ["", "FID and KID: Inception-v3 pool3 features of N samples against N test images. Two halves of "
                  "the test images against each other (N/2 a side) give FID " +
                  ", ".join(f"{fl:.2f} at N = {n:,}" for n, fl in floors) + ": what sampling alone adds."]
    for old in out.glob("curves-*.png"):  # a preset the study no longer runs must not keep its curves
        old.unlink()
    for preset in study.presets:
        mine = [r for r in runs if r.preset == preset and (r.dir / "metrics.jsonl").is_file()]
        if mine:
            labels = [f"{r.variant} λ={r.lam:g} s{r.seed}" for r in mine]
            viz.curves([r.dir for r in mine], out / f"curves-{preset}.png", labels)
    draw_panels(study, out)
    draw_fronts(study, out)
    text = f"# {study.title or study.name}\n\n{study.why}\n\n" + "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text
