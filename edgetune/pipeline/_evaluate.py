"""Build every candidate, check it against the reference, time them interleaved, store the rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from edgetune.bench import (
    BenchConfig,
    ResultsStore,
    WorkerSession,
    current_rss_mb,
    environment,
    isolated,
    measurement_mode,
    peak_rss_mb,
    random_inputs,
    reset_peak_rss,
)
from edgetune.errors import EdgetuneError, RunnerError, one_line
from edgetune.lowering import Artifact, LoweringContext, derive, get_lowering
from edgetune.models import LoadedModel, sha256_of
from edgetune.pipeline._accuracy import QualityData, first_outputs, judge
from edgetune.pipeline._candidates import CandidatePlan, CandidateResult
from edgetune.pipeline._fidelity import Tolerance, compare_outputs
from edgetune.pipeline._rows import EvaluationRows
from edgetune.pipeline._timing import SessionTiming
from edgetune.runners import Runner, Session, get_runner, runner_for, runner_registry
from edgetune.targets import Target

Progress = Callable[[str], None]
CHECK_BATCHES = 4


@dataclass
class Evaluation:
    """Every candidate of one run, with the environment they were measured in."""

    run_id: str
    model: LoadedModel
    target: Target
    threads: int
    results: list[CandidateResult]
    reference: str
    environment: dict[str, Any]
    results_path: Optional[str]
    interrupted: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # which data calibrated / judged / trained
    prune_search: Optional[dict[str, Any]] = None  # --prune-to-latency-ms: ratios tried, latencies, the choice
    noise: dict[str, Any] = field(default_factory=dict)  # how much of the machine was not ours while timing


def _reference_outputs(
    model: LoadedModel, feeds: list[dict[str, np.ndarray]], threads: int, quality: Optional[QualityData]
) -> tuple[Optional[list[list[np.ndarray]]], Optional[np.ndarray]]:
    if model.onnx_path is None:
        return None, None
    with isolated(get_runner("onnxruntime")).load(model.onnx_path, threads) as session:  # the parent loads no runtime
        outputs = session.run_many(feeds)
        logits = first_outputs(session, quality.x, model.inputs[0].name) if quality is not None else None
    return outputs, logits


BuildCache = dict[tuple[Any, ...], tuple[Artifact, LoadedModel]]


def build_artifact(plan: CandidatePlan, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext,
           cache: BuildCache) -> Artifact:
    """Run ``plan``'s lowerings on ``model`` (reusing ``cache``) and return the artifact its runtime loads."""
    runner_cls = runner_registry[plan.runtime]
    available = runner_cls.availability()
    if not available.ok:
        raise CandidateSkipped(f"runtime {plan.runtime}: {available.reason}")
    if target.transport == "rpc":  # boards behind an RPC tracker run the runtimes in REMOTE_RUNTIMES (TVM, ONNX Runtime, LiteRT)
        from edgetune.runners._rpc import remote_unsupported

        remote = remote_unsupported(plan.runtime)
        if remote:
            raise CandidateSkipped(remote)
    lowerings = [get_lowering(name) for name in plan.lowerings]
    for lowering in lowerings:
        available = lowering.availability()
        if not available.ok:
            raise CandidateSkipped(f"lowering {lowering.name}: {available.reason}")
    first = lowerings[0]
    if not first.accepts(model):
        raise CandidateSkipped(
            f"lowering {first.name} needs a {first.input_format} model and this one is {model.source_format} "
            f"(give the PyTorch model to get this candidate)"
        )
    options = plan.option_dict()
    plan_context = context.with_options(options)
    current, artifact = model, None
    key: tuple[Any, ...] = ()
    details: dict[str, Any] = {}  # every step's, so that e.g. a pruned candidate's manifest shows its fine-tuning
    for index, lowering in enumerate(lowerings):
        key += ((lowering.name, tuple((k, options.get(k)) for k in lowering.option_keys)),)
        if key in cache:
            artifact, current = cache[key]
            details.update(artifact.details)
            continue
        if not lowering.accepts(current):
            raise RunnerError(f"lowering {lowering.name} cannot take the {artifact.format if artifact else '?'} output of the step before it")
        folder = workdir / plan.name / f"{index}-{lowering.name}"
        folder.mkdir(parents=True, exist_ok=True)
        artifact = lowering.apply(current, target, folder, plan_context)
        current = derive(current, artifact, folder)
        cache[key] = (artifact, current)
        details.update(artifact.details)
    assert artifact is not None, "a plan has at least one lowering"
    if details != artifact.details:
        artifact = replace(artifact, details=details)
    if artifact.format != runner_cls.artifact_format:
        raise RunnerError(f"plan {plan.name} ends in {artifact.format} but {plan.runtime} runs {runner_cls.artifact_format}")
    return artifact


