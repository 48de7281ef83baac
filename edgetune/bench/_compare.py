"""The regression gate: compare two runs entry by entry with a hierarchical bootstrap.

Each side of a comparison is a set of sessions (fresh loads of the artifact), each with its raw
samples. Resampling sessions first and samples within them second makes the interval of the
ratio of medians include load-to-load and minute-to-minute variation, not just the spread inside
one session, which on a busy 2-core machine is the smaller part of the noise. A regression needs
both: the interval above 1 (it is real) and the ratio above 1 + threshold (it matters).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgetune.errors import ConfigError

BASELINE_FORMAT = "edgetune-baseline"
_ENV_FIELDS = ("cpu_model", "arch", "threads", "libraries", "governor", "python", "numpy", "target")
Rows = list[Mapping[str, Any]]


@dataclass(frozen=True)
class EntryComparison:
    """The verdict for one (entry, candidate)."""

    entry: str
    candidate: str
    verdict: str  # regression | improvement | no change | missing | broken | new
    ratio: Optional[float]  # candidate median / baseline median (>1: slower)
    ci_low: Optional[float]
    ci_high: Optional[float]
    threshold: float
    baseline_median_ms: Optional[float]
    candidate_median_ms: Optional[float]
    baseline_sessions: int
    candidate_sessions: int
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict in ("regression", "missing", "broken")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(row: Mapping[str, Any]) -> tuple[str, str]:
    return (row.get("entry") or row["model_name"], row["candidate"])


def _sessions(rows: Sequence[Mapping[str, Any]], cap: int = 400) -> list[np.ndarray]:
    sessions = []
    for row in rows:
        samples = np.asarray(row.get("samples_ms") or [], dtype=float)
        if samples.size:
            if samples.size > cap:  # evenly thinned: keeps the distribution, bounds bootstrap cost
                samples = samples[np.linspace(0, samples.size - 1, cap).astype(int)]
            sessions.append(samples)
    return sessions


def _boot_medians(sessions: list[np.ndarray], rng: np.random.Generator, draws: int, chunk: int = 500) -> np.ndarray:
    """Medians of ``draws`` hierarchical resamples: sessions with replacement, then samples within each."""
    sizes = np.array([s.size for s in sessions])
    padded = np.full((len(sessions), sizes.max()), np.nan)
    for i, s in enumerate(sessions):
        padded[i, : s.size] = s
    out = np.empty(draws)
    for start in range(0, draws, chunk):
        n = min(chunk, draws - start)
        picks = rng.integers(0, len(sessions), size=(n, len(sessions)))  # which sessions this draw pools
        slots = np.arange(sizes.max())
        # resample within each picked session: index = floor(u * size); slots past its size stay empty (NaN)
        within = (rng.random((n, len(sessions), sizes.max())) * sizes[picks][..., None]).astype(int)
        values = padded[picks[..., None], within]
        values[slots[None, None, :] >= sizes[picks][..., None]] = np.nan
        out[start:start + n] = np.nanmedian(values.reshape(n, -1), axis=1)
    return out


def ratio_interval(baseline: list[np.ndarray], candidate: list[np.ndarray], confidence: float = 0.95,
                   draws: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(ratio of medians, CI low, CI high) by hierarchical bootstrap (sessions, then samples).

    ``draws`` grows with the confidence so that each tail keeps at least ~20 draws."""
    rng = np.random.default_rng(seed)
    ratio = float(np.median(np.concatenate(candidate)) / np.median(np.concatenate(baseline)))
    tail = (1 - confidence) / 2
    draws = max(draws, int(np.ceil(20 / tail)))
    boot = _boot_medians(candidate, rng, draws) / _boot_medians(baseline, rng, draws)
    return ratio, float(np.percentile(boot, tail * 100)), float(np.percentile(boot, 100 - tail * 100))


