"""The gate's second look: a baseline's and a candidate's artifacts timed together, interleaved.

Two runs taken minutes or days apart differ by the machine's drift as well as by the change under test.
On a shared VM that drifts 10-30% over minutes, the drift is often larger than the 5-10% a gate must catch,
and no interval built from each run's own samples can tell the two apart. Timing both sides' artifacts
now, each in an isolated worker, in alternating blocks, cancels what they share: both see the same minute
of the same machine. Each session loads both afresh, so load-to-load noise stays in the interval.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from edgetune.bench._compare import EntryComparison, compare
from edgetune.bench._harness import BenchConfig, measure_interleaved, random_inputs
from edgetune.bench._kept import KeptArtifact, find_kept
from edgetune.bench._worker import isolated
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.models import TensorSpec
from edgetune.runners import Runner, get_runner

RETIME_CONFIG = BenchConfig(budget_s=1.0, early_stop_ratio=0)
RETIME_MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class RetimePair:
    """One comparison's two artifacts: the baseline's and the candidate run's."""

    entry: str
    candidate: str
    baseline: KeptArtifact
    current: KeptArtifact
    threads: int


RunnerFor = Callable[[RetimePair, str], Runner]  # (pair, "baseline" | "candidate") -> the runner that times that side


def _plain_runner(pair: RetimePair, side: str) -> Runner:
    return get_runner((pair.baseline if side == "baseline" else pair.current).runtime)


