"""Target registry: devices described by YAML files, validated into frozen objects."""

from edgetune.targets._host import HostInfo, detect_host
from edgetune.targets._registry import (
    TARGETS_DIR_ENV,
    TargetRegistry,
    builtin_targets_dir,
    list_targets,
    load_target,
    parse_target_file,
    resolve_target_option,
)
from edgetune.targets._schema import SCHEMA_VERSION, Target

__all__ = [
    "HostInfo",
    "SCHEMA_VERSION",
    "TARGETS_DIR_ENV",
    "Target",
    "TargetRegistry",
    "builtin_targets_dir",
    "detect_host",
    "list_targets",
    "load_target",
    "parse_target_file",
    "resolve_target_option",
]