def _verdict(plan: CandidatePlan, result: CandidateResult, tolerance: Tolerance) -> tuple[str, str]:
    fidelity, accuracy = result.fidelity, result.accuracy
    assert fidelity is not None
    if plan.exact and not fidelity.passed:
        return "rejected", (
            f"fp32 outputs differ from the reference: max abs error {fidelity.max_abs_err:.3g} "
            f"(relative {fidelity.max_rel_err:.3g}) exceeds rtol={tolerance.rtol}"
        )
    if accuracy is not None and not accuracy["allowed"]:
        what = "accuracy" if accuracy["metric"] == "top1_accuracy" else "top-1 agreement with fp32"
        return "rejected", (
            f"{what} drops {accuracy['drop_points']:.2f} points, over the budget of {accuracy['max_drop_points']:g}"
        )
    return "ok", ""


class CandidateSkipped(Exception):
    """A candidate that cannot be tried here (missing library or input format)."""


def _no_progress(_message: str) -> None:
    pass


@dataclass(frozen=True)
class EvaluationRequest:
    """One evaluation: the candidates to build for a model and target, how to check and time them, where rows go.

    fp32 unpruned candidates must match the reference within ``tolerance``; every candidate
    judged on ``quality`` data must stay within ``max_accuracy_drop`` points of the reference.
    ``deferred`` plans are considered after every plan was built and judged: ``skip_deferred``
    sees those results and returns why a deferred plan is not worth building ("" builds it).
    ``repeat_sessions`` > 1 times every candidate on that many fresh loads (one stored row each).
    """

    model: LoadedModel
    target: Target
    plans: Sequence[CandidatePlan]
    workdir: Path
    threads: int
    run_id: str
    config: BenchConfig = field(default_factory=BenchConfig)
    tolerance: Tolerance = field(default_factory=Tolerance)
    store: Optional[ResultsStore] = None
    progress: Optional[Progress] = None
    context: Optional[LoweringContext] = None
    quality: Optional[QualityData] = None
    max_accuracy_drop: float = 1.0
    repeat_sessions: int = 1
    labels: Optional[dict[str, Any]] = None
    deferred: Sequence[CandidatePlan] = ()
    skip_deferred: Optional[Callable[[CandidatePlan, Sequence[CandidateResult]], str]] = None

    @property
    def say(self) -> Progress:
        return self.progress or _no_progress


def evaluate(request: EvaluationRequest) -> Evaluation:
    """Build, check and time every plan of ``request``; a candidate's failure never stops the others.

    All built candidates are timed together, interleaved. A Ctrl-C while timing ends the rounds: the
    result comes back with ``interrupted`` set, the samples so far kept and stored.
    """
    say = request.say
    feeds = random_inputs(request.model.inputs, seed=0, batches=CHECK_BATCHES)
    say("running the fp32 reference (ONNX Runtime)")
    checks = _CandidateChecks(request, feeds)
    try:
        results = checks.run()
        env = environment(request.target, request.threads, checks.versions)
        rows = EvaluationRows(request.store, request.run_id, request.model, request.target, request.threads, env,
                              request.labels)
        for result in results:  # candidates that never reached timing are stored once, now
            if result.status not in ("skipped",) and result.name not in checks.sessions:
                rows.store_result(result)
        timed = SessionTiming(checks.sessions, checks.runners, {r.name: r for r in results}, request.threads,
                              request.config, say)
        interrupted = timed.run(request.repeat_sessions, feeds[0], rows)
    finally:  # every worker process ends, also on Ctrl-C or a failure while building
        checks.close()
    return Evaluation(request.run_id, request.model, request.target, request.threads, results, checks.reference_name,
                      env, request.store.location if request.store else None, interrupted, checks.versions,
                      noise=timed.noise_summary())


def evaluate_candidates(
    model: LoadedModel,
    target: Target,
    plans: Sequence[CandidatePlan],
    workdir: Path,
    threads: int,
    run_id: str,
    config: BenchConfig = BenchConfig(),
    tolerance: Tolerance = Tolerance(),
    store: Optional[ResultsStore] = None,
    progress: Optional[Progress] = None,
    context: Optional[LoweringContext] = None,
    quality: Optional[QualityData] = None,
    max_accuracy_drop: float = 1.0,
    repeat_sessions: int = 1,
    labels: Optional[dict[str, Any]] = None,
    deferred: Sequence[CandidatePlan] = (),
    skip_deferred: Optional[Callable[[CandidatePlan, Sequence[CandidateResult]], str]] = None,
) -> Evaluation:
    """``evaluate`` with the request's fields as arguments (see EvaluationRequest)."""
    return evaluate(EvaluationRequest(model, target, plans, workdir, threads, run_id, config, tolerance, store, progress,
                                      context, quality, max_accuracy_drop, repeat_sessions, labels, deferred,
                                      skip_deferred))


