"""`compile --emit c`: the chosen MCU / Ethos-U model as C++ sources for firmware (model_data.h / .cc).

The flatbuffer becomes an aligned byte array; ``kTensorArenaSize`` is the arena TFLite Micro
measured for the model plus ARENA_MARGIN (and, for Ethos-U, at least the SRAM Vela planned), and
the header comment carries a minimal TFLite Micro snippet with the operators the model uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from edgetune.errors import ConfigError, EdgetuneError
from edgetune.pipeline._candidates import CandidateResult
from edgetune.targets import Target

EMIT_FORMATS = ("c",)
C_RUNTIMES = ("tflm", "vela")  # what runs a .tflite under TensorFlow Lite Micro on the device
# Why a margin: the arena is measured by TFLM's host build (64-bit pointers, reference kernels);
# a 32-bit build with CMSIS-NN kernels needs different scratch buffers. 10% + 1 KiB covered both here.
ARENA_MARGIN = 0.10
ARENA_MARGIN_MIN_BYTES = 1024
ALIGNMENT = 16  # TFLM requires 16-byte-aligned flatbuffers and arenas
BYTES_PER_LINE = 12


@dataclass(frozen=True)
class ArenaSize:
    """The arena the firmware reserves and where the number comes from."""

    measured_bytes: int
    tensor_arena_size: int
    source: str


def check_emit(emit: Optional[str], target: Target) -> None:
    """ConfigError for an unknown --emit format or a target that does not run TFLite Micro."""
    if emit is None:
        return
    if emit not in EMIT_FORMATS:
        raise ConfigError(f"unknown --emit format '{emit}'; valid: {', '.join(EMIT_FORMATS)}")
    if not set(target.runtimes) & set(C_RUNTIMES):
        raise ConfigError(f"--emit c writes TensorFlow Lite Micro sources for MCU and Ethos-U targets; "
                          f"'{target.name}' runs {', '.join(target.runtimes)}")


def arena_size(result: CandidateResult) -> ArenaSize:
    """Measured arena (TFLM; for Ethos-U the larger of TFLM's and Vela's SRAM plan) plus the margin."""
    details = result.details
    parts: list[str] = []
    measured = 0
    if "arena_bytes" in details:
        measured = int(details["arena_bytes"])
        parts.append(f"TFLite Micro arena measured on the host {measured} bytes")
    if result.plan.runtime == "vela":
        tflm = _tflm_arena_of_functional(result)
        if tflm:
            measured = max(measured, tflm)
            parts.append(f"TFLite Micro arena of the int8 model {tflm} bytes")
        vela = int(math.ceil(float(details.get("sram_used_kb", 0.0)) * 1024))
        measured = max(measured, vela)
        parts.append(f"Vela SRAM plan {vela} bytes")
    if measured <= 0:
        raise EdgetuneError(f"candidate {result.name} carries no measured arena; --emit c needs the tflm or vela candidate")
    margin = max(int(measured * ARENA_MARGIN), ARENA_MARGIN_MIN_BYTES)
    size = -(-(measured + margin) // ALIGNMENT) * ALIGNMENT
    basis = parts[0] if len(parts) == 1 else f"the largest of {', '.join(parts)}"
    source = (f"{basis}, + {ARENA_MARGIN:.0%} margin (at least {ARENA_MARGIN_MIN_BYTES} bytes), "
              f"rounded up to {ALIGNMENT} bytes")
    return ArenaSize(measured, size, source)


def _tflm_arena_of_functional(result: CandidateResult) -> int:
    """TFLM's arena for the int8 model beside a Vela artifact (0 when TFLM is not installed)."""
    from edgetune._lazy import available
    from edgetune.simulate._estimate import read_estimate
    from edgetune.simulate._tflm import measure_arena

    if result.artifact is None or not available("tflite_micro"):
        return 0
    functional = result.artifact.path.with_name(read_estimate(result.artifact.path).functional_model)
    return int(measure_arena(functional)["arena_bytes"])


