"""Regenerate the speed tables of docs/speed.md: `svae bench --json` for every preset (or, with --ablation, the
speed options one by one on the MNIST and CIFAR-10 sVAE-r presets), one process at a time."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "speed.md"
TEMPLATES = ROOT / "scripts" / "templates"  # the tables' prose, with $name placeholders (string.Template)
# (timed steps, warmup steps, images evaluated) per dataset: the whole table takes ~40 minutes at one thread,
# CelebA 64x64 most of it. MNIST times 30 steps: its ratio's median over 10 pairs moved by +-0.05 between runs.
STEPS = {"toy": (20, 2, 1000), "mnist": (30, 2, 200), "cifar10": (6, 1, 200), "celeba": (1, 1, 100)}
# --ablation: the presets' settings, then each speed option switched alone, against the same reference step;
# a variant naming a key alone flips the preset's value of it (MNIST trains NHWC with one decoder call, CIFAR-10
# NCHW with two)
ABLATION = {"the preset's settings": [],
            "two draws per batch (train.reuse_forward=false)": ["--set", "train.reuse_forward=false"],
            "every conv by its direct kernel (train.fast_convs=false)": ["--set", "train.fast_convs=false"],
            "activations into new tensors (train.inplace_acts=false)": ["--set", "train.inplace_acts=false"],
            "train.batch_decoder flipped": "batch_decoder",
            "train.channels_last flipped (the other layout)": "channels_last",
            "bf16 autocast": ["--set", "train.precision=bf16"]}
# emulated bf16 on a CPU without AVX-512 BF16 / AMX: a CIFAR-10 bench of it did not finish in 7 minutes, and an
# MNIST step takes ~8 s, so it is timed over 3 steps
CPU_ABLATION_SKIP = {"cifar10-svae-r": {"bf16 autocast"}}
ABLATION_STEPS = {"bf16 autocast": 3}


def template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text())


def variant(preset: str, label: str) -> list[str]:
    """The --set arguments of an ablation variant of preset."""
    if isinstance(ABLATION[label], list):
        return ABLATION[label]
    from svae.presets import get_preset
    key = ABLATION[label]
    return ["--set", f"train.{key}={str(not getattr(get_preset(preset).train, key)).lower()}"]


def run(preset: str, device: str, threads: int, extra: list[str] | None = None, steps: int | None = None) -> dict:
    data = preset.split("-")[0]
    default_steps, warmup, eval_n = STEPS[data]
    steps = steps or default_steps
    cmd = [sys.executable, "-m", "svae", "bench", "--preset", preset, "--device", device, "--json",
           "--steps", str(steps), "--warmup", str(warmup), "--eval-n", str(eval_n), "--threads", str(threads),
           *(extra or [])]
    print(" ".join(cmd[2:]), file=sys.stderr, flush=True)
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def measured(m: dict) -> dict:
    """The machine line's values: date, GPU or CPU model, threads, torch."""
    return {"date": m["date"], "machine": m.get("gpu") or m.get("cpu_model") or m["cpu"], "threads": m["threads"],
            "torch": m["torch"]}


def table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.2f}x"
        ref = "-" if r.get("reference_imgs_per_s") is None else f"{r['reference_imgs_per_s']:.1f}"
        opts = " (channels_last)" if r["channels_last"] else ""
        body.append(f"| {r['preset']}{opts} | {r['device']} | {r['imgs_per_s']:.1f} | {ref} | {ratio} | "
                    f"{r['gflop_per_step']:.2f} | {r['gflops_per_s']:.1f} | {r['peak_mem_mb']:.0f} | "
                    f"{r['eval_seconds_per_10k']:.0f} | {r['steps']} |")
    return template("speed-table.md").substitute(measured(rows[0]["machine"]), rows="\n".join(body))


