"""What a profile knows of its hardware beyond the generic kernel features: timer resolution, systolic array.

The generic features (``_sampling.FEATURES``) describe a kernel's shape; trees on them learn a
CPU's smooth cost curves well, but not a systolic array's folding: a layer costs
``ceil(window / rows) * ceil(filters / cols)`` passes over the array, a step function of the
channels no tree finds from a few dozen samples. For targets with an array (an NPU's
``npu.systolic``, an FPGA's overlay) the profile adds the layer's analytic array cycles
(``edgetune.simulate._cycles``) as one more feature and as a term of the regressors' baseline,
so the trees only learn what the array model leaves over (stalls, the simulator's details).

The profile's metadata records it (``hardware``) and the features it was trained with
(``features``): a profile keeps predicting with its own features when later ones are added
(``_sampling.ALIGNMENT_FEATURES`` came after the shipped profiles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

from edgetune.predict._fusion import Kernel
from edgetune.predict._graph import Op
from edgetune.predict._regress import ARRAY_TERM, FLOOR_MS, ROOFLINE_TERMS
from edgetune.predict._sampling import ALIGNMENT_FEATURES, BASE_FEATURES, FEATURES, feature_values
from edgetune.targets import Target

if TYPE_CHECKING:
    from edgetune.simulate._topology import ArrayLayer

ARRAY_FEATURE = "log_array_cycles"


@dataclass(frozen=True)
class SystolicArray:
    """A systolic MAC array as the predictor models it: shape, dataflow and clock."""

    rows: int
    cols: int
    dataflow: str
    clock_mhz: float

    def layers(self, op: Op) -> tuple[Optional["ArrayLayer"], int]:
        """(array layer, repeats) of an op, mapped as the SCALE-Sim lowering maps it (``simulate._topology``)."""
        from edgetune.simulate._topology import ArrayLayer, conv_array_layer

        if op.kind == "fc":  # a 1x1 convolution over one pixel
            return ArrayLayer(1, 1, 1, 1, op.cin, op.cout, 1), 1
        if op.kind not in ("conv", "dwconv"):
            return None, 0  # left to the host: no array cycles
        top, left, bottom, right = op.padding
        window = tuple(d * (k - 1) + 1 for k, d in zip(op.kernel_hw, op.dilation))  # a dilated kernel's extent
        # SCALE-Sim takes one stride: the height's (the topology refuses a conv whose strides differ)
        _kind, layer, repeats = conv_array_layer(op.cin, op.cout, op.groups, (op.hin + top + bottom, op.win + left + right),
                                                 window, op.stride)
        return layer, repeats

    def cycles(self, op: Op) -> int:
        """Stall-free cycles of ``op`` on the array (0 for ops the array does not run)."""
        from edgetune.simulate._cycles import stall_free_cycles

        layer, repeats = self.layers(op)
        return 0 if layer is None else repeats * stall_free_cycles(layer, self.rows, self.cols, self.dataflow)

    def to_dict(self) -> dict:
        return {"array_rows": self.rows, "array_cols": self.cols, "dataflow": self.dataflow, "clock_mhz": self.clock_mhz}

    @classmethod
    def from_dict(cls, data: dict) -> "SystolicArray":
        return cls(int(data["array_rows"]), int(data["array_cols"]), str(data["dataflow"]), float(data["clock_mhz"]))


_FEATURES: dict = {}  # hardware -> {kernel shape -> feature row} (each profile's hardware: one or two)
_FEATURES_KEPT = 100_000


def _shape_key(kernel: Kernel) -> tuple:
    """Everything of a kernel its features read: the head's shape and window, its inputs, its followers."""
    op = kernel.head
    return (op.kind, op.cin, op.cout, op.hin, op.win, op.hout, op.wout, op.kernel, op.stride, op.groups,
            op.kernel_w, op.stride_w, op.pads, op.dilation, len(op.inputs), tuple(f.kind for f in kernel.followers))


