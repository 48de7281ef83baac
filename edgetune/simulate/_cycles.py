"""Analytic cycle count of one layer on a systolic array, for the three dataflows SCALE-Sim models.

A layer is a matrix product: a window of K*K*Cin values (the reduction) for each of P output
pixels and each of Cout filters. The dataflow decides which two of (window, filters, pixels) are
spread over the array's rows and columns and which one streams through it in time:

====  ==============  ==============  ===========  =====================
flow  array rows      array columns   streamed     fill + drain per fold
====  ==============  ==============  ===========  =====================
ws    window          filters         pixels       2 R + C - 2
is    window          pixels          filters      2 R + C - 2
os    pixels          filters         window       R + C - 2
====  ==============  ==============  ===========  =====================

A layer larger than the array runs in ``ceil(rows needed / R) * ceil(columns needed / C)`` folds,
one after the other, each streaming its operand for ``T`` cycles plus the fold's fill and drain:
for the stationary flows R cycles to load the stationary operand, R - 1 to skew the stream in
and C - 1 to drain the last partial sums; output stationary has no preload. SCALE-Sim reports
the cycle its last output is written, so its count is ``folds * (T + fill) - 1``.

Checked against SCALE-Sim 3.0.0 (tests/simulate/test_cycles.py): exact for all 305 distinct
conv, depthwise and FC layers the npu-edgetpu-like profile simulated (64x64, ws, no stalls)
and for ws, os and is on 12x14 and 8x4 arrays. SCALE-Sim counts ``ceil((ifmap - filter +
stride) / stride)`` output rows of a padded input, one more than the convolution has when the
padded input does not divide by the stride; ``ofmap_rows`` follows it so the count is exact.
Stalls (an SRAM too small for the operands, a DRAM bandwidth limit) come on top.
"""

from __future__ import annotations

import math

from edgetune.simulate._topology import ArrayLayer

DATAFLOWS = ("ws", "os", "is")


def ofmap_rows(ifmap: int, kernel: int, stride: int) -> int:
    """Output rows (or columns) SCALE-Sim computes for a padded input: rounded up."""
    return math.ceil((ifmap - kernel + stride) / stride)


def fold_fill_cycles(rows: int, cols: int, dataflow: str) -> int:
    """Cycles a fold spends beside streaming its operand: preload, skew in, drain out."""
    if dataflow not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}; expected one of {', '.join(DATAFLOWS)}")
    return rows + cols - 2 + (rows if dataflow in ("ws", "is") else 0)


def stall_free_cycles(layer: ArrayLayer, rows: int, cols: int, dataflow: str) -> int:
    """Cycles of one ``layer`` on a ``rows`` x ``cols`` array with operands in SRAM (SCALE-Sim's count)."""
    fill = fold_fill_cycles(rows, cols, dataflow)
    pixels = ofmap_rows(layer.ifmap_h, layer.filter_h, layer.stride) * ofmap_rows(layer.ifmap_w, layer.filter_w, layer.stride)
    window = layer.filter_h * layer.filter_w * layer.channels
    on_rows, on_cols, streamed = {"ws": (window, layer.num_filter, pixels), "is": (window, pixels, layer.num_filter),
                                  "os": (pixels, layer.num_filter, window)}[dataflow]
    folds = math.ceil(on_rows / rows) * math.ceil(on_cols / cols)
    return folds * (streamed + fill) - 1