class _CandidateChecks:
    """The build-and-check round: each plan built, loaded, run on the check inputs and judged against the
    reference; the sessions of candidates that pass stay loaded for timing (``close`` ends them all)."""

    def __init__(self, request: EvaluationRequest, feeds: list[dict[str, np.ndarray]]) -> None:
        self.request, self.feeds, self.say = request, feeds, request.say
        self.reference, self.reference_logits = _reference_outputs(request.model, feeds, request.threads,
                                                                   request.quality)
        self.reference_name = "onnxruntime-fp32 on the input model" if self.reference is not None else ""
        self.context = request.context or LoweringContext(progress=self.say)
        self.cache: BuildCache = {}
        self.results: list[CandidateResult] = []
        self.sessions: dict[str, Session] = {}
        self.runners: dict[str, Runner] = {}  # issue 9: one per runtime, so that remote sessions share a key's boards
        self.versions: dict[str, str] = {}

    def run(self) -> list[CandidateResult]:
        for plan, skip_reason in self._rounds():
            result = CandidateResult(plan)
            self.results.append(result)
            if skip_reason:
                result.status, result.reason = "skipped", skip_reason
                self.say(f"{plan.name}: skipped - {skip_reason}")
                continue
            self.say(f"building {plan.name}")
            try:
                self.check(plan, result)
            except CandidateSkipped as skip:
                result.status, result.reason = "skipped", str(skip)
            except EdgetuneError as exc:
                result.status, result.reason = "failed", str(exc)
            except Exception as exc:  # a backend bug must not take the other candidates down
                result.status, result.reason = "failed", _bug_reason(exc)
            if result.status not in ("ok", "rejected") and plan.name in self.sessions:
                self.sessions.pop(plan.name).close()
            self.say(f"{plan.name}: {result.status}{' - ' + result.reason if result.reason else ''}")
        return self.results

    def _rounds(self) -> Iterator[tuple[CandidatePlan, str]]:
        # a generator, so that skip_deferred runs only once the first round's results are judged
        yield from ((plan, "") for plan in self.request.plans)
        for plan in self.request.deferred:
            yield plan, self.request.skip_deferred(plan, self.results) if self.request.skip_deferred else ""

    def check(self, plan: CandidatePlan, result: CandidateResult) -> None:
        """Build, load and run one candidate; its outputs against the reference decide its status."""
        request = self.request
        result.artifact = build_artifact(plan, request.model, request.target, request.workdir, self.context, self.cache)
        result.artifact_hash = sha256_of(result.artifact.path)
        runner = self._runner(plan.runtime)
        self.versions.update(runner.versions())
        session, baseline_mb = _load(runner, result, request.threads)
        self.sessions[plan.name] = session  # closed on every path (run() or close())
        outputs = session.run_many(self.feeds)
        _memory(session, result, baseline_mb)
        result.measurement = measurement_mode(session, request.threads)
        result.details = dict(result.artifact.details)
        quality = request.quality
        logits = first_outputs(session, quality.x, request.model.inputs[0].name) if quality is not None else None
        if self.reference is None:  # a TFLite input: its own runtime is the reference
            self.reference, self.reference_logits = outputs, logits
            self.reference_name = f"{plan.name} on the input model"
        result.fidelity = compare_outputs(outputs, self.reference, request.tolerance, self.reference_name)
        if logits is not None and self.reference_logits is not None and quality is not None:
            result.accuracy = judge(logits, self.reference_logits, quality, request.max_accuracy_drop)
        result.status, result.reason = _verdict(plan, result, request.tolerance)

    def _runner(self, runtime: str) -> Runner:
        if runtime not in self.runners:
            self.runners[runtime] = isolated(runner_for(runtime, self.request.target, self.context.transport.rpc_tracker,
                                                        self.say))
        return self.runners[runtime]

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()


def _bug_reason(exc: Exception) -> str:
    """A backend's own exception as a one-line reason, its type first (there is no message to show for some)."""
    return f"{type(exc).__name__}: {one_line(exc, 300)}" if str(exc).strip() else f"{type(exc).__name__}: "


def _load(runner: Runner, result: CandidateResult, threads: int) -> tuple[Session, float]:
    """Load the candidate's artifact (its load time goes into ``result``); returns the session and the resident
    memory before the load, in MiB, of the process it loaded in."""
    assert result.artifact is not None
    reset_peak_rss()
    baseline = current_rss_mb()
    start = time.perf_counter()
    session = runner.load(result.artifact.path, threads)
    result.load_ms = (time.perf_counter() - start) * 1e3
    if isinstance(session, WorkerSession):  # its own process: the load without the process start, its own memory
        result.load_ms, baseline = session.info.load_ms, session.info.rss_before_mb
    return session, baseline


def _memory(session: Session, result: CandidateResult, baseline_mb: float) -> None:
    """Peak resident memory while loading and running the candidate, and what it added to ``baseline_mb``."""
    result.peak_rss_mb = session.peak_rss_mb() if isinstance(session, WorkerSession) else peak_rss_mb()
    result.rss_delta_mb = max(result.peak_rss_mb - baseline_mb, 0.0)
