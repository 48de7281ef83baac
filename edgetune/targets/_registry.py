"""Load targets/*.yaml into validated Target objects; look targets up by name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import yaml
from pydantic import ValidationError

from edgetune._validation import describe_validation_error
from edgetune.errors import TargetError, UnknownTargetError
from edgetune.targets._host import detect_host
from edgetune.targets._schema import Target

TARGETS_DIR_ENV = "EDGETUNE_TARGETS_DIR"


def builtin_targets_dir() -> Path:
    """The built-in targets: shipped in the package (edgetune/_data/targets), or the source checkout's targets/."""
    from edgetune._locations import shipped_dir

    return shipped_dir("targets")


def _search_dirs(extra: Sequence[os.PathLike[str] | str] = ()) -> list[Path]:
    dirs = [Path(d) for d in extra]
    env = os.environ.get(TARGETS_DIR_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(builtin_targets_dir())
    return dirs


def parse_target_file(path: Path) -> Target:
    """Parse and validate one target YAML file; errors name the file and the key."""
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TargetError(f"{path}: cannot read target file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TargetError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise TargetError(f"{path}: a target file must be a mapping of keys, got {type(raw).__name__}")
    if raw.get("schema_version") not in (None, 1):
        raise TargetError(
            f"{path}: key 'schema_version': unsupported version {raw['schema_version']!r}; this edgetune reads version 1"
        )
    try:
        target = Target.model_validate({**raw, "source": str(path)})
    except ValidationError as exc:
        raise TargetError(describe_validation_error(path, raw, exc)) from exc
    return _resolve_auto(target)


def _resolve_auto(target: Target) -> Target:
    """Fill 'auto' fields of a local CPU target from the host it runs on."""
    if target.transport != "local":
        return target
    host = detect_host()
    cpu = target.cpu
    cpu_update: dict[str, Any] = {}
    if cpu.model == "auto":
        cpu_update["model"] = host.model
    if cpu.arch == "auto":
        cpu_update["arch"] = host.arch
    if cpu.cores == "auto":
        cpu_update["cores"] = host.cores_physical
    if cpu.features == "auto":
        cpu_update["features"] = host.notable_features
    update: dict[str, Any] = {"cpu": cpu.model_copy(update=cpu_update)}
    if target.memory.ram_mb == "auto":
        update["memory"] = target.memory.model_copy(update={"ram_mb": host.ram_mb})
    return target.model_copy(update=update)


@dataclass(frozen=True)
class TargetRegistry:
    """All targets visible from a list of folders; earlier folders win on a name clash."""

    targets: dict[str, Target]

    @classmethod
    def load(cls, extra_dirs: Iterable[os.PathLike[str] | str] = ()) -> "TargetRegistry":
        found: dict[str, Target] = {}
        for directory in _search_dirs(list(extra_dirs)):
            if not directory.is_dir():
                raise TargetError(f"targets folder {directory} does not exist; pass an existing folder of YAML files")
            seen_here: dict[str, Path] = {}
            for path in sorted(directory.glob("*.y*ml")):
                target = parse_target_file(path)
                if target.name in seen_here:
                    raise TargetError(
                        f"{path}: target name '{target.name}' is already defined in {seen_here[target.name]}"
                    )
                seen_here[target.name] = path
                found.setdefault(target.name, target)
        return cls(found)

    def names(self) -> list[str]:
        return sorted(self.targets)

    def get(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise UnknownTargetError(
                f"unknown target '{name}'; valid targets: {', '.join(self.names())}"
            ) from None


def load_target(name: str, targets_dir: Optional[os.PathLike[str] | str] = None) -> Target:
    """Return the validated target ``name``: a registry name (user folders first, then built-in), a target YAML
    file, or an LLVM target string such as ``llvm -mtriple=aarch64-linux-gnu -mcpu=cortex-a72``."""
    from edgetune.targets._from_text import is_target_path, is_target_string, target_from_path, target_from_string

    if is_target_string(name):
        return target_from_string(name)
    if is_target_path(name):
        return target_from_path(name)
    return TargetRegistry.load([targets_dir] if targets_dir else []).get(name)


def resolve_target_option(text: str, targets_dir: Optional[os.PathLike[str] | str] = None,
                          rpc_key: Optional[str] = None) -> Target:
    """``--target`` (name, YAML file or LLVM string) with ``--rpc-key`` applied: the boards' key at the tracker."""
    from edgetune.errors import ConfigError
    from edgetune.targets._from_text import is_target_string, target_from_string

    if rpc_key is not None and not rpc_key.strip():
        raise ConfigError("--rpc-key must not be empty")
    if rpc_key is not None and is_target_string(text):
        return target_from_string(text, rpc_key)
    target = load_target(text, targets_dir)
    if rpc_key is None:
        return target
    if target.transport != "rpc":
        raise ConfigError(f"--rpc-key is for targets reached over RPC; target '{target.name}' has transport "
                          f"'{target.transport}' (an LLVM target string with --rpc-key is reached over RPC)")
    return target.model_copy(update={"rpc_key": rpc_key})


def list_targets(targets_dir: Optional[os.PathLike[str] | str] = None) -> list[Target]:
    """Return every visible target, sorted by name."""
    registry = TargetRegistry.load([targets_dir] if targets_dir else [])
    return [registry.targets[n] for n in registry.names()]
