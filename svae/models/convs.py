"""Conv2d and ConvTranspose2d that compute the same function by a faster route on CPU where oneDNN's kernel is slow.

oneDNN (PyTorch's CPU convolution) runs the paper networks' 32-512-channel layers at about half of this
2-core AVX2 CPU's fp32 peak, but two kinds of layer far below it (docs/speed.md has the measurements):

- thin layers: a 5x5 stride-2 conv with one or two input channels (MNIST's first encoder and critic convs) or a
  transposed conv with one or two output channels (MNIST's last decoder layer), at 1-3 GFLOP/s. Written on the
  2x2 space-to-depth of the image (the polyphase form) the same map is a 3x3 stride-1 conv with four times the
  channels, which runs at the wide layers' speed: forward + backward of MNIST's 1 -> 16 conv 2.6x faster, its
  64 -> 1 transposed conv 1.8x (one thread).
- layers on tiny maps: a conv whose output is at most 2x2 (CIFAR-10's last critic conv, 256 -> 512 on 128
  pairs, ran at 15 GFLOP/s) or a transposed conv from a map of at most 4x4 (CIFAR-10's first decoder deconv,
  512 -> 256). As one matrix multiply over im2col columns (unfold / fold) they ran 2.5-3x and 1.7x faster.
- the bias of an NHWC transposed conv: oneDNN's bias gradient there took 8.5 ms on MNIST's 64 -> 64 layer, where
  a sum takes 0.3, so the layer adds its bias apart ("bias_apart"; whole MNIST sVAE-r steps 1.7% faster).
Elsewhere the rewrites are slower (more taps, or im2col's memory traffic), so each layer picks its form from
its shapes at every call, on CPU only (cuDNN has no such gaps). Parameters and state_dict are nn.Conv2d's
and nn.ConvTranspose2d's: the form is how the layer computes, not what (tests/test_models_convs.py compares
values and gradients). `fast = False` on a module, or use_fast_convs(net, False), keeps the direct kernel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

THIN = 2               # at most this many image channels on the thin side: the polyphase form
CONV_GEMM_OUT = 4      # a conv with at most this many output positions (2x2): one matrix multiply
DECONV_GEMM_IN = 16    # a transposed conv from at most this many input positions (4x4): one matrix multiply


def conv_weight(w: torch.Tensor) -> torch.Tensor:
    """(out, in, 5, 5) stride-2 padding-2 kernel -> (out, 4 in, 3, 3) kernel on pixel_unshuffle(x, 2), padding 1.

    Tap a of the 5x5 kernel reads input row 2i + a - 2 = 2(i + p) + r with a = 2(p + 1) + r: phase r of the
    unshuffled input at offset p in {-1, 0, 1}. Padding the kernel to 6x6 with a zero row and column makes
    every (p, r) pair exist (a = 5 is the zero)."""
    out, cin = w.shape[:2]
    w6 = F.pad(w, (0, 1, 0, 1)).view(out, cin, 3, 2, 3, 2)  # (out, in, p, r, q, s)
    return w6.permute(0, 1, 3, 5, 2, 4).reshape(out, cin * 4, 3, 3)  # channel in*4 + 2r + s: pixel_unshuffle's order


def deconv_weight(w: torch.Tensor) -> torch.Tensor:
    """(in, out, 5, 5) stride-2 padding-2 output_padding-1 transposed kernel -> (4 out, in, 3, 3) kernel of a
    padding-1 conv whose output, pixel_shuffle(., 2), is the transposed conv's.

    Output row 2m + r collects tap a = 2d + r + 2 from input row m - d; as a correlation that is kernel
    index 1 - d, hence the flip."""
    cin, out = w.shape[:2]
    w6 = F.pad(w, (0, 1, 0, 1)).view(cin, out, 3, 2, 3, 2).flip(2, 4)  # (in, out, 1 - d, r, 1 - e, s)
    return w6.permute(1, 3, 5, 0, 2, 4).reshape(out * 4, cin, 3, 3)


def _layout(x: torch.Tensor, weight: torch.Tensor) -> torch.memory_format:
    """The layout the direct kernel would output: NHWC if the input or the weight is NHWC (as PyTorch's CPU conv
    decides), read from the strides, as is_contiguous() cannot tell NCHW from NHWC for one channel. A rewritten
    layer must hand on that layout, or every later layer converts (measured: the NHWC MNIST step ran 6%
    slower than with the direct kernels until it did)."""
    def nhwc(t: torch.Tensor) -> bool:
        return t.stride(1) == 1 and t.shape[-1] * t.shape[-2] > 1
    return torch.channels_last if nhwc(x) or nhwc(weight) else torch.contiguous_format


def _plain(m: nn.Module, x: torch.Tensor) -> bool:
    """True where only the direct kernel applies: off, not CPU, or options the rewrites do not cover."""
    return (not m.fast or x.device.type != "cpu" or x.dim() != 4 or m.groups != 1 or m.dilation != (1, 1)
            or m.padding_mode != "zeros" or isinstance(m.padding, str))


class Conv2d(nn.Conv2d):
    """nn.Conv2d; on CPU a thin 5x5 stride-2 one runs in its polyphase form and one onto a tiny map as a GEMM."""

    fast = True  # False (on the module, or use_fast_convs): always the direct kernel

    def out_hw(self, x: torch.Tensor) -> tuple[int, int]:
        (h, w), (k, kw), (s, sw), (p, pw) = x.shape[-2:], self.kernel_size, self.stride, self.padding
        return (h + 2 * p - k) // s + 1, (w + 2 * pw - kw) // sw + 1

    def form(self, x: torch.Tensor) -> str:
        if _plain(self, x):
            return "direct"
        h, w = x.shape[-2:]
        if (self.in_channels <= THIN and (*self.kernel_size, *self.stride, *self.padding) == (5, 5, 2, 2, 2, 2)
                and h % 2 == 0 and w % 2 == 0):
            return "polyphase"
        ho, wo = self.out_hw(x)
        return "gemm" if ho * wo <= CONV_GEMM_OUT else "direct"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        form = self.form(x)
        if form == "direct":
            return super().forward(x)
        weight = self.weight  # read once: under spectral_norm every read runs a power iteration
        layout = _layout(x, weight)
        if form == "polyphase":
            phases = F.pixel_unshuffle(x, 2).contiguous(memory_format=layout)
            return F.conv2d(phases, conv_weight(weight), self.bias, padding=1)
        b, (ho, wo) = len(x), self.out_hw(x)
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (B, in*k*k, positions)
        rows = cols.transpose(1, 2).reshape(b * ho * wo, -1)
        w = weight.reshape(self.out_channels, -1).t()
        y = rows @ w if self.bias is None else torch.addmm(self.bias, rows, w)  # (B*positions, out)
        return y.view(b, ho, wo, -1).permute(0, 3, 1, 2).contiguous(memory_format=layout)


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d; on CPU a thin 5x5 stride-2 one runs in its polyphase form, one from a tiny map as a
    GEMM + fold, and an NHWC one adds its bias apart."""

    fast = True

    def form(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> str:
        if _plain(self, x):
            return "direct"
        if (self.out_channels <= THIN and self.kernel_size == (5, 5) and self.stride == (2, 2)
                and self.padding == (2, 2) and self.output_padding == (1, 1)):
            return "polyphase"
        if x.shape[-2] * x.shape[-1] <= DECONV_GEMM_IN:
            return "gemm"
        if self.bias is not None and _layout(x, self.weight if weight is None else weight) == torch.channels_last:
            return "bias_apart"
        return "direct"

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or _plain(self, x):
            return super().forward(x, output_size)
        weight = self.weight  # read once (spectral_norm: one power iteration per call)
        form, layout = self.form(x, weight), _layout(x, weight)
        if form in ("direct", "bias_apart"):
            # oneDNN's bias gradient for an NHWC transposed conv is slow (MNIST's 64 -> 64 layer: 8.5 ms of its
            # 45 ms weight + bias gradient; a sum takes 0.3): the bias is added apart, in place (the kernel's
            # backward keeps x and the weight, not y), and autograd sums its gradient
            op = self._output_padding(x, None, self.stride, self.padding, self.kernel_size, 2, self.dilation)
            y = F.conv_transpose2d(x, weight, self.bias if form == "direct" else None, self.stride, self.padding, op,
                                   self.groups, self.dilation)
            return y if form == "direct" else y.add_(self.bias.to(y.dtype).view(1, -1, 1, 1))
        if form == "polyphase":
            bias = None if self.bias is None else self.bias.repeat_interleave(4)
            y = F.pixel_shuffle(F.conv2d(x, deconv_weight(weight), bias, padding=1), 2)
            return y.contiguous(memory_format=layout)
        # every input position spreads its in-vector through the kernel: (B*positions, in) @ (in, out*k*k),
        # then fold adds the overlapping k x k patches into the output map (col2im)
        b, cin, h, w = x.shape
        (k, kw), (s, sw), (p, pw), (op, opw) = self.kernel_size, self.stride, self.padding, self.output_padding
        out_hw = ((h - 1) * s - 2 * p + k + op, (w - 1) * sw - 2 * pw + kw + opw)
        cols = x.permute(0, 2, 3, 1).reshape(b * h * w, cin) @ weight.reshape(cin, -1)
        y = F.fold(cols.view(b, h * w, -1).transpose(1, 2), out_hw, (k, kw), padding=(p, pw), stride=(s, sw))
        if self.bias is not None:  # in y's dtype: under autocast the direct kernel's output stays bf16 / fp16
            y = y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        return y.contiguous(memory_format=layout)


def use_fast_convs(net: nn.Module, on: bool) -> None:
    """Let every Conv2d / ConvTranspose2d of this module pick its faster form (on) or keep the direct kernel."""
    for m in net.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d)):
            m.fast = on
