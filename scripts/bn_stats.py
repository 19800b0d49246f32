"""What a study's scores become with BatchNorm statistics per pathway (train.eval_bn_stats=pathway) at evaluation.

    python scripts/bn_stats.py PAGE.md --study NAME [--data-dir ../shared/data] [--force] [--no-analyse]

For every finished run of studies/NAME.yaml in runs/NAME/ that has its checkpoint, the run's evaluation is
repeated with the statistics re-estimated per pathway (svae/metrics/bn_stats.py: prior draws for the samples,
training images and their codes for the reconstructions) and with the running averages, and both are written
to the run's bn.json and its record in studies/records/NAME/. The table (mean ± std over seeds)
replaces the block between `<!-- bn-stats:NAME:start -->` and `<!-- bn-stats:NAME:end -->` of PAGE.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import code_gap  # noqa: E402  (the analyse-and-rewrite machinery of the code-gap blocks)
from code_gap import current  # noqa: E402
from svae.experiments.study import Study, _cell  # noqa: E402  (_cell: mean ± std)

KEYS = ("is_mean", "mse", "fid", "is_indomain_mean")  # what the block compares, where a run has it


def measure(model, data) -> dict:
    """bn.json: the run's evaluation (its own eval settings) with running and with per-pathway statistics."""
    from svae.metrics.bn_stats import scoring_models
    from svae.metrics.evaluate import evaluate

    t = model.cfg.train
    out = {}
    for bn in ("running", "pathway"):
        sampler, reconstructor = scoring_models(model, data, bn)
        scores = evaluate(sampler, data, t.eval_samples, t.eval_splits, inception_n=t.eval_inception,
                          reconstructor=reconstructor)
        out[bn] = {k: scores[k] for k in KEYS if scores.get(k) is not None}
    return out


def block(study: Study, out: Path, records: Path, img: Path, link: str) -> str:
    """One row per variant, preset and lambda: each score with the running averages and per pathway."""
    groups: dict[tuple, list[dict]] = {}
    for run, record in zip(study.runs(out), study.runs(records)):
        result = current(run, "bn.json") or current(record, "bn.json")
        if result is not None:
            groups.setdefault((run.variant, run.preset, run.lam), []).append(result)
    if not groups:
        return "No run of the study has been analysed yet (its checkpoints are needed once).\n"
    keys = [k for k in KEYS if any(k in r["running"] for results in groups.values() for r in results)]
    names = {"is_mean": "IS", "mse": "MSE", "fid": "FID", "is_indomain_mean": "in-domain IS"}
    header = ["variant", "preset", "λ", "runs"] + [f"{names[k]}: {bn}" for k in keys for bn in ("running", "pathway")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (variant, preset, lam), results in groups.items():
        cells = []
        for k in keys:
            digits = 4 if k == "mse" else 3 if k != "fid" else 2
            cells += [_cell([r[bn][k] for r in results if k in r[bn]], digits) for bn in ("running", "pathway")]
        lines.append("| " + " | ".join([variant, preset, f"{lam:g}", str(len(results)), *cells]) + " |")
    return "\n".join([f"Command: `python scripts/bn_stats.py PAGE --study {study.name}` (the runs' checkpoints are "
                      "needed once; their bn.json records keep the numbers). Running: the BatchNorm running "
                      "averages as trained (`train.eval_bn_stats=running`); pathway: statistics re-estimated on 50 "
                      "batches of 100 of each pathway's inputs (`train.eval_bn_stats=pathway`, the image presets' "
                      "evaluation since 2026-12-02); the same weights, samples and test images.", "", *lines]) + "\n"


def main() -> None:
    code_gap.main(__doc__.splitlines()[0], marker="bn-stats", file="bn.json", measure=measure, render=block)


if __name__ == "__main__":
    main()