def pairs_to_retime(base_rows: Sequence[Mapping[str, Any]], cand_rows: Sequence[Mapping[str, Any]], kept: Path,
                    wanted: Optional[set[tuple[str, str]]] = None) -> tuple[list[RetimePair], dict[tuple[str, str], str]]:
    """Each (entry, candidate) both runs timed whose artifacts are kept, and why the others cannot be re-timed."""
    def first_ok(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
        found: dict[tuple[str, str], Mapping[str, Any]] = {}
        for row in rows:
            if row["status"] == "ok":
                found.setdefault((row.get("entry") or row["model_name"], row["candidate"]), row)
        return found

    base, cand = first_ok(base_rows), first_ok(cand_rows)
    pairs, missing = [], {}
    for key in sorted(set(base) & set(cand)):
        if wanted is not None and key not in wanted:
            continue
        a, b = find_kept(kept, base[key].get("artifact_hash")), find_kept(kept, cand[key].get("artifact_hash"))
        if a is None or b is None:
            missing[key] = f"the {'baseline' if a is None else 'candidate'} artifact is not kept in {kept}"
            continue
        pairs.append(RetimePair(key[0], key[1], a, b, int(cand[key]["threads"])))
    return pairs, missing


def retime(pairs: Sequence[RetimePair], sessions: int = 3, config: BenchConfig = RETIME_CONFIG,
           runner_for: RunnerFor = _plain_runner, progress: Optional[Callable[[str], None]] = None,
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[tuple[str, str], str]]:
    """Time each pair's two artifacts interleaved in isolated workers, ``sessions`` fresh loads each.

    Returns rows for both sides, shaped like the store's (so ``compare`` takes them), and the pairs
    that failed with why.
    """
    say = progress or (lambda _msg: None)
    base_rows: list[dict[str, Any]] = []
    cand_rows: list[dict[str, Any]] = []
    failed: dict[tuple[str, str], str] = {}
    for pair in pairs:
        say(f"re-timing {pair.entry} {pair.candidate}: baseline and candidate interleaved, {sessions} session(s)")
        runners = {side: isolated(runner_for(pair, side)) for side in ("baseline", "candidate")}
        timed: list[dict[str, Any]] = []
        try:
            # each side's worker process serves its sessions one after another (a fresh load each time)
            with runners["baseline"].reusing(), runners["candidate"].reusing():
                timed = [_one_session(pair, index, config, runners) for index in range(sessions)]
        except EdgetuneError as exc:  # a pair that fails keeps no rows: half a comparison would mislead
            failed[(pair.entry, pair.candidate)] = str(exc)
            continue
        for index, timings in enumerate(timed):
            base_rows.append(_row(pair, "baseline", index, timings["baseline"].samples_ms))
            cand_rows.append(_row(pair, "candidate", index, timings["candidate"].samples_ms))
    return base_rows, cand_rows, failed


def _one_session(pair: RetimePair, index: int, config: BenchConfig, runners: Mapping[str, Runner]) -> dict[str, Any]:
    specs = [TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in pair.current.inputs]
    feed = random_inputs(specs, seed=0)[0]
    sides = ("baseline", "candidate") if index % 2 == 0 else ("candidate", "baseline")  # who goes first alternates
    with contextlib.ExitStack() as opened:  # every loaded session is closed, also when a later load, a close or a run fails
        sessions = {}
        for side in sides:
            artifact = pair.baseline if side == "baseline" else pair.current
            sessions[side] = opened.enter_context(runners[side].load(artifact.path, pair.threads))
        return measure_interleaved(sessions, {side: feed for side in sessions}, config)


def _row(pair: RetimePair, side: str, index: int, samples: Sequence[float]) -> dict[str, Any]:
    artifact = pair.baseline if side == "baseline" else pair.current
    return {"run_id": f"retime-{side}", "entry": pair.entry, "model_name": pair.entry, "candidate": pair.candidate,
            "status": "ok", "threads": pair.threads, "artifact_hash": artifact.sha256, "session_index": index,
            "samples_ms": list(samples), "fingerprint": {"threads": pair.threads, "retimed": True}}


def _needs_second_look(c: EntryComparison, mode: str) -> bool:
    if c.ratio is None or c.ci_high is None:
        return False
    if mode == "always":
        return True
    # auto: a flagged entry, or one whose interval reaches past the threshold (drift may hide a regression)
    return c.verdict in ("regression", "improvement") or c.ci_high > 1 + c.threshold


def gate(base_rows: Sequence[Mapping[str, Any]], cand_rows: Sequence[Mapping[str, Any]], kept: Path,
         thresholds: Optional[Mapping[str, float]] = None, default_threshold: float = 0.05,
         allow_env_mismatch: bool = False, retime_mode: str = "auto", sessions: int = 3,
         config: BenchConfig = RETIME_CONFIG, runner_for: RunnerFor = _plain_runner,
         progress: Optional[Callable[[str], None]] = None, confidence: float = 0.95) -> list[EntryComparison]:
    """The regression gate: ``compare`` the two runs, then re-time interleaved what needs a second look.

    ``retime_mode`` "never" keeps the run-to-run verdicts; "always" re-times every comparison whose
    artifacts are kept; "auto" re-times the flagged ones and those whose interval reaches past their
    threshold. A re-timed comparison's verdict replaces the run-to-run one (its note keeps that one).
    The confidence holds for the whole suite (Bonferroni over every comparison with samples).
    """
    if retime_mode not in RETIME_MODES:
        raise ConfigError(f"unknown --retime '{retime_mode}'; choose one of {', '.join(RETIME_MODES)}")
    comparisons = compare(base_rows, cand_rows, thresholds, default_threshold, allow_env_mismatch, confidence)
    wanted = {(c.entry, c.candidate) for c in comparisons if _needs_second_look(c, retime_mode)}
    if retime_mode == "never" or not wanted:
        return comparisons
    pairs, missing = pairs_to_retime(base_rows, cand_rows, kept, wanted)
    base_new, cand_new, failed = retime(pairs, sessions, config, runner_for, progress)
    per_entry = 1 - (1 - confidence) / max(sum(c.ratio is not None for c in comparisons), 1)
    second = {(c.entry, c.candidate): c for c in compare(base_new, cand_new, thresholds, default_threshold, True,
                                                          per_entry, per_suite=False)} if base_new else {}
    merged = []
    for c in comparisons:
        key = (c.entry, c.candidate)
        first = f"run to run {c.ratio:.3f}x [{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ratio is not None else ""
        if key in second:
            merged.append(replace(second[key], note=f"re-timed now, interleaved with the baseline's artifact ({first})"))
        elif key in wanted:
            why = missing.get(key) or failed.get(key, "")
            merged.append(replace(c, note="; ".join(n for n in (c.note, f"not re-timed: {why}") if n)))
        else:
            merged.append(c)
    return merged
