"""Cortex-M MCU: an int8 .tflite for TensorFlow Lite Micro, with its arena, flash and a cycle estimate."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from edgetune.errors import InfeasibleError
from edgetune.lowering._base import Artifact, CalibrationOptions, Lowering, LoweringContext, Variant
from edgetune.lowering._vela import int8_tflite_input
from edgetune.models import LoadedModel, sha256_of
from edgetune.simulate._cache import cached_simulation, simulation_key
from edgetune.simulate._estimate import SimulatedEstimate, write_estimate
from edgetune.simulate._tflite_ops import cortex_m_cycles_per_mac, tflite_ops
from edgetune.simulate._tflm import measure_arena, tflm_version
from edgetune.targets import Target

DEFAULT_CLOCK_MHZ = 100.0


class TflmLowering(Lowering[CalibrationOptions]):
    """int8 .tflite -> TFLite Micro: arena size measured by TFLM, flash = the flatbuffer, latency from MACs.

    Latency = conv/depthwise/FC MACs x the core's cycles per MAC (CMSIS-NN figure, see
    edgetune/simulate/_tflite_ops.py) / CPU clock; other operators are not counted. A model
    whose arena or flatbuffer exceeds the board's SRAM or flash is an InfeasibleError.
    Its options are those of ``tflite-int8``, which quantizes a PyTorch or ONNX model for it.
    """

    name = "tflm"
    input_format = "tflite"
    also_accepts = ("torch", "onnx")  # quantized through tflite-int8 first (ONNX converted to PyTorch)
    output_format = "tflm-tflite"
    modules = ("tflite_micro", "ai_edge_litert")
    extra = "mcu"
    variants = (Variant("tflm", "int8"),)

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        start = time.perf_counter()
        source, input_details = int8_tflite_input(model, target, workdir, context)
        version = tflm_version()
        key = simulation_key(sha256_of(source), target, "tflm", version, {})

        def simulate(folder: Path) -> dict[str, Any]:
            ops = tflite_ops(source)
            return {**measure_arena(source), "macs": sum(op.macs for op in ops), "ops": len(ops)}

        result, hit = cached_simulation("tflm", key, workdir / "tflm-output", simulate)
        details = {**_estimate(result, target, source.stat().st_size), **input_details, "cache": "hit" if hit else "miss"}
        _check_fit(details, target)
        artifact = workdir / f"{source.stem}.tflm.tflite"
        shutil.copyfile(source, artifact)
        estimate = SimulatedEstimate("tflite-micro", version, target.name, details.pop("latency_ms"), artifact.name,
                                     "tflite", details)
        write_estimate(artifact, estimate)
        return Artifact(artifact, self.output_format, time.perf_counter() - start, estimate.to_details())


def _estimate(result: dict[str, Any], target: Target, model_bytes: int) -> dict[str, Any]:
    core = target.cpu.model if target.cpu.model != "auto" else "unknown core"
    clock_mhz = target.cpu.clock_mhz or DEFAULT_CLOCK_MHZ
    per_mac = cortex_m_cycles_per_mac(core)
    cycles = result["macs"] * per_mac
    return {**result, "arena_kb": result["arena_bytes"] / 1024, "flash_kb": model_bytes / 1024,
            "flash_note": "the model flatbuffer only; firmware and the TFLM runtime come on top",
            "core": core, "clock_mhz": clock_mhz, "cycles_per_mac": round(per_mac, 3), "cycles": int(cycles),
            "latency_ms": max(cycles / (clock_mhz * 1e3), 1e-6),
            "latency_source": "MACs x CMSIS-NN cycles/MAC at the CPU clock (edgetune/simulate/_tflite_ops.py)",
            "fits": True}


def _check_fit(details: dict[str, Any], target: Target) -> None:
    sram_kb, flash_kb = target.memory.sram_kb, target.memory.flash_kb
    problems = []
    if sram_kb is not None and details["arena_kb"] > sram_kb:
        problems.append(f"needs {details['arena_kb']:.0f} KB SRAM for the tensor arena, the board has {sram_kb} KB")
    if flash_kb is not None and details["flash_kb"] > flash_kb:
        problems.append(f"needs {details['flash_kb']:.0f} KB flash for the model, the board has {flash_kb} KB")
    if problems:
        raise InfeasibleError(f"does not fit {target.name}: {'; '.join(problems)}")
