"""An FPGA DSP-array overlay sized from the part's DSP and BRAM budgets, and its resource check.

Sizing: the largest square array whose MACs fit ``dsp_fraction`` of the DSP slices at
``macs_per_dsp`` int8 MACs per slice, and three double-buffered SRAMs (ifmap 40%, filter 40%,
ofmap 20%) in ``bram_fraction`` of the block RAM. A fixed design in the YAML (array or SRAM
size) is checked against the part instead of sized. The check after simulation compares the
DRAM bandwidth the busiest layer needs at the FPGA clock with what the board provides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgetune.targets._schema import FpgaSpec

SRAM_SPLIT = (0.4, 0.4, 0.2)  # ifmap, filter, ofmap


@dataclass(frozen=True)
class OverlayDesign:
    """The array and buffers of one overlay, with the part resources it takes."""

    rows: int
    cols: int
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    dsp_used: int
    bram_used_kb: int


def size_overlay(fpga: FpgaSpec) -> OverlayDesign:
    """The overlay for ``fpga``: sized from its budgets, or the fixed design its YAML names."""
    overlay = fpga.overlay
    if overlay.array_rows and overlay.array_cols:
        rows, cols = overlay.array_rows, overlay.array_cols
    else:
        macs = int(fpga.dsp_slices * overlay.dsp_fraction) * overlay.macs_per_dsp
        side = max(int(math.isqrt(macs)), 1)
        rows = overlay.array_rows or side
        cols = overlay.array_cols or max(macs // rows, 1)
    sram_kb = overlay.sram_kb or int(fpga.bram_kb * overlay.bram_fraction)
    ifmap_kb, filter_kb = (max(int(sram_kb * share), 1) for share in SRAM_SPLIT[:2])
    ofmap_kb = max(sram_kb - ifmap_kb - filter_kb, 1)
    return OverlayDesign(rows, cols, ifmap_kb, filter_kb, ofmap_kb,
                         dsp_used=math.ceil(rows * cols / overlay.macs_per_dsp),
                         bram_used_kb=ifmap_kb + filter_kb + ofmap_kb)


def resource_problems(design: OverlayDesign, fpga: FpgaSpec) -> list[str]:
    """Why ``design`` does not fit ``fpga`` (empty when it fits)."""
    problems = []
    if design.dsp_used > fpga.dsp_slices:
        problems.append(f"a {design.rows}x{design.cols} array needs {design.dsp_used} DSP slices "
                        f"({fpga.overlay.macs_per_dsp} MAC/slice), {fpga.part} has {fpga.dsp_slices}")
    if design.bram_used_kb > fpga.bram_kb:
        problems.append(f"the buffers need {design.bram_used_kb} KB of block RAM, {fpga.part} has {fpga.bram_kb} KB")
    return problems
