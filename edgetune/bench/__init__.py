"""Benchmarking: timing harness, statistics, environment fingerprint and the results store."""

from edgetune.bench._compare import (
    EntryComparison,
    compare,
    environment_differences,
    export_baseline,
    junit_xml,
    load_side,
    ratio_interval,
)
from edgetune.bench._fingerprint import environment, fingerprint_hash, git_commit
from edgetune.bench._harness import BenchConfig, Timing, measure, measure_interleaved, random_inputs
from edgetune.bench._kept import KeptArtifact, find_kept, keep_artifact, kept_root
from edgetune.bench._memory import current_rss_mb, peak_rss_mb, reset_peak_rss
from edgetune.bench._noise import CpuShares, MachineWatch
from edgetune.bench._retime import RETIME_MODES, RetimePair, gate, pairs_to_retime, retime
from edgetune.bench._stats import LatencyStats, latency_stats, median_ci
from edgetune.bench._store import RESULTS_ENV, MeasurementRecord, ResultsStore, default_results_path, new_run_id
from edgetune.bench._suite import Suite, SuiteEntry, load_suite
from edgetune.bench._worker import IsolatedRunner, WorkerSession, isolated, measurement_mode

__all__ = [
    "EntryComparison",
    "CpuShares",
    "MachineWatch",
    "RETIME_MODES",
    "RetimePair",
    "gate",
    "pairs_to_retime",
    "retime",
    "KeptArtifact",
    "find_kept",
    "keep_artifact",
    "kept_root",
    "IsolatedRunner",
    "WorkerSession",
    "isolated",
    "measurement_mode",
    "Suite",
    "SuiteEntry",
    "compare",
    "environment_differences",
    "export_baseline",
    "junit_xml",
    "load_side",
    "load_suite",
    "ratio_interval",
    "BenchConfig",
    "LatencyStats",
    "MeasurementRecord",
    "RESULTS_ENV",
    "ResultsStore",
    "Timing",
    "current_rss_mb",
    "default_results_path",
    "environment",
    "fingerprint_hash",
    "git_commit",
    "latency_stats",
    "measure",
    "measure_interleaved",
    "median_ci",
    "new_run_id",
    "peak_rss_mb",
    "random_inputs",
    "reset_peak_rss",
]