def resolver_calls(tflite: Path) -> list[str]:
    """``resolver.AddX();`` for each operator of ``tflite`` (TFLM's MicroMutableOpResolver method names)."""
    from edgetune.simulate._tflite_ops import tflite_ops

    names = sorted({op.op for op in tflite_ops(tflite)})
    return [f"resolver.Add{_camel(name)}();" for name in names]


def _camel(op: str) -> str:
    if op.upper().startswith("ETHOS"):
        return "EthosU"
    return "".join(part if part[0].isdigit() else part.capitalize() for part in op.split("_") if part)


def write_c_sources(result: CandidateResult, target: Target, out: Path, model_file: str = "") -> dict[str, Any]:
    """Write ``out/model_data.h`` and ``out/model_data.cc`` for ``result``'s artifact (written to ``out`` as
    ``model_file``); what the manifest records."""
    if result.artifact is None or result.plan.runtime not in C_RUNTIMES:
        raise EdgetuneError(f"--emit c needs a built tflm or vela candidate; {result.name} is not one")
    data = result.artifact.path.read_bytes()
    arena = arena_size(result)
    try:
        calls = resolver_calls(result.artifact.path)
    except EdgetuneError:
        calls = []
    if result.plan.runtime == "vela" and "resolver.AddEthosU();" not in calls:
        calls.append("resolver.AddEthosU();")
    header, source = out / "model_data.h", out / "model_data.cc"
    header.write_text(_header_text(result, target, len(data), arena, calls, model_file or result.artifact.path.name))
    source.write_text(_source_text(data))
    return {"header": header.name, "source": source.name, "model_bytes": len(data),
            "arena_measured_bytes": arena.measured_bytes, "tensor_arena_size": arena.tensor_arena_size,
            "arena_source": arena.source, "candidate": result.name}


def _header_text(result: CandidateResult, target: Target, size: int, arena: ArenaSize, calls: Sequence[str],
                 model_file: str) -> str:
    resolver = "\n".join(f"//   {call}" for call in calls) or "//   (add the operators your model uses)"
    return f"""// model_data.h: {result.name} for {target.name}, written by edgetune (`edgetune compile --emit c`).
// Model: {size} bytes, the same as {model_file}.
// kTensorArenaSize: {arena.source}.
//
// Minimal TensorFlow Lite Micro use:
//
//   #include "model_data.h"
//   #include "tensorflow/lite/micro/micro_interpreter.h"
//   #include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
//
//   alignas(16) static uint8_t tensor_arena[kTensorArenaSize];
//   static tflite::MicroMutableOpResolver<{max(len(calls), 1)}> resolver;
{resolver}
//   const tflite::Model* model = tflite::GetModel(g_model_data);
//   tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
//   if (interpreter.AllocateTensors() != kTfLiteOk) {{ /* arena too small */ }}
//   TfLiteTensor* input = interpreter.input(0);   // int8: quantize with input->params
//   interpreter.Invoke();
//   TfLiteTensor* output = interpreter.output(0);
#ifndef EDGETUNE_MODEL_DATA_H_
#define EDGETUNE_MODEL_DATA_H_

#include <cstddef>

extern const unsigned char g_model_data[];
extern const unsigned int g_model_data_len;
constexpr std::size_t kTensorArenaSize = {arena.tensor_arena_size};

#endif  // EDGETUNE_MODEL_DATA_H_
"""


def _source_text(data: bytes) -> str:
    rows = [", ".join(f"0x{b:02x}" for b in data[i:i + BYTES_PER_LINE]) for i in range(0, len(data), BYTES_PER_LINE)]
    body = ",\n    ".join(rows)
    return f"""// model_data.cc: written by edgetune (`edgetune compile --emit c`); see model_data.h.
#include "model_data.h"

alignas({ALIGNMENT}) const unsigned char g_model_data[] = {{
    {body}
}};
const unsigned int g_model_data_len = {len(data)};
"""
