"""How closely a candidate's outputs follow the fp32 reference."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """An output passes when max |out - ref| <= atol + rtol * max |ref| (per output tensor)."""

    rtol: float = 1e-3
    atol: float = 1e-5


@dataclass(frozen=True)
class Fidelity:
    """Agreement of a candidate with the reference over a set of inputs."""

    max_abs_err: float
    max_rel_err: float  # max abs error / max |ref|
    cosine: float
    top1_agreement: float
    passed: bool
    reference: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_outputs(
    outputs: Sequence[Sequence[np.ndarray]],
    reference: Sequence[Sequence[np.ndarray]],
    tolerance: Tolerance,
    reference_name: str,
) -> Fidelity:
    """Compare per-batch output lists of a candidate against the reference's."""
    max_abs = max_rel = 0.0
    cosines, agreements = [], []
    passed = True
    for outs, refs in zip(outputs, reference):
        if len(outs) != len(refs):
            return Fidelity(float("inf"), float("inf"), 0.0, 0.0, False, reference_name)
        for out, ref in zip(outs, refs):
            if out.size != ref.size:
                return Fidelity(float("inf"), float("inf"), 0.0, 0.0, False, reference_name)
            out = np.asarray(out, dtype=np.float64).reshape(ref.shape)
            ref = np.asarray(ref, dtype=np.float64)
            err = float(np.max(np.abs(out - ref))) if ref.size else 0.0
            scale = float(np.max(np.abs(ref))) if ref.size else 0.0
            max_abs = max(max_abs, err)
            max_rel = max(max_rel, err / scale if scale > 0 else err)
            passed &= err <= tolerance.atol + tolerance.rtol * scale
            denom = float(np.linalg.norm(out) * np.linalg.norm(ref))
            cosines.append(float(np.dot(out.ravel(), ref.ravel()) / denom) if denom > 0 else float(err == 0))
            if ref.ndim >= 2 and ref.shape[-1] > 1:
                agreements.append(float(np.mean(out.argmax(-1) == ref.argmax(-1))))
    return Fidelity(
        max_abs_err=max_abs,
        max_rel_err=max_rel,
        cosine=min(cosines) if cosines else 1.0,
        top1_agreement=float(np.mean(agreements)) if agreements else 1.0,
        passed=bool(passed),
        reference=reference_name,
    )
