"""Kernels a profile has no regressor for: estimated, never left out, and marked as estimates.

A profile taken before a kind was profiled (the shipped profiles predate Mul, scale, shuffle, Slice,
Pad, Softmax) or an operator no kind describes ("other") still costs time. Such a kernel is costed
as the nearest kind the profile *did* measure, on the same shapes: a Mul as an Add of two tensors, a
squeeze-excite scale as a per-channel BatchNormalization, a shuffle, Slice or Pad as the copy a ReLU
of that size costs (read and write every element), a Softmax as a Sigmoid. With none of those in the
profile, the bytes it moves at a conservative copy bandwidth. The prediction lists every estimated
kernel with how it was estimated and its share of the total.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np

from edgetune.predict._fusion import Kernel
from edgetune.predict._hardware import ProfileHardware
from edgetune.predict._regress import KindModel

# per kind: the measured kinds that cost most like it, nearest first
STAND_INS: dict[str, tuple[str, ...]] = {
    "mul": ("add", "bn", "relu"), "scale": ("bn", "add", "relu"), "softmax": ("sigmoid", "hswish", "relu"),
    "hsigmoid": ("hswish", "relu6", "relu"), "sigmoid": ("hswish", "relu"),
    "swish": ("hswish", "sigmoid", "relu"), "hswish": ("relu6", "relu"),
    "relu6": ("relu",), "relu": ("relu6", "bn"), "bn": ("relu", "add"), "add": ("mul", "bn", "relu"),
    "transpose": ("relu", "bn"), "slice": ("relu", "bn"), "pad": ("relu", "bn"), "concat": ("relu", "bn"),
    "resize": ("relu", "bn"), "other": ("relu", "bn", "add"),
    "maxpool": ("avgpool",), "avgpool": ("maxpool",), "gap": ("avgpool",),
}
# Bytes moved over this, when the profile measured no elementwise kind at all: a slow single core's
# copy bandwidth, so such an estimate errs high rather than hiding work.
ASSUMED_COPY_GB_S = 4.0
ESTIMATE_REL_RMSE = 0.5  # the interval an estimate gets: it is not a measured kind


def _as_kind(kernel: Kernel, kind: str) -> Kernel:
    """The kernel's head re-labelled ``kind`` on the same shapes (two-input kinds keep two inputs)."""
    head = kernel.head
    inputs = head.inputs if kind in ("add", "mul") else head.inputs[:1]
    if kind in ("add", "mul") and len(inputs) == 1:
        inputs = (inputs[0], inputs[0])
    if kind not in ("maxpool", "avgpool", "gap") and head.kind not in ("slice", "pad", "resize", "concat"):
        head = replace(head, cout=head.cin, hout=head.hin, wout=head.win)  # elementwise: out = in
    return Kernel(replace(head, kind=kind, inputs=inputs))


def copy_ms(kernel: Kernel) -> float:
    """Reading every input element and writing every output element (fp32) at ASSUMED_COPY_GB_S."""
    head = kernel.head
    moved = head.in_elems * max(len(head.inputs), 1) + kernel.tail.out_elems
    return moved * 4 / (ASSUMED_COPY_GB_S * 1e9) * 1e3


def estimate(kernels: Sequence[Kernel], models: Mapping[str, KindModel],
             hardware: ProfileHardware) -> list[tuple[float, str]]:
    """(ms, how) per kernel, batched per stand-in kind."""
    plan: dict[str, list[int]] = {}
    out: list[tuple[float, str]] = [(0.0, "")] * len(kernels)
    for i, kernel in enumerate(kernels):
        stand_in = next((k for k in STAND_INS.get(kernel.head.kind, ()) if k in models), None)
        if stand_in is None:
            out[i] = (copy_ms(kernel), f"bytes moved at an assumed {ASSUMED_COPY_GB_S:g} GB/s (no similar kind profiled)")
        else:
            plan.setdefault(stand_in, []).append(i)
    for stand_in, items in plan.items():
        rows = np.array([hardware.features(_as_kind(kernels[i], stand_in)) for i in items])
        for i, value in zip(items, models[stand_in].predict(rows)):
            out[i] = (float(value), f"as a {stand_in} kernel of its shape (nearest profiled kind)")
    return out
