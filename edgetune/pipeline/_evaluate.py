"""Build every candidate, check it against the reference, time them interleaved, store the rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from edgetune.bench import (
    BenchConfig,
    WorkerSession,
    isolated,
    measurement_mode,
    MeasurementRecord,
    ResultsStore,
    Timing,
    CpuShares,
    MachineWatch,
    current_rss_mb,
    environment,
    keep_artifact,
    kept_root,
    fingerprint_hash,
    latency_stats,
    measure_interleaved,
    peak_rss_mb,
    random_inputs,
    reset_peak_rss,
)
from edgetune.errors import EdgetuneError, RunnerError
from edgetune.lowering import Artifact, LoweringContext, derive, get_lowering
from edgetune.models import LoadedModel, sha256_of
from edgetune.pipeline._accuracy import QualityData, first_outputs, judge
from edgetune.pipeline._candidates import CandidatePlan, CandidateResult
from edgetune.pipeline._fidelity import Tolerance, compare_outputs
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
    """Build, check and time every plan; a candidate's failure never stops the others.

    fp32 unpruned candidates must match the reference within ``tolerance``; every candidate
    judged on ``quality`` data must stay within ``max_accuracy_drop`` points of the reference.
    ``deferred`` plans are considered after every plan was built and judged: ``skip_deferred``
    sees those results and returns why a deferred plan is not worth building ("" builds it).
    All built candidates are then timed together, interleaved.
    """
    say = progress or (lambda _msg: None)
    feeds = random_inputs(model.inputs, seed=0, batches=CHECK_BATCHES)
    say("running the fp32 reference (ONNX Runtime)")
    reference, reference_logits = _reference_outputs(model, feeds, threads, quality)
    reference_name = "onnxruntime-fp32 on the input model" if reference is not None else ""
    context = context or LoweringContext(progress=say)
    cache: BuildCache = {}
    results: list[CandidateResult] = []
    sessions: dict[str, Session] = {}
    runners: dict[str, Runner] = {}  # issue 9: one per runtime, so that remote sessions share a key's boards
    versions: dict[str, str] = {}

    def rounds() -> Iterator[tuple[CandidatePlan, str]]:
        # a generator, so that skip_deferred runs only once the first round's results are judged
        yield from ((plan, "") for plan in plans)
        for plan in deferred:
            yield plan, skip_deferred(plan, results) if skip_deferred else ""

    try:
        for plan, skip_reason in rounds():
            result = CandidateResult(plan)
            results.append(result)
            if skip_reason:
                result.status, result.reason = "skipped", skip_reason
                say(f"{plan.name}: skipped - {skip_reason}")
                continue
            say(f"building {plan.name}")
            try:
                result.artifact = build_artifact(plan, model, target, workdir, context, cache)
                result.artifact_hash = sha256_of(result.artifact.path)
                if plan.runtime not in runners:
                    runners[plan.runtime] = isolated(runner_for(plan.runtime, target, context.transport.rpc_tracker, say))
                runner = runners[plan.runtime]
                versions.update(runner.versions())
                session, baseline_mb = _load(runner, result, threads)
                sessions[plan.name] = session  # closed below on every path
                outputs = session.run_many(feeds)
                _memory(session, result, baseline_mb)
                result.measurement = measurement_mode(session, threads)
                result.details = dict(result.artifact.details)
                logits = first_outputs(session, quality.x, model.inputs[0].name) if quality is not None else None
                if reference is None:  # a TFLite input: its own runtime is the reference
                    reference, reference_logits = outputs, logits
                    reference_name = f"{plan.name} on the input model"
                result.fidelity = compare_outputs(outputs, reference, tolerance, reference_name)
                if logits is not None and reference_logits is not None and quality is not None:
                    result.accuracy = judge(logits, reference_logits, quality, max_accuracy_drop)
                result.status, result.reason = _verdict(plan, result, tolerance)
            except CandidateSkipped as skip:
                result.status, result.reason = "skipped", str(skip)
            except EdgetuneError as exc:
                result.status, result.reason = "failed", str(exc)
            except Exception as exc:  # a backend bug must not take the other candidates down
                result.status, result.reason = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            if result.status not in ("ok", "rejected") and plan.name in sessions:
                sessions.pop(plan.name).close()
            say(f"{plan.name}: {result.status}{' - ' + result.reason if result.reason else ''}")
        env = environment(target, threads, versions)
        by_name = {r.name: r for r in results}
        for result in results:  # candidates that never reached timing are stored once, now
            if store is not None and result.status not in ("skipped",) and result.name not in sessions:
                result.measurement_id = store.append(_record(run_id, model, target, threads, result, env, labels, None))
        timed = _SessionTiming(sessions, runners, by_name, threads, config, say)
        interrupted = False
        for index in range(repeat_sessions if sessions else 0):
            timings = timed.round(index, repeat_sessions, feeds[0])
            interrupted = any(t.interrupted for t in timings.values())
            for name, timing in timings.items():
                _take_timing(by_name[name], timing, index, timed.pooled[name], config, interrupted)
                if store is not None and index == 0 and target.transport == "local":
                    _keep(store, by_name[name], model)
                if store is not None:
                    session_index = index if repeat_sessions > 1 else None
                    this_session = replace(by_name[name], timing=timing)  # one row per session, not the pool
                    by_name[name].measurement_id = store.append(
                        _record(run_id, model, target, threads, this_session, env, labels, session_index))
            for name, why in timed.failed.items():
                if by_name[name].status != "failed":
                    by_name[name].status, by_name[name].reason = "failed", why
                    if store is not None:
                        by_name[name].measurement_id = store.append(
                            _record(run_id, model, target, threads, by_name[name], env, labels, None))
            if interrupted:
                break
    finally:  # every worker process ends, also on Ctrl-C or a failure while building
        for session in sessions.values():
            session.close()
    if interrupted:
        raise KeyboardInterrupt
    noise = {"steal_share": max((n.steal for n in timed.noise), default=None),
             "other_processes_share": max((n.others for n in timed.noise), default=None),
             "warning": next((n.warning() for n in timed.noise if n.warning()), "")}
    return Evaluation(run_id, model, target, threads, results, reference_name, env,
                      store.location if store else None, interrupted, versions, noise=noise)


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


class _SessionTiming:
    """The timing rounds of one evaluation: loaded sessions timed interleaved, each round (after the first)
    on fresh loads; a session whose worker fails drops out with the reason in ``failed``."""

    def __init__(self, sessions: dict[str, Session], runners: dict[str, Runner], by_name: dict[str, CandidateResult],
                 threads: int, config: BenchConfig, say: Progress) -> None:
        self.sessions, self.runners, self.by_name = sessions, runners, by_name
        self.threads, self.config, self.say = threads, config, say
        self.pooled: dict[str, list[float]] = {name: [] for name in sessions}
        self.failed: dict[str, str] = {}
        self.noise: list[CpuShares] = []  # per round: the share of the machine that was not ours

    def round(self, index: int, count: int, feed: dict[str, np.ndarray]) -> dict[str, Timing]:
        if index > 0:  # a fresh load per session: load-to-load variation is part of the noise a gate must see
            self._reload()
        self.say(f"timing {len(self.sessions)} candidate(s) interleaved, up to {self.config.budget_s:g} s each"
                 + (f" (session {index + 1}/{count})" if count > 1 else ""))
        failures: dict[str, str] = {}
        watch = MachineWatch(s.info.pid for s in self.sessions.values() if isinstance(s, WorkerSession))
        timings = measure_interleaved(self.sessions, {n: feed for n in self.sessions}, self.config, failures)
        shares = watch.shares()
        if shares is not None:
            self.noise.append(shares)
        for name, why in failures.items():
            self.failed[name] = why
            self.sessions.pop(name).close()
        return timings

    def _reload(self) -> None:
        for name in list(self.sessions):
            self.sessions.pop(name).close()
            artifact = self.by_name[name].artifact
            assert artifact is not None
            try:
                self.sessions[name] = self.runners[self.by_name[name].plan.runtime].load(artifact.path, self.threads)
            except EdgetuneError as exc:
                self.failed[name] = str(exc)


def _keep(store: ResultsStore, result: CandidateResult, model: LoadedModel) -> None:
    """Keep a timed artifact beside the store, so the gate can later re-time it beside another run's."""
    if result.artifact is None or result.artifact_hash is None or not runner_registry[result.plan.runtime].host_timed:
        return
    try:
        keep_artifact(kept_root(store.path), result.artifact_hash, result.artifact.path, result.plan.runtime,
             [t.to_dict() for t in model.inputs])
    except OSError as exc:  # the measurement is stored either way; only a later --retime misses it
        result.details["kept_artifact_error"] = str(exc)


