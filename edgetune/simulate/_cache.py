"""Cache of simulator runs, keyed by (model hash, target description, simulator version, options).

Simulations are deterministic and some take minutes, so a second compile or bench of the same
model on the same target reuses the first run's output files. The cache lives in
``$EDGETUNE_CACHE/simulations`` (default ``$XDG_CACHE_HOME/edgetune``, i.e. ``~/.cache/edgetune``);
deleting it is always safe.

Simulators that cost layers independently (SCALE-Sim) also keep one small JSON result per layer
in ``$EDGETUNE_CACHE/layers/<simulator>/``, keyed by the layer's shape and the array it ran on:
networks that differ elsewhere (other weights, other layers) reuse the layers they share.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from edgetune.targets import Target

CACHE_ENV = "EDGETUNE_CACHE"
RESULT_FILE = "result.json"


def cache_root() -> Path:
    """$EDGETUNE_CACHE, else $XDG_CACHE_HOME/edgetune, else ~/.cache/edgetune."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgetune"


def target_fingerprint(target: Target) -> str:
    """Hash of everything in a target that can change a simulation (not its description or file)."""
    fields = target.model_dump(mode="json", exclude={"description", "source"})
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def simulation_key(model_sha256: str, target: Target, simulator: str, version: str,
                   options: Mapping[str, Any]) -> str:
    """The cache key of one simulation."""
    parts = {"model": model_sha256, "target": target.name, "target_fingerprint": target_fingerprint(target),
             "simulator": simulator, "version": version, "options": dict(options)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def cached_simulation(simulator: str, key: str, folder: Path,
                      simulate: Callable[[Path], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Fill ``folder`` with a simulation's files and return (its parsed result, whether it came from the cache).

    ``simulate(folder)`` runs the simulator, writes its files into ``folder`` and returns a
    JSON-serialisable result; both are stored under the key on a miss.
    """
    entry = cache_root() / "simulations" / simulator / key
    folder.mkdir(parents=True, exist_ok=True)
    if (entry / RESULT_FILE).is_file():
        try:
            result = json.loads((entry / RESULT_FILE).read_text())
            shutil.copytree(entry, folder, dirs_exist_ok=True)
            (folder / RESULT_FILE).unlink(missing_ok=True)
            return result, True
        except (OSError, ValueError):
            pass  # a damaged entry: simulate again and overwrite it
    start = time.perf_counter()
    result = simulate(folder)
    result["simulation_wall_s"] = round(time.perf_counter() - start, 3)
    _store(entry, folder, result)
    return result, False


def _store(entry: Path, folder: Path, result: dict[str, Any]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=entry.parent))
    try:
        shutil.copytree(folder, staging, dirs_exist_ok=True)
        (staging / RESULT_FILE).write_text(json.dumps(result, sort_keys=True))  # written last: marks it complete
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        staging.rename(entry)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race, or the disk is full: not fatal


def layer_key(simulator: str, version: str, layer: Mapping[str, Any], hardware: Mapping[str, Any]) -> str:
    """The cache key of one layer simulated on one piece of hardware (all a per-layer simulation sees)."""
    parts = {"simulator": simulator, "version": version, "layer": dict(layer), "hardware": dict(hardware)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _layer_path(simulator: str, key: str) -> Path:
    return cache_root() / "layers" / simulator / key[:2] / f"{key}.json"


def cached_layers(simulator: str, keys: Sequence[str],
                  simulate: Callable[[list[int]], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], int]:
    """One result per key, from the cache where stored, else from ``simulate(indices of the missing keys)``
    (which returns their results in that order); returns (results in key order, how many came from the cache)."""
    found: list[Optional[dict[str, Any]]] = []
    for key in keys:
        try:
            found.append(json.loads(_layer_path(simulator, key).read_text()))
        except (OSError, ValueError):
            found.append(None)  # absent or damaged: simulated again and overwritten
    missing = [i for i, row in enumerate(found) if row is None]
    if missing:
        rows = simulate(missing)
        for index, row in zip(missing, rows):
            found[index] = row
            _store_layer(_layer_path(simulator, keys[index]), row)
    return [row for row in found if row is not None], len(keys) - len(missing)


def _store_layer(path: Path, row: dict[str, Any]) -> None:
    staging: Optional[str] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=".staging-", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(row, fh, sort_keys=True)
        os.replace(staging, path)  # atomic: a reader sees the whole row or none
    except OSError:  # a full disk or read-only cache only costs a later re-simulation
        if staging is not None:
            Path(staging).unlink(missing_ok=True)
