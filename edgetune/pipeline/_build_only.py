"""`compile --build-only`: build every candidate's artifact without reaching the target (cross-compile now,
measure later with `edgetune bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from edgetune.bench import environment, git_commit, new_run_id
from edgetune.errors import EdgetuneError, one_line
from edgetune.lowering import LoweringContext
from edgetune.models import LoadedModel, sha256_of
from edgetune.pipeline._candidates import CandidatePlan, CandidateResult
from edgetune.pipeline._evaluate import BuildCache, CandidateSkipped, Evaluation, Progress, build_artifact
from edgetune.pipeline._qat import split_qat
from edgetune.targets import Target

BUILT = "built"
NOT_MEASURED = "not measured (--build-only)"
NOT_MEASURED_WHY = "not measured (--build-only): measure the artifacts on the target with `edgetune bench`"
QAT_NOT_JUDGED = ("quantization-aware training is built where post-training int8 misses the accuracy budget, "
                  "which --build-only does not measure (use --qat always to build it)")


def build_candidates(model: LoadedModel, target: Target, plans: Sequence[CandidatePlan], workdir: Path, threads: int,
                     context: LoweringContext, qat: str, progress: Optional[Progress] = None) -> Evaluation:
    """Build every plan's artifact for ``target`` (nothing is loaded, run or timed); a failure never stops the others."""
    say = progress or (lambda _msg: None)
    first_round, deferred = split_qat(plans, qat)
    cache: BuildCache = {}
    results = []
    for plan in first_round:
        say(f"building {plan.name}")
        results.append(_build_one(plan, model, target, workdir, context, cache))
        say(f"{plan.name}: {results[-1].status}{' - ' + results[-1].reason if results[-1].status != BUILT else ''}")
    results.extend(CandidateResult(plan, status="skipped", reason=QAT_NOT_JUDGED) for plan in deferred)
    return Evaluation(new_run_id(git_commit()), model, target, threads, results, "", environment(target, threads, {}),
                      None)


def _build_one(plan: CandidatePlan, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext,
               cache: BuildCache) -> CandidateResult:
    result = CandidateResult(plan)
    try:
        result.artifact = build_artifact(plan, model, target, workdir, context, cache)
        result.artifact_hash = sha256_of(result.artifact.path)
        result.details = dict(result.artifact.details)
        result.status, result.reason = BUILT, NOT_MEASURED
    except CandidateSkipped as skip:
        result.status, result.reason = "skipped", str(skip)
    except EdgetuneError as exc:
        result.status, result.reason = "failed", str(exc)
    except Exception as exc:  # a backend bug must not take the other candidates down
        result.status, result.reason = "failed", one_line(exc, typed=True)
    return result


def first_built(results: Sequence[CandidateResult], runtimes: Sequence[str] = ()) -> Optional[CandidateResult]:
    """The first built candidate (of one of ``runtimes``, when given): what --emit writes without a measured winner."""
    for result in results:
        if result.status == BUILT and (not runtimes or result.plan.runtime in runtimes):
            return result
    return None