def ablation_table(rows: list[tuple[str, dict]], command: str) -> str:
    body = "\n".join(
        f"| {r['preset']} | {label} | {'NHWC' if r['channels_last'] else 'NCHW'} | "
        f"{'one' if r.get('batch_decoder') else 'two'} | {1000 * r['step_s']:.0f} | "
        f"{1000 * r['critic_s']:.0f} | {1000 * r['gen_s']:.0f} | {r['ratio']:.2f}x | {r['gflop_per_step']:.2f} | "
        f"{r['gflops_per_s']:.1f} | {r['steps']} |" for label, r in rows)
    return template("speed-ablation.md").substitute(measured(rows[0][1]["machine"]), command=command, rows=body)


def target_lines(rows: list[dict], target: float = 1.5) -> str:
    """The issue's target (MNIST and CIFAR-10 sVAE-r at >= 1.5x the reference), computed from the rows: the ratio,
    its range over the timed pairs, and how much of it the FLOPs alone account for."""
    out = []
    for r in rows:
        if r["preset"] not in ("mnist-svae-r", "cifar10-svae-r") or r.get("ratio") is None:
            continue
        flop_ratio = r["reference_gflop_per_step"] / r["gflop_per_step"]
        ref_rate = r["reference_gflop_per_step"] / r["reference_step_s"]
        verdict = "met" if r["ratio"] >= target else f"missed by {target - r['ratio']:.2f}"
        out.append(template("speed-target.md").substitute(
            preset=r["preset"], layout=" (channels_last)" if r["channels_last"] else "", ratio=f"{r['ratio']:.2f}",
            ratio_min=f"{r['ratio_min']:.2f}", ratio_max=f"{r['ratio_max']:.2f}", target=f"{target:g}",
            verdict=verdict, gflop=f"{r['gflop_per_step']:.1f}", reference_gflop=f"{r['reference_gflop_per_step']:.1f}",
            flop_ratio=f"{flop_ratio:.2f}", gflops_per_s=f"{r['gflops_per_s']:.0f}",
            reference_gflops_per_s=f"{ref_rate:.0f}"))
    return "".join(out)


def write(marker: str, text_: str) -> None:
    text = DOC.read_text()
    new = f"<!-- {marker}:start -->\n{text_}<!-- {marker}:end -->"
    pattern = re.compile(f"<!-- {marker}:start -->.*?<!-- {marker}:end -->", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC} has no <!-- {marker}:start --> ... end markers")
    DOC.write_text(pattern.sub(lambda _: new, text))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--presets", help="comma-separated (default: every preset)")
    p.add_argument("--ablation", action="store_true", help="the speed options on mnist/cifar10 sVAE-r instead")
    p.add_argument("--json-out", help="also write the raw figures here (default: docs/speed-bench[-ablation].json)")
    p.add_argument("--from-json", action="store_true", help="measure nothing: rewrite the doc's tables from the JSON")
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from svae.presets import preset_names

    if a.ablation:
        presets = a.presets.split(",") if a.presets else ["mnist-svae-r", "cifar10-svae-r"]
        path = Path(a.json_out or ROOT / "docs" / "speed-bench-ablation.json")
        if a.from_json:
            rows = [(r.pop("variant"), r) for r in json.loads(path.read_text())]
        else:
            rows = [(label, run(preset, a.device, a.threads, variant(preset, label), ABLATION_STEPS.get(label)))
                    for preset in presets for label in ABLATION
                    if not (a.device == "cpu" and label in CPU_ABLATION_SKIP.get(preset, ()))]
            path.write_text(json.dumps([{"variant": label, **r} for label, r in rows], indent=1) + "\n")
        command = "python scripts/bench_table.py --ablation" + (f" --presets {a.presets}" if a.presets else "")
        write(f"bench-ablation:{a.device.split(':')[0]}", ablation_table(rows, command))
        print(ablation_table(rows, command))
        return

    names = a.presets.split(",") if a.presets else preset_names()
    path = Path(a.json_out or ROOT / "docs" / "speed-bench.json")
    if a.from_json:
        rows = json.loads(path.read_text())
    else:
        rows = [run(n, a.device, a.threads) for n in names]
        path.write_text(json.dumps(rows, indent=1) + "\n")
    write(f"bench-table:{a.device.split(':')[0]}", table(rows))
    write(f"bench-target:{a.device.split(':')[0]}", target_lines(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
