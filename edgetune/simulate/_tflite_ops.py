"""Operators of a .tflite with their MAC counts, and a Cortex-M cycle estimate from them.

The estimate is deliberately simple: MACs x cycles per MAC at the CPU clock, with the per-MAC
figure taken from Arm's CMSIS-NN paper (Lai, Suda, Chandra, "CMSIS-NN: Efficient Neural Network
Kernels for Arm Cortex-M CPUs", arXiv:1801.06601, 2018): their int8 CIFAR-10 CNN (about 12.3 M
MACs: conv 5x5 32/32/64 channels on 32x32/16x16/8x8 maps plus pooling, ReLU and a 1024x10 FC)
ran in 99.1 ms on a Cortex-M7 at 216 MHz = 21.4 M cycles, i.e. 1.74 cycles per MAC including
the memory-bound layers. Other cores scale that figure (see CORE_CYCLES_PER_MAC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgetune._quiet import quiet_fds
from edgetune.errors import ModelError, reraise_as

CMSIS_NN_M7_CYCLES_PER_MAC = 99.1e-3 * 216e6 / 12.3e6  # = 1.74

# Cortex-M4 is single-issue where the M7 dual-issues its SIMD MACs: taken as 2x the M7 figure
# (an assumption, not a measurement). The M55 is taken like the M7 (conservative: Helium is faster).
CORE_CYCLES_PER_MAC = {"cortex-m4": 2 * CMSIS_NN_M7_CYCLES_PER_MAC, "cortex-m7": CMSIS_NN_M7_CYCLES_PER_MAC,
                       "cortex-m55": CMSIS_NN_M7_CYCLES_PER_MAC}


@dataclass(frozen=True)
class TfliteOp:
    """One operator: its builtin name, the name of its first output tensor and its MACs."""

    op: str
    output: str
    macs: int


def _prod(values: list[int]) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def tflite_ops(path: Path) -> list[TfliteOp]:
    """The operators of ``path`` in execution order, with MACs for conv, depthwise conv and FC."""
    with reraise_as(ModelError, f"cannot read '{path.name}' as TFLite", 200), quiet_fds():
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = []
    for detail in interpreter._get_ops_details():  # the only op-level view LiteRT exposes
        inputs = [tensors[i] for i in detail["inputs"] if i >= 0]
        outputs = [tensors[i] for i in detail["outputs"] if i >= 0]
        name = detail["op_name"]
        macs = 0
        if outputs and len(inputs) >= 2:
            out_shape = [int(v) for v in outputs[0]["shape"]]
            weights = [int(v) for v in inputs[1]["shape"]]
            if name == "CONV_2D" and len(weights) == 4:  # OHWI
                macs = _prod(out_shape) * _prod(weights[1:])
            elif name == "DEPTHWISE_CONV_2D" and len(weights) == 4:  # 1HWO
                macs = _prod(out_shape) * weights[1] * weights[2]
            elif name == "FULLY_CONNECTED" and len(weights) == 2:
                macs = _prod(out_shape) * weights[1]
        ops.append(TfliteOp(name, outputs[0]["name"] if outputs else "", macs))
    return ops


def cortex_m_cycles_per_mac(cpu_model: str) -> float:
    """Cycles per int8 MAC for a Cortex-M core named like 'Arm Cortex-M7' (the M7 figure when unknown)."""
    key = cpu_model.lower().replace("arm ", "").strip()
    return CORE_CYCLES_PER_MAC.get(key, CMSIS_NN_M7_CYCLES_PER_MAC)
