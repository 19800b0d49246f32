"""How the networks compute, never what: NHWC kept through backward, in-place activations, split batches.

The trainer switches them (train.channels_last, train.inplace_acts, train.batch_decoder); `svae bench`'s
reference runs without them. The conv forms (train.fast_convs) live in convs.py; docs/speed.md has the figures.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


def is_nhwc(t: torch.Tensor) -> bool:
    """A 4-d tensor laid out NHWC, read from the strides (is_contiguous cannot tell the layouts apart for one
    channel or a 1x1 map, where they are the same)."""
    return t.dim() == 4 and t.stride(1) == 1 and t.shape[1] > 1 and t.shape[-1] * t.shape[-2] > 1


class _FlattenNHWC(torch.autograd.Function):
    """flatten(1) of an NHWC tensor (a copy into (C, H, W) order); the gradient goes back NHWC."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return x.flatten(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last)


class Flatten(nn.Flatten):
    """nn.Flatten (all but the batch dim) whose gradient keeps the input's layout.

    Under channels_last a conv stack's output is NHWC, and flattening it for the Linear that follows copies it to
    (C, H, W) order; autograd would hand the gradient back NCHW, and the ReLU and BatchNorm before the flatten then
    run their backward on one NHWC and one NCHW tensor, 5-20x slower than on two alike (threshold_backward on
    (200, 128, 4, 4): 2.7 ms against 0.1, one thread)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.start_dim, self.end_dim) == (1, -1) and x.requires_grad and is_nhwc(x):
            return _FlattenNHWC.apply(x)
        return super().forward(x)


class Unflatten(nn.Unflatten):
    """nn.Unflatten to a (C, H, W) map; NHWC under channels_last (use_channels_last), like the convs it feeds,
    so that the BatchNorm and ReLU between them see one layout forward and backward."""

    channels_last = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y.contiguous(memory_format=torch.channels_last) if self.channels_last and y.dim() == 4 else y


def use_channels_last(net: nn.Module, on: bool) -> nn.Module:
    """Conv weights NHWC (on) or NCHW, and every Unflatten of the net producing that layout."""
    net.to(memory_format=torch.channels_last if on else torch.contiguous_format)
    for m in net.modules():
        if isinstance(m, Unflatten):
            m.channels_last = on
    return net


_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)
_FRESH = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.BatchNorm2d)


def use_inplace_acts(net: nn.Module, on: bool) -> nn.Module:
    """ReLU / leaky ReLU write over their input (on) where that input is the fresh output of the layer just before
    them in an nn.Sequential (Linear, conv, BatchNorm), none of which needs its output for backward; an activation
    elsewhere (first in a Sequential, or after a layer that may pass on its input) is left as it is.
    In place saves a new tensor and a pass over memory per activation."""
    for seq in net.modules():
        if isinstance(seq, nn.Sequential):
            for before, act in zip(seq[:-1], seq[1:]):
                if isinstance(act, _ACTIVATIONS) and isinstance(before, _FRESH):
                    act.inplace = on
    return net


class _SplitBatchNorm:
    """BatchNorm that, while split_batch says its batch holds `splits` batches, normalises each by its own
    statistics and updates the running averages once per batch, in order: the outputs, gradients and buffers of
    that many separate calls, inside one call of the layers around it."""

    splits = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.splits == 1 or not self.training:  # eval: running statistics, the same function for every sample
            return super().forward(x)
        norm = super().forward  # (zero-argument super() does not work inside the comprehension)
        return torch.cat([norm(part) for part in x.chunk(self.splits)])


class BatchNorm1d(_SplitBatchNorm, nn.BatchNorm1d):
    """nn.BatchNorm1d that split_batch can make normalise several batches apart."""


class BatchNorm2d(_SplitBatchNorm, nn.BatchNorm2d):
    """nn.BatchNorm2d that split_batch can make normalise several batches apart."""


def can_split_batch(net: nn.Module) -> bool:
    """True if every BatchNorm of net is a split one: the other layers of the paper networks act on each sample
    alone, so that under split_batch one call on a concatenation of batches computes what separate calls would."""
    return all(isinstance(m, _SplitBatchNorm) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


@contextlib.contextmanager
def split_batch(net: nn.Module, splits: int):
    """Within the block, net's input holds `splits` equal batches, one after the other: every module of net that
    declares a `splits` attribute (the split BatchNorms, blocks.Decoder's noise) treats them apart."""
    parts = [m for m in net.modules() if hasattr(type(m), "splits")]
    for m in parts:
        m.splits = splits
    try:
        yield net
    finally:
        for m in parts:
            m.splits = 1
