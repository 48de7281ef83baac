"""Arm Ethos-U: an int8 .tflite compiled by Vela, with Vela's performance estimate beside it."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgetune.errors import InfeasibleError
from edgetune.lowering._base import Artifact, CalibrationOptions, Lowering, LoweringContext, Variant
from edgetune.models import LoadedModel, sha256_of
from edgetune.simulate._cache import cached_simulation, simulation_key
from edgetune.simulate._estimate import SimulatedEstimate, write_estimate
from edgetune.simulate._tflite_ops import cortex_m_cycles_per_mac, tflite_ops
from edgetune.simulate._vela import PARSER_VERSION, EthosUConfig, parse_vela_output, run_vela, vela_version
from edgetune.targets import Target

DEFAULT_HOST = "cortex-m55"  # Vela's default system (Corstone-300 class) pairs the U55 with an M55


def ethos_u_config(target: Target) -> EthosUConfig:
    """The target's Ethos-U configuration; Vela's defaults for a target that describes none."""
    npu = target.npu
    if npu is None or npu.family != "ethos-u":
        return EthosUConfig()
    return EthosUConfig(npu.accelerator_config, npu.system_config, npu.memory_mode)


class VelaLowering(Lowering[CalibrationOptions]):
    """int8 .tflite -> Vela -> Ethos-U command stream in a .tflite, with cycles, memory and placement.

    A PyTorch model is first quantized through the ``tflite-int8`` lowering (so both meet in one
    place); without calibration data it is converted in float32, which Vela leaves entirely on
    the CPU (recorded in the details). Its options are those of ``tflite-int8``, which reads them.
    """

    name = "vela"
    input_format = "tflite"
    also_accepts = ("torch", "onnx")  # quantized through tflite-int8 first (ONNX converted to PyTorch)
    output_format = "vela-tflite"
    modules = ("ethosu", "ai_edge_litert")
    extra = "vela"
    # simulated devices: Vela quantizes a PyTorch model through tflite-int8 itself (or takes an int8 .tflite)
    variants = (Variant("vela", "int8"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        start = time.perf_counter()
        source, input_details = int8_tflite_input(model, target, workdir, context)
        config = ethos_u_config(target)
        version = vela_version()
        key = simulation_key(sha256_of(source), target, "vela", version, {"config": asdict(config), "parser": PARSER_VERSION})
        stem = source.stem

        def simulate(folder: Path) -> dict[str, Any]:
            return parse_vela_output(folder, stem, run_vela(source, config, folder))

        result, hit = cached_simulation("vela", key, workdir / "vela-output", simulate)
        compiled = workdir / f"{stem}_vela.tflite"
        shutil.copyfile(workdir / "vela-output" / compiled.name, compiled)
        functional = workdir / f"{stem}.functional.tflite"
        shutil.copyfile(source, functional)
        details = _timing(result, target, source)
        details.update(input_details)
        details["cache"] = "hit" if hit else "miss"
        _check_fit(details, target)
        estimate = SimulatedEstimate("vela", version, target.name, details.pop("latency_ms"), functional.name,
                                     "tflite", details)
        write_estimate(compiled, estimate)
        return Artifact(compiled, self.output_format, time.perf_counter() - start, estimate.to_details())


def int8_tflite_input(model: LoadedModel, target: Target, workdir: Path,
                      context: LoweringContext) -> tuple[Path, dict[str, Any]]:
    """The .tflite a simulated Arm device runs: the model's own, or one made through the TFLite lowerings
    (int8 with calibration data, else float32)."""
    if model.tflite_path is not None:
        return model.tflite_path, {"input": "the given .tflite"}
    from edgetune.lowering._tflite import TfliteInt8Lowering, TfliteLowering

    folder = workdir / "tflite"
    folder.mkdir(parents=True, exist_ok=True)
    if context.calibration is not None:
        artifact = TfliteInt8Lowering().apply(model, target, folder, context)
        return artifact.path, {"input": "int8 .tflite from the tflite-int8 lowering", **artifact.details}
    artifact = TfliteLowering().apply(model, target, folder, context)
    return artifact.path, {"input": "float32 .tflite (no calibration data): float operators, not int8"}


def _timing(result: dict[str, Any], target: Target, source: Path) -> dict[str, Any]:
    """Latency at the target's NPU clock, plus an estimate for operators that fall back to the CPU."""
    details = dict(result)
    npu_clock_mhz = (target.npu.clock_mhz if target.npu and target.npu.clock_mhz else None) or result["vela_clock_mhz"]
    details["npu_clock_mhz"] = npu_clock_mhz
    details["npu_latency_ms"] = result["cycles_total"] / (npu_clock_mhz * 1e3)
    cpu_ms = 0.0
    if result["cpu_ops"]:
        names = {op["name"] for op in result["cpu_fallback_ops"]}
        cpu_macs = sum(op.macs for op in tflite_ops(source) if op.output in names)
        core = target.cpu.model if "cortex-m" in target.cpu.model.lower() else DEFAULT_HOST
        cpu_clock_mhz = target.cpu.clock_mhz or npu_clock_mhz
        per_mac = cortex_m_cycles_per_mac(core)
        cpu_ms = cpu_macs * per_mac / (cpu_clock_mhz * 1e3)
        details["cpu_fallback"] = {"macs": cpu_macs, "core": core, "clock_mhz": cpu_clock_mhz,
                                   "cycles_per_mac": round(per_mac, 3), "latency_ms": cpu_ms,
                                   "source": "MACs x CMSIS-NN cycles/MAC (see edgetune/simulate/_tflite_ops.py)"}
    # a zero would break the relative statistics of a timing; one NPU cycle is the floor
    details["latency_ms"] = max(details["npu_latency_ms"] + cpu_ms, 1e-3 / npu_clock_mhz)
    return details


def _check_fit(details: dict[str, Any], target: Target) -> None:
    """InfeasibleError when Vela's memory use exceeds the target's SRAM or flash."""
    sram_kb, flash_kb = target.memory.sram_kb, target.memory.flash_kb
    needs_sram = details["sram_used_kb"]
    needs_flash = details["off_chip_flash_used_kb"] + details["on_chip_flash_used_kb"]
    if sram_kb is not None and needs_sram > sram_kb:
        raise InfeasibleError(f"does not fit {target.name}: needs {needs_sram:.1f} KB SRAM, the target has {sram_kb} KB")
    if flash_kb is not None and needs_flash > flash_kb:
        raise InfeasibleError(f"does not fit {target.name}: needs {needs_flash:.1f} KB flash, the target has {flash_kb} KB")
    ram_mb = target.memory.ram_mb
    if isinstance(ram_mb, int) and details["dram_used_kb"] > ram_mb * 1024:
        raise InfeasibleError(f"does not fit {target.name}: needs {details['dram_used_kb'] / 1024:.1f} MB DRAM, "
                              f"the target has {ram_mb} MB")
