"""From a target to a simulated array, and from SCALE-Sim's per-layer reports to network figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from edgetune.errors import InfeasibleError
from edgetune.simulate._fpga import resource_problems, size_overlay
from edgetune.simulate._scalesim import EXAMPLE_ARRAY, ArrayConfig
from edgetune.simulate._topology import SystolicLayers
from edgetune.targets import Target
from edgetune.targets._schema import EnergySpec

DEFAULT_CLOCK_MHZ = 200.0
PER_LAYER_KEEP = 400  # rows kept in the artifact details (a manifest stays readable)


@dataclass(frozen=True)
class SimulatedArray:
    """The array a target stands for, its clock, energy figures and where the description came from."""

    config: ArrayConfig
    clock_mhz: float
    energy: Optional[EnergySpec]
    origin: str
    design: dict[str, Any]


def array_for_target(target: Target) -> SimulatedArray:
    """The systolic array of an NPU target, the overlay of an FPGA target (InfeasibleError if it does not fit),
    or SCALE-Sim's 32x32 example array for a target that describes neither."""
    npu, fpga = target.npu, target.fpga
    if fpga is not None:
        design = size_overlay(fpga)
        problems = resource_problems(design, fpga)
        if problems:
            raise InfeasibleError(f"overlay does not fit {target.name}: {'; '.join(problems)}")
        config = ArrayConfig(design.rows, design.cols, fpga.overlay.dataflow, design.ifmap_kb, design.filter_kb,
                             design.ofmap_kb)
        return SimulatedArray(config, fpga.clock_mhz, fpga.overlay.energy, f"overlay sized for {fpga.part}",
                              {"dsp_used": design.dsp_used, "dsp_available": fpga.dsp_slices,
                               "bram_used_kb": design.bram_used_kb, "bram_available_kb": fpga.bram_kb})
    if npu is not None and npu.systolic is not None:
        s = npu.systolic
        config = ArrayConfig(s.array_rows, s.array_cols, s.dataflow, s.ifmap_sram_kb, s.filter_sram_kb,
                             s.ofmap_sram_kb, s.dram_words_per_cycle)
        return SimulatedArray(config, npu.clock_mhz or DEFAULT_CLOCK_MHZ, s.energy, f"{target.name} array", {})
    return SimulatedArray(EXAMPLE_ARRAY, DEFAULT_CLOCK_MHZ, None,
                          f"SCALE-Sim's 32x32 example array ({target.name} describes no array)", {})


def summarize(network: SystolicLayers, unique_rows: Sequence[dict[str, float]], array: SimulatedArray) -> dict[str, Any]:
    """Network totals (cycles, latency, utilisation, traffic, energy) and a per-layer breakdown."""
    by_shape = dict(zip(network.unique_shapes(), unique_rows))
    keys = ("cycles", "cycles_incl_prefetch", "stall_cycles", "sram_reads", "sram_writes", "dram_reads", "dram_writes")
    totals = dict.fromkeys(keys, 0.0)
    per_layer = []
    peak_bw = (0.0, "")
    for layer in network.layers:
        row = by_shape[layer.shape]
        for key in keys:
            totals[key] += row[key] * layer.repeat
        bytes_per_cycle = (row["dram_reads"] + row["dram_writes"]) / max(row["cycles"], 1.0)
        if bytes_per_cycle > peak_bw[0]:
            peak_bw = (bytes_per_cycle, layer.node)
        per_layer.append({"node": layer.node, "kind": layer.kind, "repeat": layer.repeat, "macs": layer.macs,
                          "cycles": int(row["cycles"] * layer.repeat),
                          "util_pct": round(row["overall_util_pct"], 2),
                          "mapping_efficiency_pct": round(row["mapping_efficiency_pct"], 2)})
    config, clock_mhz = array.config, array.clock_mhz
    macs = sum(layer.macs for layer in network.layers)
    # SCALE-Sim's "Total Cycles" (compute + stalls) per layer; "incl. prefetch" adds each layer's
    # initial buffer fill as if no layer's fill overlapped the previous layer's compute (an upper bound)
    cycles = totals["cycles"]
    latency_ms = cycles / (clock_mhz * 1e3)
    sram_bytes = totals["sram_reads"] + totals["sram_writes"]
    dram_bytes = totals["dram_reads"] + totals["dram_writes"]
    result: dict[str, Any] = {
        "array": f"{config.rows}x{config.cols} {config.dataflow}", "array_origin": array.origin,
        "sram_kb": {"ifmap": config.ifmap_kb, "filter": config.filter_kb, "ofmap": config.ofmap_kb},
        "clock_mhz": clock_mhz, "latency_ms": latency_ms,
        "cycles": int(cycles), "cycles_incl_prefetch": int(totals["cycles_incl_prefetch"]),
        "latency_incl_prefetch_ms": totals["cycles_incl_prefetch"] / (clock_mhz * 1e3),
        "stall_cycles": int(totals["stall_cycles"]),
        "macs": macs, "utilization_pct": 100.0 * macs / max(cycles * config.rows * config.cols, 1.0),
        "sram_read_bytes": int(totals["sram_reads"]), "sram_write_bytes": int(totals["sram_writes"]),
        "dram_read_bytes": int(totals["dram_reads"]), "dram_write_bytes": int(totals["dram_writes"]),
        "dram_avg_gbps": dram_bytes / (latency_ms * 1e6) if latency_ms > 0 else 0.0,
        "dram_peak_layer_gbps": peak_bw[0] * clock_mhz / 1e3, "dram_peak_layer": peak_bw[1],
        "array_layers": len(network.layers), "distinct_layers_simulated": len(unique_rows),
        "host_ops_not_simulated": network.skipped,
        "per_layer": per_layer[:PER_LAYER_KEEP],
        **array.design,
    }
    if array.energy is not None:
        e = array.energy
        picojoules = macs * e.mac_pj + sram_bytes * e.sram_pj_per_byte + dram_bytes * e.dram_pj_per_byte
        result["energy_uj"] = picojoules / 1e6
        result["energy_breakdown_uj"] = {"mac": macs * e.mac_pj / 1e6, "sram": sram_bytes * e.sram_pj_per_byte / 1e6,
                                         "dram": dram_bytes * e.dram_pj_per_byte / 1e6}
        result["energy_source"] = e.source
    return result


def check_bandwidth(result: dict[str, Any], target: Target) -> None:
    """InfeasibleError when the busiest layer needs more DRAM bandwidth than the board provides."""
    available = target.memory.bandwidth_gbps
    if available is not None and result["dram_peak_layer_gbps"] > available:
        raise InfeasibleError(
            f"does not fit {target.name}: layer '{result['dram_peak_layer']}' needs "
            f"{result['dram_peak_layer_gbps']:.2f} GB/s of DRAM bandwidth at {result['clock_mhz']:g} MHz, "
            f"the board provides {available:g} GB/s")
