"""The deployment phase of a trial: prune and quantize the trained network through the compile
pipeline's own Lowerings, then score what would actually ship.

A trial's ``deploy`` choices (precision, prune ratio) pick one ``CandidatePlan`` of
``edgetune.pipeline.plans_for`` (e.g. ``prune -> onnx -> ort-int8-static``); ``build_artifact``
runs its lowerings (torch-pruning with distillation, ONNX export, static int8 calibration on the
training split). The artifact is then run by the target's Runner: validation accuracy of the
lowered model, and -- for precisions the fp32 latency predictor cannot describe -- its latency,
*measured* (labelled so). The fp32 latency of a pruned network is *predicted* from the graph of
the pruned module (exported at the data's input size, with the resize to the candidate's resolution).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from edgetune._lazy import require
from edgetune.data import Dataset
from edgetune.errors import ConfigError, EdgetuneError, reraise_as
from edgetune.predict import Graph
from edgetune.targets import Target

# short but repeated timing: a trial's latency is a ranking signal; the top-k are re-measured longer
TRIAL_BENCH = {"budget_s": 0.5, "min_repeats": 20, "warmup_runs": 5, "warmup_s": 0.05}


@dataclass
class Deployment:
    """What a trial ships: its accuracy after lowering, and its latency with the source named."""

    precision: str
    prune_ratio: float
    plan: str
    accuracy: float
    graph: Graph  # fp32 graph of the (pruned) network, fed the data's input size
    artifact: Optional[Path] = None
    measured_ms: Optional[float] = None  # the lowered artifact, timed on the target
    module: Any = field(default=None, repr=False)
    details: dict[str, Any] = field(default_factory=dict)


def deploy_precisions(target: Target, runtime: str) -> list[str]:
    """Precisions the compile pipeline can build for ``runtime`` on ``target`` (fp32 first)."""
    from edgetune.pipeline import plans_for

    found = {p.precision for p in plans_for(target, [runtime])}
    return sorted(found, key=lambda p: (p != "fp32", p))


def plan_for(target: Target, runtime: str, precision: str, prune_ratio: float, seed: int, train_epochs: int) -> Any:
    """The compile pipeline's plan for this precision and prune ratio (the first variant, e.g. static int8)."""
    from edgetune.pipeline import CompileOptions, plans_for

    options = CompileOptions(prune_ratios=(prune_ratio,) if prune_ratio > 0 else (), train_epochs=train_epochs, seed=seed)
    for plan in plans_for(target, [runtime], options):
        if plan.precision == precision and (("prune" in plan.lowerings) == (prune_ratio > 0)):
            return plan
    raise ConfigError(f"runtime {runtime} on {target.name} has no {precision} build; "
                      f"valid precisions: {', '.join(deploy_precisions(target, runtime))}")


def export_graph(module: Any, shape: tuple[int, ...], workdir: Path) -> Graph:
    """The predictor's view of a (pruned) torch module: ONNX export at the data's input ``shape`` (so with
    the resize to the network's resolution, as deployed), read back."""
    from edgetune.models._load import export_module_to_onnx
    from edgetune.predict import graph_from_onnx

    path = workdir / "net.onnx"
    export_module_to_onnx(module.eval(), tuple(shape), path, "search")
    graph, _skipped = graph_from_onnx(path)
    return graph


def deploy(module: Any, graph: Graph, deploy_choice: dict[str, Any], target: Target, runtime: str,
           train: Dataset, val: Dataset, seed: int, save_as: Path, fine_tune_epochs: int = 1,
           threads: Optional[int] = None) -> Deployment:
    """Lower the trained ``module`` per ``deploy_choice`` and score the result (see module docstring).

    A measured latency runs on ``threads`` (default: the target's), the predictor's thread count in a search.

    Writes ``save_as`` + ``.pruned.pt2`` (the pruned network, for the final compile) and
    ``.<precision>.onnx`` (the lowered artifact) when the choice differs from fp32/unpruned.
    """
    from edgetune.lowering import CalibrationData, LoweringContext
    from edgetune.models import load_model
    from edgetune.pipeline import build_artifact

    precision = str(deploy_choice.get("precision", "fp32"))
    ratio = float(deploy_choice.get("prune_ratio", 0.0))
    if precision == "fp32" and ratio == 0:
        return Deployment(precision, ratio, "as trained", _torch_accuracy(module, val), graph, module=module)
    plan = plan_for(target, runtime, precision, ratio, seed, fine_tune_epochs)
    shape = (1, *train.x.shape[1:])
    with tempfile.TemporaryDirectory(prefix="edgetune-deploy-") as tmp:
        work = Path(tmp)
        loaded = load_model(module.eval(), shape, work / "input")
        context = LoweringContext(calibration=CalibrationData(train.x[:128], f"{train.name} (training split)"),
                                  train=train, eval=val, options={"calib_samples": 128})
        cache: dict[Any, Any] = {}
        # the pipeline's skip/lowering failures become one trial's failure
        with reraise_as(EdgetuneError, f"cannot build {plan.name}", 200):
            artifact = build_artifact(plan, loaded, target, work / "build", context, cache)
        pruned = module
        details: dict[str, Any] = {"lowerings": list(plan.lowerings)}
        if ratio > 0:
            step = next(a for a, _m in cache.values() if a.format == "torch")
            pruned = step.module
            details.update({k: step.details[k] for k in ("params_before", "params_after", "macs_before", "macs_after")
                            if k in step.details})
            Path(f"{save_as}.pruned.pt2").write_bytes(step.path.read_bytes())
            graph = export_graph(pruned, shape, work)
        accuracy, measured = _run_artifact(artifact.path, loaded.inputs[0].name, target, runtime, val,
                                           measure=precision != "fp32", threads=threads or target.thread_count)
        keep = Path(f"{save_as}.{precision}{artifact.path.suffix}")
        keep.write_bytes(artifact.path.read_bytes())
        details["size_bytes"] = artifact.size_bytes
    return Deployment(precision, ratio, plan.name, accuracy, graph, keep, measured, pruned, details)


def _torch_accuracy(module: Any, val: Dataset) -> float:
    torch = require("torch", "torch")
    module.eval()
    with torch.no_grad():
        pred = module(torch.from_numpy(val.x)).argmax(1).numpy()
    return float(np.mean(pred == val.y))


def _run_artifact(path: Path, input_name: str, target: Target, runtime: str, val: Dataset,
                  measure: bool, threads: int) -> tuple[float, Optional[float]]:
    """Top-1 of the lowered artifact on the validation split (one sample a run) and its measured latency."""
    from edgetune.bench import BenchConfig, isolated
    from edgetune.bench import measure as time_session
    from edgetune.runners import runner_for

    runner = isolated(runner_for(runtime, target))
    with runner.load(path, threads) as session:
        outputs = session.run_many([{input_name: val.x[i:i + 1]} for i in range(len(val.x))])
        correct = sum(int(np.argmax(out[0]) == val.y[i]) for i, out in enumerate(outputs))  # type: ignore[index, misc]
        measured = None
        if measure:
            timing = time_session(session, {input_name: val.x[:1]}, BenchConfig(**TRIAL_BENCH))  # type: ignore[arg-type]
            measured = timing.stats.min_ms  # the fastest run, as the predictor and the final check report
    return correct / len(val.x), measured
