"""Artifacts kept beside the results store, so that the gate can time a baseline and a candidate together.

A run's timed artifacts are copied once, content-addressed by their SHA-256, to ``<store>.artifacts/``
beside a SQLite store (``$EDGETUNE_CACHE/artifacts`` for PostgreSQL), with what loading one needs
(runtime, inputs). Deleting that folder is safe: ``bench compare --retime`` then says which artifact is gone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

META = "kept.json"


@dataclass(frozen=True)
class KeptArtifact:
    """An artifact kept by hash: where it is and how to load it."""

    sha256: str
    path: Path
    runtime: str
    inputs: tuple[dict[str, Any], ...]


def kept_root(store_path: Optional[Path]) -> Path:
    """Where a store keeps its artifacts."""
    if store_path is not None:
        return store_path.with_name(store_path.name + ".artifacts")
    from edgetune.simulate import cache_root

    return cache_root() / "artifacts"


def keep_artifact(root: Path, sha256: str, artifact: Path, runtime: str, inputs: Sequence[dict[str, Any]]) -> KeptArtifact:
    """Copy ``artifact`` (with the files that share its stem, e.g. OpenVINO's .bin) under ``root/sha256`` once."""
    folder = root / sha256
    kept = KeptArtifact(sha256, folder / artifact.name, runtime, tuple(inputs))
    if (folder / META).exists():
        return kept
    partial = root / f".{sha256}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for sibling in artifact.parent.glob(f"{artifact.stem}.*"):
        if sibling.is_file():
            shutil.copy2(sibling, partial / sibling.name)
    (partial / META).write_text(json.dumps({"artifact": artifact.name, "runtime": runtime, "inputs": list(inputs)}))
    try:
        partial.rename(folder)  # atomic: a folder with kept.json is complete
    except OSError:  # another run kept it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return kept


def find_kept(root: Path, sha256: Optional[str]) -> Optional[KeptArtifact]:
    """The kept artifact with this hash, or None."""
    if not sha256:
        return None
    meta = root / sha256 / META
    if not meta.exists():
        return None
    data = json.loads(meta.read_text())
    return KeptArtifact(sha256, root / sha256 / data["artifact"], data["runtime"], tuple(data["inputs"]))
