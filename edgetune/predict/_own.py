"""A profile's own correction: from how profiling measures kernels to how a network runs alone.

Profiling times its random networks in interleaved groups, each against the reference graph timed in
the same group (``_drift``), and learns every kernel's cost inside them. A deployed network runs
alone in its process, and the accuracy benchmark's truth times it so: the fastest of >= 30 runs, in
passes of alternating order. The two differ kernel by kernel: a fresh profile of the AMD VM on
2026-12-04 over-predicted depthwise convs without a fused activation by 19-45% and channel shuffles
by 28% in held-out networks, while its end-to-end model on the measured node times was within 2%.
So at its end a profile times its 20 reference networks alone, through the runtime's per-node
profiler (``_references``), and fits on their kernels the same residual an adaptation to another
machine fits (``_adapt.fit_kernel_correction``, ``_residual``), of those costs over its own
predictions. It is kept in ``models/own_correction.json`` and applied to every prediction of the
profile, on any machine, before an adaptation is; a retrain refits it on the new regressors.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from edgetune.predict._base import ProfileError

OWN_FILE = "own_correction.json"


def own_path(folder: Path) -> Path:
    return Path(folder) / "models" / OWN_FILE


def fit_own_correction(folder: Path) -> Optional[dict[str, Any]]:
    """Fit and write the profile's own correction from its references' node times; None (and no file) where
    it kept none (a runtime without a per-node profiler, a profile from before) or too few kernels line up."""
    from edgetune.predict._adapt import fit_kernel_correction
    from edgetune.predict._predictors import KernelPredictor
    from edgetune.predict._references import REFERENCES_FILE, read_references, reference_graphs

    path = own_path(folder)
    path.unlink(missing_ok=True)  # what follows predicts without it
    document = read_references(Path(folder) / REFERENCES_FILE)
    if document is None or not any(n.get("node_min_ms") for n in document["networks"]):
        return None
    records = [{"name": n["name"], "latency_ms": n["latency_ms"],
                "nodes": [[(*node, node[2]) for node in n.get("node_min_ms", [])]]} for n in document["networks"]]
    try:
        fitted = fit_kernel_correction(KernelPredictor(folder), reference_graphs(document), records)
    except ProfileError:  # too few kernels lined up with the profiler's nodes: the profile as it is
        return None
    assert fitted.residual is not None
    data = {"schema": 1, "kind": "own correction", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fitted_on": f"{len(records)} reference networks timed alone at the end of profiling (references.json)",
            "correction": {**fitted.summary(), "residual": fitted.residual.to_dict()},
            "note": "every kernel's predicted cost times the residual's factor, the end-to-end total times scale"}
    path.write_text(json.dumps(data, indent=1))
    return data


def load_own(folder: Path) -> Optional[Any]:
    """The profile's own correction (a ``MachineCorrection``), or None when it has none."""
    from edgetune.predict._adapt import correction_from

    path = own_path(folder)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        # part of the profile's model, whose interval already stands for its error: it widens nothing
        return replace(correction_from(data, {"own": True, "held_out": data["correction"].get("held_out")}), spread=0.0)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ProfileError(f"{path} is corrupt; delete it and run `edgetune profile --retrain`") from None
