"""The library functions behind `edgetune compile` and `edgetune bench`."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from edgetune.bench import BenchConfig, ResultsStore, git_commit, new_run_id
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.lowering import LoweringContext, Transport
from edgetune.models import LoadedModel, load_model
from edgetune.models._spec import ShapeArg
from edgetune.pipeline._build_only import BUILT, NOT_MEASURED_WHY, build_candidates, first_built
from edgetune.pipeline._candidates import CandidatePlan, CandidateResult, plans_for
from edgetune.pipeline._data import CompileData, prepare_data
from edgetune.pipeline._emit_c import C_RUNTIMES, check_emit, write_c_sources
from edgetune.pipeline._evaluate import Evaluation, EvaluationRequest, Progress, evaluate
from edgetune.pipeline._fidelity import Tolerance
from edgetune.pipeline._options import CompileOptions
from edgetune.pipeline._output import artifact_file_name, copy_artifact, write_outputs
from edgetune.pipeline._prune_search import prune_to_latency, with_searched_ratio
from edgetune.pipeline._qat import qat_skip_reason, qat_trigger, split_qat
from edgetune.pipeline._select import select_winner
from edgetune.runners import require_runnable
from edgetune.targets import Target, load_target

ModelArg = Union[str, Path, Any]


class NoViableCandidateError(EdgetuneError):
    """Every candidate failed, was skipped or did not match the reference; ``result`` holds them all."""

    def __init__(self, message: str, result: Optional["CompileResult"] = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class CompileResult:
    """Outcome of compile_model: the winner, every candidate, and where things were written."""

    evaluation: Evaluation
    winner: Optional[CandidateResult]
    reason: str
    output_dir: Path
    artifact: Optional[Path]
    manifest_path: Path
    measured: bool = True  # False for --build-only: artifacts built, nothing run on the target
    built_artifacts: dict[str, str] = field(default_factory=dict)  # --build-only: candidate -> file under output_dir
    emitted: Optional[dict[str, Any]] = None  # --emit c: the sources written and the arena they reserve


def _resolve_target(target: Union[str, Target], targets_dir: Optional[Path], rpc_tracker: Optional[str] = None) -> Target:
    resolved = target if isinstance(target, Target) else load_target(target, targets_dir)
    require_runnable(resolved, rpc_tracker)
    if resolved.transport == "rpc":  # issue 9: an unreachable tracker or unknown key fails before any build
        from edgetune.runners._rpc import check_boards

        check_boards(resolved, rpc_tracker)
    return resolved


def _threads(target: Target, threads: Optional[int]) -> int:
    if threads is None:
        return target.thread_count
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    return threads


def benchmark(
    model: ModelArg,
    target: Union[str, Target] = "host-cpu",
    runtimes: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    input_shape: ShapeArg = None,
    config: BenchConfig = BenchConfig(),
    tolerance: Tolerance = Tolerance(),
    results_path: Union[str, Path, None] = None,
    targets_dir: Optional[Path] = None,
    progress: Optional[Progress] = None,
    precisions: Optional[Sequence[str]] = None,
    options: Optional[CompileOptions] = None,
    sessions: int = 1,
    run_id: Optional[str] = None,
    labels: Optional[dict[str, Any]] = None,
    rpc_tracker: Optional[str] = None,
    per_layer: bool = False,
) -> Evaluation:
    """Measure a model on a target with each (or the given) runtime and store every measurement.

    By default the model is measured as given (fp32 candidates); ``precisions`` adds others,
    built with ``options`` (calibration data etc.) as in compile_model. ``sessions`` > 1 loads
    each artifact that many times and stores one row per session (what the regression gate
    needs to see load-to-load noise); ``labels`` (suite, entry) are stored with every row.
    An rpc target is measured on its boards through ``rpc_tracker`` (HOST:PORT, default
    $EDGETUNE_RPC_TRACKER). ``per_layer`` adds each timed candidate's per-layer profile (``result.layers``).
    """
    if sessions < 1:
        raise ConfigError(f"sessions must be at least 1, got {sessions}")
    options = options or CompileOptions()
    resolved = _resolve_target(target, targets_dir, rpc_tracker)  # issue 9: rpc targets need a tracker
    if precisions is None:  # the model as given; int8-only devices (NPUs, MCUs) get their int8 build
        precisions = ("fp32",) if "fp32" in resolved.precisions else tuple(resolved.precisions)
    plans = [p for p in plans_for(resolved, runtimes, options) if p.precision in precisions]
    if not plans:
        raise ConfigError(
            f"no candidate for precision(s) {', '.join(precisions)} on target '{resolved.name}' "
            f"(it supports {', '.join(resolved.precisions)})"
        )
    with tempfile.TemporaryDirectory(prefix="edgetune-bench-") as tmp:
        loaded = _load(model, input_shape, Path(tmp) / "model")
        prepared = _prepare(loaded, plans, options, default_profiles_dir(resolved.name), rpc_tracker, progress)
        evaluation = _measure(loaded, resolved, plans, Path(tmp), _threads(resolved, threads), options, config,
                              tolerance, results_path, progress, prepared, run_id, sessions, labels)
        if per_layer:  # the artifacts live in ``tmp``: profile before it goes
            _profile_layers(evaluation, rpc_tracker, progress)
        return evaluation


def compile_model(
    model: ModelArg,
    target: Union[str, Target] = "host-cpu",
    output_dir: Union[str, Path] = "edgetune-out",
    runtimes: Optional[Sequence[str]] = None,
    threads: Optional[int] = None,
    input_shape: ShapeArg = None,
    config: Optional[BenchConfig] = None,
    tolerance: Tolerance = Tolerance(),
    results_path: Union[str, Path, None] = None,
    targets_dir: Optional[Path] = None,
    progress: Optional[Progress] = None,
    options: Optional[CompileOptions] = None,
    profiles_dir: Optional[Path] = None,
    rpc_tracker: Optional[str] = None,
    per_layer: bool = False,
    build_only: bool = False,
    emit: Optional[str] = None,
) -> CompileResult:
    """Build every candidate (runtime x precision x pruning level), measure each on the target,
    and keep the best one by ``options.objective`` among those within the accuracy budget.

    With ``options.prune_to_latency_ms`` the prune ratio is first searched on the target (see
    _prune_search; InfeasibleError when even the largest ratio misses the goal) and becomes one
    more pruning level. With ``options.qat`` "auto", quantization-aware training runs only where
    post-training int8 missed the accuracy budget.

    Writes ``output_dir`` with the chosen artifact, ``manifest.json``, ``summary.txt`` and
    ``report.html``. Raises NoViableCandidateError (after writing them) when none qualifies.
    An rpc target is measured on its boards through ``rpc_tracker`` (HOST:PORT, default
    $EDGETUNE_RPC_TRACKER). ``per_layer`` profiles the winner's layers into ``output_dir/per-layer/`` and the report.

    ``build_only`` builds every candidate into ``output_dir/artifacts/`` without reaching the
    target (no tracker, no board, nothing run or timed; the manifest says "not measured").
    ``emit="c"`` (MCU and Ethos-U targets) also writes ``model_data.h``/``model_data.cc`` for the
    winner (with ``build_only``: the first tflm/vela candidate built).
    """
    options = options or CompileOptions()
    config = config or BenchConfig(budget_s=options.budget_s)
    resolved = _compile_target(target, targets_dir, rpc_tracker, options, build_only)
    check_emit(emit, resolved)
    plans = plans_for(resolved, runtimes, options)
    out = _output_folder(Path(output_dir))
    loaded = _load(model, input_shape, out / "candidates" / "_input")
    thread_count = _threads(resolved, threads)
    prepared = _prepare(loaded, plans, options, profiles_dir or default_profiles_dir(resolved.name), rpc_tracker,
                        progress)
    job = _CompileJob(loaded, resolved, out, thread_count, options, config, tolerance, prepared, progress, rpc_tracker)
    if build_only:
        return _compile_build_only(job, plans, emit)
    return _compile_measured(job, plans, runtimes, results_path, per_layer, emit)


@dataclass(frozen=True)
class _CompileJob:
    """What the steps of one compile share: the loaded model, the target, where outputs go, how to build and judge."""

    model: LoadedModel
    target: Target
    out: Path
    threads: int
    options: CompileOptions
    config: BenchConfig
    tolerance: Tolerance
    prepared: tuple[CompileData, LoweringContext]
    progress: Optional[Progress]
    rpc_tracker: Optional[str]


def _compile_target(target: Union[str, Target], targets_dir: Optional[Path], rpc_tracker: Optional[str],
                    options: CompileOptions, build_only: bool) -> Target:
    """The target to compile for; to build only, it need not be reachable (so nothing can be searched on it)."""
    if build_only and options.prune_to_latency_ms is not None:
        raise ConfigError("--prune-to-latency-ms measures on the target, so it cannot go with --build-only; "
                          "use --prune RATIO")
    # issue 9: rpc targets need a tracker -- except to build only
    return _build_target(target, targets_dir) if build_only else _resolve_target(target, targets_dir, rpc_tracker)


def _compile_measured(job: _CompileJob, plans: Sequence[CandidatePlan], runtimes: Optional[Sequence[str]],
                      results_path: Union[str, Path, None], per_layer: bool, emit: Optional[str]) -> CompileResult:
    """compile_model on the target: the prune ratio searched when asked, every candidate timed, the best kept."""
    candidates_dir = job.out / "candidates"
    search = None
    if job.options.prune_to_latency_ms is not None:
        search = prune_to_latency(job.model, job.target, job.options, runtimes, candidates_dir / "_prune_search",
                                  job.threads, job.prepared[1], job.config)
        plans = plans_for(job.target, runtimes, with_searched_ratio(job.options, search))
    evaluation = _measure(job.model, job.target, plans, candidates_dir, job.threads, job.options, job.config,
                          job.tolerance, results_path, job.progress, job.prepared, None, job.options.sessions, None)
    evaluation.prune_search = search.to_dict() if search else None
    winner, reason = select_winner(evaluation.results, job.options.objective)
    if per_layer and winner is not None:
        _profile_layers(evaluation, job.rpc_tracker, job.progress, winner.name, job.out / "per-layer")
    winner_file = artifact_file_name(job.model.name, winner.artifact.format) if winner and winner.artifact else ""
    emitted = _emit(emit, winner, job.target, job.out, winner_file)
    artifact, manifest = write_outputs(job.out, evaluation, winner, reason, job.config, job.tolerance, job.options,
                                       {"emitted": emitted} if emit else None)
    result = CompileResult(evaluation, winner, reason, job.out, artifact, manifest, emitted=emitted)
    if winner is None:
        raise NoViableCandidateError(f"{reason}; details in {manifest}", result)
    return result


def _output_folder(out: Path) -> Path:
    """``out``, with an empty candidates/ and artifacts/ (those of an earlier compile into it are removed)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path '{out}' exists and is not a folder; choose another -o")
    for name in ("candidates", "artifacts"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    (out / "candidates").mkdir(parents=True)
    return out


def _build_target(target: Union[str, Target], targets_dir: Optional[Path]) -> Target:
    """The target to build for: a board behind a tracker, a GPU or a simulated device need not be reachable."""
    return target if isinstance(target, Target) else load_target(target, targets_dir)


def _emit(emit: Optional[str], chosen: Optional[CandidateResult], target: Target, out: Path,
          model_file: str) -> Optional[dict[str, Any]]:
    if emit is None:
        return None
    if chosen is None:
        return {"written": False, "why": "no candidate to write sources for"}
    return {"written": True, **write_c_sources(chosen, target, out, model_file)}



def _compile_build_only(job: _CompileJob, plans: Sequence[CandidatePlan], emit: Optional[str]) -> CompileResult:
    """compile_model with ``build_only``: every artifact into out/artifacts/, a manifest that says "not measured"."""
    data, context = job.prepared
    out, target = job.out, job.target
    evaluation = build_candidates(job.model, target, plans, out / "candidates", job.threads, context, job.options.qat,
                                  job.progress)
    evaluation.warnings.extend(data.warnings)
    evaluation.data.update(data.describe())
    (out / "artifacts").mkdir()
    built = {r.name: f"artifacts/{copy_artifact(r.artifact, out / 'artifacts', f'{job.model.name}-{r.name}').name}"
             for r in evaluation.results if r.status == BUILT and r.artifact is not None}
    chosen = first_built(evaluation.results, C_RUNTIMES)
    emitted = _emit(emit, chosen, target, out, Path(built[chosen.name]).name if chosen else "")
    reason = NOT_MEASURED_WHY if built else "no candidate could be built"
    extra = {"measured": False, "built_artifacts": built, **({"emitted": emitted} if emit else {})}
    _, manifest = write_outputs(out, evaluation, None, reason, job.config, job.tolerance, job.options, extra)
    result = CompileResult(evaluation, None, reason, out, None, manifest, False, built, emitted)
    if not built:
        raise NoViableCandidateError(f"no candidate could be built for {target.name}; details in {manifest}", result)
    return result


def _prepare(loaded: LoadedModel, plans: Sequence[CandidatePlan], options: CompileOptions, profiles_dir: Path,
             rpc_tracker: Optional[str], progress: Optional[Progress]) -> tuple[CompileData, LoweringContext]:
    """Data for calibration/judging/training and the lowering context every candidate is built in."""
    say = progress or (lambda _msg: None)
    data = prepare_data(loaded, options, needs_calibration=any(p.precision == "int8" for p in plans))
    for warning in data.warnings:
        say(f"warning: {warning}")
    context = LoweringContext(calibration=data.calibration, train=data.train, eval=data.eval,
                              profiles_dir=profiles_dir, progress=say, transport=Transport(rpc_tracker))
    return data, context


def _measure(loaded: LoadedModel, target: Target, plans: Sequence[CandidatePlan], workdir: Path, threads: int,
             options: CompileOptions, config: BenchConfig, tolerance: Tolerance, results_path: Union[str, Path, None],
             progress: Optional[Progress], prepared: tuple[CompileData, LoweringContext], run_id: Optional[str],
             sessions: int, labels: Optional[dict[str, Any]]) -> Evaluation:
    """What compile and bench share: the measured candidates, QAT deferred to where post-training int8 fell short."""
    data, context = prepared
    first_round, deferred = split_qat(plans, options.qat)
    with ResultsStore(results_path) as store:
        evaluation = evaluate(EvaluationRequest(
            loaded, target, first_round, workdir, threads, run_id or new_run_id(git_commit()), config, tolerance,
            store, progress, context, quality=data.quality, max_accuracy_drop=options.max_accuracy_drop,
            repeat_sessions=sessions, labels=labels, deferred=deferred, skip_deferred=qat_skip_reason,
        ))
        if evaluation.interrupted:  # what was timed is stored; compile and bench stop as on any Ctrl-C
            raise KeyboardInterrupt
    for result in evaluation.results:
        if result.plan in deferred and result.status != "skipped":
            result.details["qat_because"] = qat_trigger(result.plan, evaluation.results)
    evaluation.warnings.extend(data.warnings)
    evaluation.data.update(data.describe())
    return evaluation


def _profile_layers(evaluation: Evaluation, rpc_tracker: Optional[str], progress: Optional[Progress],
                    only: Optional[str] = None, folder: Optional[Path] = None) -> None:
    """Per-layer profiles of the timed candidates (or of ``only``) on the inputs they were timed with."""
    from edgetune.bench import random_inputs
    from edgetune.pipeline._layers import profile_layers

    feeds = random_inputs(evaluation.model.inputs, seed=0)[0]
    profiles = profile_layers(evaluation.results, evaluation.target, evaluation.threads, feeds, rpc_tracker, progress,
                              only)
    if folder is not None and profiles:
        from edgetune.report._layers import write_layers_report

        write_layers_report(profiles, folder, title=f"{evaluation.model.name} on {evaluation.target.name}: per layer")


def default_profiles_dir(target: str) -> Path:
    """Where ``target``'s profiles and TVM tuning records live: ``$EDGETUNE_PROFILES/<target>``, else the user's
    data folder (``~/.local/share/edgetune/profiles/<target>``), seeded from the profiles shipped with edgetune."""
    from edgetune._locations import profiles_dir

    return profiles_dir(target)


def _load(model: ModelArg, input_shape: ShapeArg, workdir: Path) -> LoadedModel:
    return load_model(model, input_shape=input_shape, workdir=workdir)
