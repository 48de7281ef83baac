"""Which machine a profile describes: the CPU model and its notable ISA features.

Cloud VMs often report a bare "Intel(R) Xeon(R) Processor" for very different hosts, so the ISA
features (AVX-512, VNNI, AMX) are part of the identity where they were recorded. Profiles taken
before features were recorded match on the model name alone.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping, Optional


def current_machine() -> dict[str, Any]:
    """This machine: {"cpu_model", "isa"} (isa: the notable ISA features, sorted)."""
    from edgetune.targets._host import detect_host

    host = detect_host()
    return {"cpu_model": host.model, "isa": sorted(host.notable_features)}


def profile_machine(metadata: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The machine a profile's metadata says it was taken on (None when it does not say)."""
    env = metadata.get("environment") or {}
    model = env.get("cpu_model")
    if not model:
        return None
    return {"cpu_model": model, "isa": list(metadata.get("machine", {}).get("isa", []))}


def same_machine(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Same CPU model, and the same ISA features where both recorded them."""
    if a.get("cpu_model") != b.get("cpu_model"):
        return False
    return not a.get("isa") or not b.get("isa") or sorted(a["isa"]) == sorted(b["isa"])


def taken_here(metadata: Mapping[str, Any]) -> bool:
    """Whether a profile's metadata says it was taken on this machine (False where it does not say)."""
    taken_on = profile_machine(metadata)
    return taken_on is not None and same_machine(taken_on, current_machine())


def machine_slug(machine: Mapping[str, Any]) -> str:
    """A file name for a machine: readable model words and a short hash of model + features."""
    words = re.sub(r"[^a-z0-9]+", "-", str(machine.get("cpu_model", "unknown")).lower()).strip("-")[:40]
    digest = hashlib.sha256(f"{machine.get('cpu_model')}|{','.join(sorted(machine.get('isa', [])))}".encode()).hexdigest()[:8]
    return f"{words or 'cpu'}-{digest}"


def describe(machine: Optional[Mapping[str, Any]]) -> str:
    if not machine:
        return "an unrecorded machine"
    isa = ", ".join(f for f in machine.get("isa", []) if f.startswith(("avx512f", "avx512_vnni", "amx", "avx2")))
    return f"'{machine.get('cpu_model')}'" + (f" ({isa})" if isa else "")
