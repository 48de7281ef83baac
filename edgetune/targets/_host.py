"""Detect what the host CPU is: model, cores, ISA features, memory."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# ISA features worth showing to an engineer choosing kernels; the full flag list is kept too.
NOTABLE_FEATURES = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "neon", "asimd", "asimddp",
    "sve", "sve2", "i8mm", "bf16",
)


@dataclass(frozen=True)
class HostInfo:
    """What this machine's CPU offers."""

    model: str
    arch: str
    cores_physical: int
    cores_logical: int
    features: tuple[str, ...]
    ram_mb: int

    @property
    def notable_features(self) -> tuple[str, ...]:
        return tuple(f for f in NOTABLE_FEATURES if f in self.features)


# /proc/cpuinfo rather than py-cpuinfo: get_cpu_info() spends ~1 s in a subprocess that runs CPUID, in every
# command that resolves a local target, and adds CPUID's flag names (avx512vnni) to the kernel's (avx512_vnni),
# which changes the feature list; the kernel's flags are also what the OS lets programs use.
def _cpuinfo_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key not in fields:
            fields[key] = value.strip()
    return fields


def _physical_cores(logical: int) -> int:
    try:
        import psutil

        return int(psutil.cpu_count(logical=False) or logical)
    except ImportError:  # pragma: no cover - psutil is a core dependency
        return logical


@functools.lru_cache(maxsize=1)
def detect_host() -> HostInfo:
    """Read /proc/cpuinfo (Linux) or fall back to the platform module."""
    arch = platform.machine() or "unknown"
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    model, features = platform.processor() or arch, tuple[str, ...]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        fields = _cpuinfo_fields(cpuinfo.read_text(errors="replace"))
        model = fields.get("model name") or fields.get("hardware") or fields.get("cpu model") or model
        flags = fields.get("flags") or fields.get("features") or ""
        features = tuple(sorted(set(flags.split())))
    ram_mb = 0
    try:
        import psutil

        ram_mb = int(psutil.virtual_memory().total // (1024 * 1024))
    except ImportError:  # pragma: no cover
        pass
    return HostInfo(
        model=model,
        arch=arch,
        cores_physical=min(_physical_cores(logical), logical),
        cores_logical=logical,
        features=features,
        ram_mb=ram_mb,
    )
