"""`--target` as a registry name, a target YAML file, or an LLVM target string (tvmc's form).

TVM 0.27 refuses target strings ("llvm -mcpu=xxx" is "no longer supported"), so edgetune parses
them itself into a Target whose CPU carries the triple, -mcpu and -mattr; ``llvm_target`` turns
that into TVM's dict form. A string naming another architecture describes a board: it is reached
through the RPC tracker (``rpc_key``, default the target's name).
"""

from __future__ import annotations

import platform
import re
import shlex
from pathlib import Path
from typing import Any, Optional

from edgetune.errors import ConfigError, TargetError
from edgetune.targets._schema import Target

TARGET_STRING_KINDS = ("llvm",)
_ATTRIBUTES = ("mtriple", "mcpu", "mattr", "num-cores")
_LOCAL_RUNTIMES = ("tvm", "onnxruntime")  # TVM as the string says, and ONNX Runtime as the reference beside it
_REMOTE_RUNTIMES = ("tvm",)


def is_target_path(text: str) -> bool:
    """Whether ``--target`` names a YAML file rather than a registry entry."""
    return text.lower().endswith((".yaml", ".yml")) or "/" in text


def is_target_string(text: str) -> bool:
    """Whether ``--target`` is a TVM-style target string such as ``llvm -mcpu=cortex-a72``."""
    words = text.split()
    return bool(words) and words[0] in TARGET_STRING_KINDS and (len(words) > 1 or text.strip() == words[0])


def host_arch() -> str:
    """This machine's architecture as LLVM triples spell it (x86_64, aarch64)."""
    return platform.machine().lower().replace("arm64", "aarch64").replace("amd64", "x86_64")


def parse_target_string(text: str) -> dict[str, Any]:
    """``llvm -mtriple=T -mcpu=C -mattr=+a,+b -num-cores=N`` -> TVM's dict form; one-line ConfigError otherwise."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"bad target string '{text}': {exc}") from None
    if not words or words[0] not in TARGET_STRING_KINDS:
        raise ConfigError(f"bad target string '{text}': it must start with {' or '.join(TARGET_STRING_KINDS)}")
    spec: dict[str, Any] = {"kind": words[0]}
    for word in words[1:]:
        name, sep, value = word.lstrip("-").partition("=")
        if not word.startswith("-") or not sep or not value:
            raise ConfigError(f"bad target string '{text}': '{word}' is not -key=value")
        if name not in _ATTRIBUTES:
            raise ConfigError(f"bad target string '{text}': unknown attribute -{name}; "
                              f"known: {', '.join('-' + a for a in _ATTRIBUTES)}")
        if name in spec:
            raise ConfigError(f"bad target string '{text}': -{name} is given twice")
        spec[name] = _attribute(text, name, value)
    return spec


def _attribute(text: str, name: str, value: str) -> Any:
    if name == "num-cores":
        if not value.isdigit() or not 1 <= int(value) <= 1024:
            raise ConfigError(f"bad target string '{text}': -num-cores must be an integer from 1 to 1024, got '{value}'")
        return int(value)
    if name == "mattr":
        features = [f for f in value.split(",") if f]
        bad = [f for f in features if not re.fullmatch(r"[+-][A-Za-z0-9_.-]+", f)]
        if bad or not features:
            raise ConfigError(f"bad target string '{text}': -mattr takes +feature/-feature items, got '{value}'")
        return tuple(features)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise ConfigError(f"bad target string '{text}': -{name}='{value}' has characters LLVM does not use")
    return value


def target_from_string(text: str, rpc_key: Optional[str] = None) -> Target:
    """A Target for an LLVM target string: this machine's CPU, or a board behind the RPC tracker when the triple
    names another architecture (or ``rpc_key`` is given)."""
    spec = parse_target_string(text)
    triple = spec.get("mtriple", "auto")
    arch = triple.split("-")[0] if triple != "auto" else "auto"
    remote = rpc_key is not None or (arch not in ("auto", host_arch()))
    parts = [p for p in ("llvm", triple if triple != "auto" else "", spec.get("mcpu", "")) if p]
    name = re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower()).strip("-") or "llvm"
    cores = spec.get("num-cores")
    raw: dict[str, Any] = {
        "schema_version": 1, "name": name, "kind": "cpu",
        "description": f"LLVM target string '{text}'" + (" on boards behind the RPC tracker" if remote else ""),
        "transport": "rpc" if remote else "local",
        "runtimes": list(_REMOTE_RUNTIMES if remote else _LOCAL_RUNTIMES),
        "precisions": ["fp32"], "threads": cores or "auto",
        "cpu": {"arch": arch, "cores": cores or "auto", "llvm_mcpu": spec.get("mcpu", "auto"),
                "llvm_mtriple": triple, "llvm_mattr": list(spec.get("mattr", ()))},
    }
    if remote:
        raw["rpc_key"] = rpc_key or name
        raw["cpu"]["features"] = []
        raw["cpu"]["model"] = f"{arch} ({spec.get('mcpu', 'generic')})"
    from edgetune.targets._registry import _resolve_auto

    return _resolve_auto(Target.model_validate({**raw, "source": f"target string: {text}"}))


def target_from_path(text: str) -> Target:
    """The target described by a YAML file given as --target."""
    from edgetune.targets._registry import parse_target_file

    path = Path(text)
    if not path.is_file():
        raise TargetError(f"target file '{text}' does not exist; give a target name, a YAML file or an LLVM target string")
    return parse_target_file(path)
