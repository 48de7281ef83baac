"""The figures of a simulated device worth a column of their own, from a candidate's build details.

MCU (TFLite Micro): arena against SRAM, model flash against flash, cycles -- ESTIMATED (the arena
is TFLM's host build, the cycles MACs x CMSIS-NN cycles/MAC). Ethos-U (Vela): NPU vs CPU operators,
SRAM and flash, cycles -- SIMULATED. Systolic NPU / FPGA overlay (SCALE-Sim): cycles, utilisation,
energy, and DSP/BRAM use on an FPGA -- SIMULATED. Every view (table, --json, report.html,
summary.txt) shows the same ``DeviceFigures``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

SIMULATED, ESTIMATED = "SIMULATED", "ESTIMATED"


@dataclass(frozen=True)
class DeviceFigures:
    """One candidate's device figures: what kind of device, how they were obtained, the numbers, one line of text."""

    kind: str  # mcu | ethos-u | systolic | fpga
    label: str  # SIMULATED | ESTIMATED
    values: dict[str, Any]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _of(used: float, capacity: Optional[float], unit: str) -> str:
    return f"{used:.1f} / {capacity:g} {unit}" if capacity else f"{used:.1f} {unit}"


def _mcu(d: Mapping[str, Any], sram_kb: Optional[float], flash_kb: Optional[float]) -> DeviceFigures:
    values = {"arena_kb": d["arena_kb"], "sram_kb": sram_kb, "model_flash_kb": d["flash_kb"], "flash_kb": flash_kb,
              "cycles": d.get("cycles")}
    text = (f"arena {_of(d['arena_kb'], sram_kb, 'KB SRAM')}, flash {_of(d['flash_kb'], flash_kb, 'KB')}"
            + (f", {d['cycles']:,} cycles" if d.get("cycles") is not None else ""))
    return DeviceFigures("mcu", ESTIMATED, values, f"{ESTIMATED}: {text}")


def _ethos_u(d: Mapping[str, Any], sram_kb: Optional[float], flash_kb: Optional[float]) -> DeviceFigures:
    flash_used = float(d.get("off_chip_flash_used_kb", 0.0)) + float(d.get("on_chip_flash_used_kb", 0.0))
    values = {"npu_ops": d["npu_ops"], "cpu_ops": d["cpu_ops"], "sram_used_kb": d["sram_used_kb"], "sram_kb": sram_kb,
              "flash_used_kb": flash_used, "flash_kb": flash_kb, "cycles_npu": d.get("cycles_npu"),
              "cycles_total": d.get("cycles_total")}
    text = (f"NPU {d['npu_ops']} / CPU {d['cpu_ops']} ops, SRAM {_of(d['sram_used_kb'], sram_kb, 'KB')}, "
            f"flash {_of(flash_used, flash_kb, 'KB')}, {int(d.get('cycles_total', 0)):,} cycles")
    return DeviceFigures("ethos-u", SIMULATED, values, f"{SIMULATED}: {text}")


def _systolic(d: Mapping[str, Any]) -> DeviceFigures:
    fpga = "dsp_used" in d
    values = {"cycles": d["cycles"], "utilization_pct": d["utilization_pct"], "energy_uj": d.get("energy_uj")}
    parts = [f"{int(d['cycles']):,} cycles", f"util {d['utilization_pct']:.1f}%"]
    if d.get("energy_uj") is not None:
        parts.append(f"{d['energy_uj']:.3g} uJ")
    if fpga:
        values.update({key: d.get(key) for key in ("dsp_used", "dsp_available", "bram_used_kb", "bram_available_kb")})
        parts.append(f"DSP {d['dsp_used']} / {d['dsp_available']}")
        parts.append(f"BRAM {_of(float(d['bram_used_kb']), d.get('bram_available_kb'), 'KB')}")
    return DeviceFigures("fpga" if fpga else "systolic", SIMULATED, values, f"{SIMULATED}: {', '.join(parts)}")


def device_figures(details: Optional[Mapping[str, Any]], memory: Optional[Mapping[str, Any]] = None) -> Optional[DeviceFigures]:
    """The device figures in a candidate's build ``details`` (None for a real device), with the target's ``memory``
    (its ``sram_kb`` and ``flash_kb``) to set them against."""
    if not details:
        return None
    memory = memory or {}
    sram_kb, flash_kb = memory.get("sram_kb"), memory.get("flash_kb")
    simulator = details.get("simulator")
    try:
        if simulator == "tflite-micro":
            return _mcu(details, sram_kb, flash_kb)
        if simulator == "vela":
            return _ethos_u(details, sram_kb, flash_kb)
        if simulator == "scalesim":
            return _systolic(details)
    except (KeyError, TypeError, ValueError):  # details of an older manifest: no figures rather than a crash
        return None
    return None