@dataclass(frozen=True)
class ProfileHardware:
    """The hardware terms of one profile: its latency floor, for array targets the array, and the channel
    block of the runtime's blocked layout (``_layout``; 0: none, or a profile fitted before it was recorded)."""

    floor_ms: float = FLOOR_MS
    array: Optional[SystolicArray] = None
    # generic features after the first profiles' (and after the array's cycles, which keep their column)
    extra: tuple[str, ...] = ALIGNMENT_FEATURES
    layout_block: int = 0

    @property
    def feature_names(self) -> tuple[str, ...]:
        return BASE_FEATURES + ((ARRAY_FEATURE,) if self.array is not None else ()) + self.extra

    @property
    def baseline_terms(self) -> tuple[str, ...]:
        return ROOFLINE_TERMS + ((ARRAY_TERM,) if self.array is not None else ())

    def features(self, kernel: Kernel) -> list[float]:
        """The regressor's inputs for one kernel (order: ``feature_names``); kernels of the same shape share
        one computed row (a search predicts thousands of networks built of the same few shapes)."""
        return list(self.feature_rows([kernel])[0])

    def feature_rows(self, kernels: Sequence[Kernel]) -> list[tuple[float, ...]]:
        """``features`` of each kernel, as the shared (read-only) rows: one cache lookup per kernel."""
        cache = _FEATURES.setdefault(self, {})
        if len(cache) >= _FEATURES_KEPT:
            cache.clear()
        out = []
        for kernel in kernels:
            key = _shape_key(kernel)
            row = cache.get(key)
            if row is None:
                row = cache[key] = tuple(self._features(kernel))
            out.append(row)
        return out

    def _features(self, kernel: Kernel) -> list[float]:
        values = feature_values(kernel)
        row = [values[n] for n in BASE_FEATURES]
        if self.array is not None:
            row.append(math.log1p(self.array.cycles(kernel.head)))
        return row + [values[n] for n in self.extra]

    def to_metadata(self) -> dict:
        """What the profile's metadata records (empty for a CPU profile with no blocked layout)."""
        out: dict = {}
        if self.floor_ms != FLOOR_MS:
            out["floor_ms"] = self.floor_ms
        if self.array is not None:
            out["systolic"] = self.array.to_dict()
        if self.layout_block:
            out["layout_block"] = self.layout_block
        return out

    @classmethod
    def from_metadata(cls, metadata: dict) -> "ProfileHardware":
        """The hardware a profile was trained with (metadata without ``hardware``: generic, as before)."""
        data = metadata.get("hardware") or {}
        array = SystolicArray.from_dict(data["systolic"]) if data.get("systolic") else None
        names = [n for n in metadata.get("features", FEATURES) if n not in BASE_FEATURES and n != ARRAY_FEATURE]
        unknown = [n for n in names if n not in FEATURES]
        if unknown:
            from edgetune.predict._base import ProfileError

            raise ProfileError(f"the profile was trained on kernel features this edgetune does not know ({', '.join(unknown)}); "
                               "update edgetune or re-run `edgetune profile --fresh`")
        return cls(float(data.get("floor_ms", FLOOR_MS)), array, tuple(names), int(data.get("layout_block", 0)))

    @classmethod
    def for_target(cls, target: Target) -> "ProfileHardware":
        """A target with a systolic array (``npu.systolic``, an FPGA overlay) gets its array cycles; a
        simulated target's latencies are exact to one clock cycle, which becomes the floor."""
        array = None
        if (target.npu is not None and target.npu.systolic is not None) or target.fpga is not None:
            from edgetune.simulate._systolic import array_for_target

            simulated = array_for_target(target)
            config = simulated.config
            array = SystolicArray(config.rows, config.cols, config.dataflow, simulated.clock_mhz)
        clock_mhz = array.clock_mhz if array is not None else (target.npu.clock_mhz if target.npu is not None else None)
        floor = 1e-3 / clock_mhz if target.simulated and clock_mhz else FLOOR_MS  # one cycle, in ms
        return cls(floor, array)


GENERIC_HARDWARE = ProfileHardware()  # no hardware terms: what every CPU profile is trained with