def _take_timing(result: CandidateResult, timing: Timing, index: int, pooled: list[float], config: BenchConfig,
                 interrupted: bool) -> None:
    pooled.extend(timing.samples_ms)
    result.timing = timing if index == 0 else _pool(result.timing, timing, pooled, config.ci_rel)
    if interrupted:
        result.status, result.reason = "interrupted", "timing was interrupted (Ctrl-C); samples so far are kept"


def _pool(first: Optional[Timing], latest: Timing, samples: list[float], ci_rel: float) -> Timing:
    """Statistics over every session's samples (what a table shows after several sessions)."""
    stats = latency_stats(samples)
    return Timing(stats, tuple(samples), stats.ci_rel <= ci_rel, latest.wall_s + (first.wall_s if first else 0.0),
                  latest.interrupted, latest.runs_per_sample, latest.stopped_early, (first.blocks if first else ()) + latest.blocks)


def _record(run_id: str, model: LoadedModel, target: Target, threads: int, result: CandidateResult,
            env: dict[str, Any], labels: Optional[dict[str, Any]], session_index: Optional[int]) -> MeasurementRecord:
    fingerprint = {**env, "artifact_sha256": result.artifact_hash}
    timing = result.timing
    return MeasurementRecord(
        run_id=run_id,
        target=target.name,
        candidate=result.name,
        runtime=result.plan.runtime,
        precision=result.plan.precision,
        model_name=model.name,
        model_hash=model.sha256,
        threads=threads,
        status=result.status,
        fingerprint=fingerprint,
        fingerprint_hash=fingerprint_hash(env),
        artifact_hash=result.artifact_hash,
        artifact_size_bytes=result.artifact.size_bytes if result.artifact else None,
        simulated=target.simulated,
        error=result.reason or None,
        stats=timing.stats.to_dict() if timing else {},
        converged=timing.converged if timing else None,
        peak_rss_mb=result.peak_rss_mb,
        rss_delta_mb=result.rss_delta_mb,
        load_ms=result.load_ms,
        build_s=result.artifact.build_s if result.artifact else None,
        samples_ms=timing.samples_ms if timing else (),
        runs_per_sample=timing.runs_per_sample if timing else 1,
        suite=(labels or {}).get("suite"),
        entry=(labels or {}).get("entry"),
        session_index=session_index,
        accuracy=result.accuracy,
    )
