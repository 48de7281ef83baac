"""The rows one evaluation stores: one per candidate that never reached timing, one per timing session."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from edgetune.bench import MeasurementRecord, ResultsStore, Timing, fingerprint_hash, keep_artifact, kept_root
from edgetune.models import LoadedModel
from edgetune.pipeline._candidates import CandidateResult
from edgetune.runners import runner_registry
from edgetune.targets import Target


class EvaluationRows:
    """Writes an evaluation's measurements to ``store`` (nothing when it is None), each row committed at once."""

    def __init__(self, store: Optional[ResultsStore], run_id: str, model: LoadedModel, target: Target, threads: int,
                 env: dict[str, Any], labels: Optional[dict[str, Any]]) -> None:
        self.store, self.run_id, self.model, self.target, self.threads = store, run_id, model, target, threads
        self.env, self.labels = env, labels

    def store_result(self, result: CandidateResult, session_index: Optional[int] = None) -> None:
        """One row for ``result`` as it stands (its pooled timing, if any)."""
        if self.store is not None:
            result.measurement_id = self.store.append(self.record(result, session_index))

    def store_session(self, result: CandidateResult, timing: Timing, index: int, sessions: int) -> None:
        """One row per timing session, not the pool; the first local session also keeps the artifact."""
        if self.store is None:
            return
        if index == 0 and self.target.transport == "local":
            keep_for_retime(self.store, result, self.model)
        this_session = replace(result, timing=timing)
        result.measurement_id = self.store.append(self.record(this_session, index if sessions > 1 else None))

    def record(self, result: CandidateResult, session_index: Optional[int]) -> MeasurementRecord:
        fingerprint = {**self.env, "artifact_sha256": result.artifact_hash}
        timing = result.timing
        return MeasurementRecord(
            run_id=self.run_id,
            target=self.target.name,
            candidate=result.name,
            runtime=result.plan.runtime,
            precision=result.plan.precision,
            model_name=self.model.name,
            model_hash=self.model.sha256,
            threads=self.threads,
            status=result.status,
            fingerprint=fingerprint,
            fingerprint_hash=fingerprint_hash(self.env),
            artifact_hash=result.artifact_hash,
            artifact_size_bytes=result.artifact.size_bytes if result.artifact else None,
            simulated=self.target.simulated,
            error=result.reason or None,
            stats=timing.stats.to_dict() if timing else {},
            converged=timing.converged if timing else None,
            peak_rss_mb=result.peak_rss_mb,
            rss_delta_mb=result.rss_delta_mb,
            load_ms=result.load_ms,
            build_s=result.artifact.build_s if result.artifact else None,
            samples_ms=timing.samples_ms if timing else (),
            runs_per_sample=timing.runs_per_sample if timing else 1,
            suite=(self.labels or {}).get("suite"),
            entry=(self.labels or {}).get("entry"),
            session_index=session_index,
            accuracy=result.accuracy,
        )


def keep_for_retime(store: ResultsStore, result: CandidateResult, model: LoadedModel) -> None:
    """Keep a timed artifact beside the store, so the gate can later re-time it beside another run's."""
    if result.artifact is None or result.artifact_hash is None or not runner_registry[result.plan.runtime].host_timed:
        return
    try:
        keep_artifact(kept_root(store.path), result.artifact_hash, result.artifact.path, result.plan.runtime,
             [t.to_dict() for t in model.inputs])
    except OSError as exc:  # the measurement is stored either way; only a later --retime misses it
        result.details["kept_artifact_error"] = str(exc)
