"""Copy a trained classifier into the package (svae/metrics/weights/) with fp16 weights (float32 where halving moves
a score), check that its test accuracy and real-data IS do not change, write its sidecar, and print its line for
classifier.SHIPPED.

    svae classifier train --domain mnist --data-dir ../shared/data --threads 1   # ~/.cache/svae/classifiers/
    python scripts/ship_classifier.py --domain mnist --data-dir ../shared/data
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from svae.data.images import load_images
from svae.files import file_digest
from svae.metrics import classifier as clf
from svae.metrics.scores import inception_score

# Halving the parameters halves the file; BatchNorm statistics and the input normalisation stay float32
# (they are small, and the normalisation's constants would shift by fp16 rounding).
STORAGE = "parameters fp16, buffers fp32"


def half_state(net: clf.Classifier) -> dict[str, torch.Tensor]:
    params = {name for name, _ in net.named_parameters()}
    return {k: v.half() if k in params else v for k, v in net.state_dict().items()}


def scores(net: torch.nn.Module, x01: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    probs = clf.predict(net, x01)
    is_mean, is_std = inception_score(probs, splits=10)
    return {"test_accuracy": float((probs.argmax(1) == y).double().mean()), "real_test_is_mean": is_mean,
            "real_test_is_std": is_std}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domain", required=True, choices=clf.DOMAINS)
    p.add_argument("--data-dir", help="folder with the dataset (default: svae's default data folder)")
    p.add_argument("--from", dest="src", help="weights file (default: the user cache's)")
    a = p.parse_args()
    src = clf.weights_path(a.domain, a.src)
    full = clf.load(a.domain, src)
    target = clf.SHIPPED_DIR / clf.WEIGHTS[a.domain]
    target.parent.mkdir(parents=True, exist_ok=True)
    split = load_images(a.domain, a.data_dir)
    x01, y = split.x_test.float() / 255.0, split.y_test
    before = scores(full.net, x01, y)
    storage = STORAGE
    for state in (half_state(full.net), full.net.state_dict()):
        torch.save(state, target)
        copy = clf.Classifier(a.domain)
        copy.load_state_dict(torch.load(target, weights_only=True))
        after = scores(copy.eval(), x01, y)
        print(f"fp32 {src}: {before}\n{storage} {target}: {after}", file=sys.stderr)
        if all(round(before[k], 3) == round(after[k], 3) for k in before):
            break
        # halving moved a score at the third decimal (a few test images changed class): ship the float32 file
        storage = "float32, as trained (fp16 parameters moved a score at the third decimal)"
    else:
        target.unlink()
        print("the shipped copy scores differently to 3 decimals; nothing shipped", file=sys.stderr)
        return 1
    info = {k: v for k, v in full.info.items() if k not in ("file", "origin", "sha256", "data_dir", "weights")}
    info.update(after)
    info.update({"storage": storage, "trained_file_sha256": file_digest(src), "n_test": len(y),
                 "command": f"svae classifier train --domain {a.domain} --data-dir DIR --epochs {info.get('epochs')} "
                            f"--seed {info.get('seed')}"})
    target.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB) and its sidecar; add to classifier.SHIPPED:",
          file=sys.stderr)
    print(f'    "{a.domain}": "{file_digest(target)}",')
    return 0


if __name__ == "__main__":
    sys.exit(main())