def environment_differences(baseline: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fields of the environment fingerprint that differ between the two sides."""
    def envs(rows: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for row in rows:
            for name in _ENV_FIELDS:
                found.setdefault(name, set()).add(json.dumps(row["fingerprint"].get(name), sort_keys=True))
        return found

    a, b = envs(baseline), envs(candidate)
    return [f"{name}: {', '.join(sorted(a.get(name, set())))} vs {', '.join(sorted(b.get(name, set())))}"
            for name in _ENV_FIELDS if a.get(name) != b.get(name)]


def compare(
    baseline: Sequence[Mapping[str, Any]],
    candidate: Sequence[Mapping[str, Any]],
    thresholds: Optional[Mapping[str, float]] = None,
    default_threshold: float = 0.05,
    allow_env_mismatch: bool = False,
    confidence: float = 0.95,
    seed: int = 0,
    per_suite: bool = True,
) -> list[EntryComparison]:
    """Compare two runs' rows per (entry, candidate). Refuses different environments unless allowed.

    With ``per_suite`` the confidence holds for the whole comparison, not each entry: among m entries
    compared, each interval is taken at 1 - (1 - confidence) / m (Bonferroni), so a clean run of a
    suite raises a false alarm in at most 1 - confidence of runs however many entries it has.
    """
    _check_comparable(baseline, candidate, allow_env_mismatch)
    groups = _by_key(baseline, candidate)
    if per_suite:
        compared = sum(1 for base_rows, cand_rows in groups.values() if _sessions(_ok(base_rows)) and _sessions(_ok(cand_rows)))
        confidence = 1 - (1 - confidence) / max(compared, 1)
    return [_compare_entry(entry, name, base_rows, cand_rows, (thresholds or {}).get(entry, default_threshold),
                           confidence, seed)
            for (entry, name), (base_rows, cand_rows) in sorted(groups.items())]


def _check_comparable(baseline: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]],
                      allow_env_mismatch: bool) -> None:
    """ConfigError for an empty side, or for sides measured in different environments (unless allowed)."""
    if not baseline:
        raise ConfigError("the baseline has no measurements")
    if not candidate:
        raise ConfigError("the candidate run has no measurements")
    differences = environment_differences(baseline, candidate)
    if differences and not allow_env_mismatch:
        raise ConfigError(
            "baseline and candidate were measured in different environments (" + "; ".join(differences)
            + "); compare like with like, or pass --allow-env-mismatch to compare anyway"
        )


def _by_key(baseline: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[Rows, Rows]]:
    groups: dict[tuple[str, str], tuple[Rows, Rows]] = {}
    for row in baseline:
        groups.setdefault(_key(row), ([], []))[0].append(row)
    for row in candidate:
        groups.setdefault(_key(row), ([], []))[1].append(row)
    return groups


def _ok(rows: Rows) -> Rows:
    return [r for r in rows if r["status"] == "ok"]


def _compare_entry(entry: str, name: str, base_rows: Rows, cand_rows: Rows, threshold: float, confidence: float,
                   seed: int) -> EntryComparison:
    """The verdict for one (entry, candidate): missing, new, broken, or the bootstrap interval against the threshold."""
    base_ok, cand_ok = _ok(base_rows), _ok(cand_rows)
    common: dict[str, Any] = dict(entry=entry, candidate=name, threshold=threshold, baseline_sessions=len(base_ok),
                  candidate_sessions=len(cand_ok))
    if not cand_rows:
        return _without_ratio("missing", "in the baseline but not measured in the candidate run", common)
    if not base_rows:
        return _without_ratio("new", "not in the baseline", common)
    if base_ok and not cand_ok:
        reason = next((r.get("error") for r in cand_rows if r.get("error")), "") or cand_rows[0]["status"]
        return _without_ratio("broken", f"worked in the baseline, now {cand_rows[0]['status']}: {reason}", common)
    base_s, cand_s = _sessions(base_ok), _sessions(cand_ok)
    if not base_s or not cand_s:
        return _without_ratio("no change", "no samples on one side", common)
    ratio, low, high = ratio_interval(base_s, cand_s, confidence, seed=seed)
    if low > 1 and ratio > 1 + threshold:
        verdict = "regression"
    elif high < 1 and ratio < 1 / (1 + threshold):
        verdict = "improvement"
    else:
        verdict = "no change"
    note = "" if len(base_s) > 1 and len(cand_s) > 1 else "one session on a side: the interval misses load-to-load noise"
    return EntryComparison(
        verdict=verdict, ratio=ratio, ci_low=low, ci_high=high,
        baseline_median_ms=float(np.median(np.concatenate(base_s))),
        candidate_median_ms=float(np.median(np.concatenate(cand_s))), note=note, **common,
    )


def _without_ratio(verdict: str, note: str, common: dict[str, Any]) -> EntryComparison:
    return EntryComparison(verdict=verdict, ratio=None, ci_low=None, ci_high=None, baseline_median_ms=None,
                           candidate_median_ms=None, note=note, **common)


def export_baseline(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write a run's rows (with raw samples and fingerprints) to a JSON file that can be committed."""
    if not rows:
        raise ConfigError("nothing to export: the run has no measurements")
    payload = {"format": BASELINE_FORMAT, "version": 1, "run_id": rows[0]["run_id"], "rows": list(rows)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path


def load_side(spec: str, store: Any) -> tuple[str, list[dict[str, Any]]]:
    """A comparison side: a baseline JSON file, or a run id in the results store ('latest' = newest run)."""
    path = Path(spec)
    if path.suffix == ".json" or path.exists():
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read baseline file '{spec}': {exc}") from None
        if payload.get("format") != BASELINE_FORMAT:
            raise ConfigError(f"'{spec}' is not an edgetune baseline file (export one with `edgetune bench export`)")
        return f"file {path.name} (run {payload.get('run_id')})", payload["rows"]
    runs = [run for run, _, _ in store.runs()]
    if spec in ("latest", "previous"):
        if len(runs) < (1 if spec == "latest" else 2):
            raise ConfigError(f"the results store has no {spec} run")
        spec = runs[-1] if spec == "latest" else runs[-2]
    rows = store.rows(run_id=spec)
    if not rows:
        recent = ", ".join(runs[-5:]) or "none"
        raise ConfigError(f"no run '{spec}' in the results store; recent runs: {recent}")
    return f"run {spec}", rows


def junit_xml(comparisons: Sequence[EntryComparison], suite_name: str = "edgetune-bench-compare") -> str:
    """JUnit XML: one testcase per (entry, candidate); regressions, breakages and missing entries fail."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name=suite_name, tests=str(len(comparisons)),
                       failures=str(sum(c.failed for c in comparisons)), errors="0")
    for c in comparisons:
        ratio = f"{c.ratio:.3f}x [{c.ci_low:.3f}, {c.ci_high:.3f}]" if c.ratio is not None else "-"
        case = ET.SubElement(suite, "testcase", classname=c.entry, name=c.candidate)
        detail = ET.SubElement(case, "failure", message=c.verdict) if c.failed else ET.SubElement(case, "system-out")
        detail.text = f"{c.verdict}: ratio {ratio}, threshold {c.threshold:.0%}. {c.note}".strip()
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
