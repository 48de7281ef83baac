"""Write a compile's output folder: chosen artifact, manifest.json, summary.txt."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from edgetune.bench import BenchConfig
from edgetune.errors import EdgetuneError
from edgetune.lowering import Artifact
from edgetune.pipeline._candidates import CandidateResult, measurement_modes
from edgetune.pipeline._evaluate import Evaluation
from edgetune.pipeline._fidelity import Tolerance
from edgetune.pipeline._options import CompileOptions
from edgetune.simulate._figures import device_figures

MANIFEST_VERSION = 1
# every artifact format a lowering writes (tests/pipeline/test_outputs.py checks the lowering registry against it)
SUFFIX = {"onnx": ".onnx", "tvm-lib": ".so", "tflite": ".tflite", "openvino": ".xml", "vela-tflite": "_vela.tflite",
          "scalesim-onnx": ".onnx", "tflm-tflite": ".tflite", "torch": ".pt2"}


def artifact_file_name(stem: str, artifact_format: str) -> str:
    """``<stem><suffix of the format>``: the name an artifact gets in a compile's output folder."""
    if artifact_format not in SUFFIX:
        raise EdgetuneError(f"no file extension is known for artifact format '{artifact_format}'")
    return f"{stem}{SUFFIX[artifact_format]}"


def copy_artifact(artifact: Artifact, folder: Path, stem: str) -> Path:
    """Copy ``artifact`` to ``folder/<stem><suffix of its format>`` (an OpenVINO .xml brings its .bin)."""
    dest = folder / artifact_file_name(stem, artifact.format)
    shutil.copyfile(artifact.path, dest)
    weights = artifact.path.with_suffix(".bin")
    if artifact.format == "openvino" and weights.exists():
        shutil.copyfile(weights, dest.with_suffix(".bin"))
    return dest


def candidate_dicts(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Every candidate as JSON, with its device figures (SIMULATED/ESTIMATED) on a simulated target."""
    memory = evaluation.target.memory.model_dump()
    dicts = []
    for result in evaluation.results:
        figures = device_figures(result.details, memory)
        dicts.append({**result.to_dict(), "device_figures": figures.to_dict() if figures else None})
    return dicts


def manifest_dict(evaluation: Evaluation, winner: Optional[CandidateResult], reason: str,
                  artifact: Optional[Path], config: BenchConfig, tolerance: Tolerance,
                  options: Optional[CompileOptions] = None) -> dict[str, Any]:
    """Everything needed to trust (or reproduce) a compile's choice."""
    from edgetune import __version__

    model = evaluation.model
    return {
        "manifest_version": MANIFEST_VERSION,
        "edgetune_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": evaluation.run_id,
        "input_model": {
            "name": model.name,
            "source": model.source,
            "format": model.source_format,
            "sha256": model.sha256,
            "inputs": [t.to_dict() for t in model.inputs],
            "outputs": [t.to_dict() for t in model.outputs],
        },
        "target": evaluation.target.model_dump(mode="json"),
        "threads": evaluation.threads,
        "environment": evaluation.environment,
        "bench_config": asdict(config),
        "tolerance": asdict(tolerance),
        "options": asdict(options) if options else None,
        "data": evaluation.data,
        "warnings": list(evaluation.warnings),
        "prune_search": evaluation.prune_search,
        "timing_noise": evaluation.noise or None,
        "reference": evaluation.reference,
        "candidates": candidate_dicts(evaluation),
        "winner": None if winner is None else {
            "name": winner.name,
            "artifact": artifact.name if artifact else None,
            "median_ms": winner.timing.stats.median_ms if winner.timing else None,
            "reason": reason,
        },
        "no_winner_reason": reason if winner is None else None,
        "measured": True,
        "results_store": str(evaluation.results_path) if evaluation.results_path else None,
    }


def summary_text(evaluation: Evaluation, winner: Optional[CandidateResult], reason: str,
                 artifact: Optional[Path], measured: bool = True) -> str:
    """A short human summary, one line per candidate."""
    target = evaluation.target
    lines = [
        f"edgetune compile{'' if measured else ' --build-only'}: {evaluation.model.name} for {target.name}"
        f"{' (SIMULATED)' if target.simulated else ''}, {evaluation.threads} thread(s), run {evaluation.run_id}"
        f"{'' if measured else ', not measured'}",
        f"reference: {evaluation.reference or 'none'}",
        "",
    ]
    for r in evaluation.results:
        latency = f"{r.timing.stats.median_ms:9.4f} ms (cv {r.timing.stats.cv:5.1%})" if r.timing else f"{'-':>24}"
        accuracy = f"{r.accuracy['metric'].replace('_', ' ')} {r.accuracy['value']:.1%}" if r.accuracy else ""
        note = r.reason or (r.timing.stopped_early if r.timing else "")
        lines.append(f"  {r.name:<34} {r.status:<9} {latency}  {accuracy:<24} {note}")
        figures = device_figures(r.details, target.memory.model_dump())
        if figures:
            lines.append(f"  {'':<34} {figures.text}")
    modes = measurement_modes(evaluation.results)
    if modes:
        lines.append(f"\nmeasured: {modes}")
    search = evaluation.prune_search
    if search:
        tried = ", ".join(f"{s['ratio']:g} -> {s['latency_ms']:.4g} ms" for s in search["steps"])
        lines.append(f"\nprune search for {search['goal_ms']:g} ms on {search['measured_with']}: {tried}; {search['note']}")
    lines.append("")
    lines.append(f"winner: {winner.name} -> {artifact}" if winner else "winner: none")
    lines.append(f"why: {reason}")
    lines.extend(f"warning: {w}" for w in evaluation.warnings)
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, evaluation: Evaluation, winner: Optional[CandidateResult], reason: str,
                  config: BenchConfig, tolerance: Tolerance, options: Optional[CompileOptions] = None,
                  extra: Optional[dict[str, Any]] = None) -> tuple[Optional[Path], Path]:
    """Copy the winner's artifact into ``out`` and write manifest.json, summary.txt and report.html.

    ``extra`` adds keys to the manifest (--build-only: ``measured`` false and the built artifacts;
    --emit c: the emitted sources).
    """
    out.mkdir(parents=True, exist_ok=True)
    artifact = None
    if winner is not None and winner.artifact is not None:
        artifact = copy_artifact(winner.artifact, out, evaluation.model.name)
    manifest = out / "manifest.json"
    data = {**manifest_dict(evaluation, winner, reason, artifact, config, tolerance, options), **(extra or {})}
    manifest.write_text(json.dumps(data, indent=2, default=str))
    (out / "summary.txt").write_text(summary_text(evaluation, winner, reason, artifact, data.get("measured", True)))
    from edgetune.report import write_compile_report

    write_compile_report(out / "report.html", data)
    return artifact, manifest
