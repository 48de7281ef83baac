"""The compile pipeline: candidates (lowerings + runner), fidelity checks, timing, selection."""

from edgetune.pipeline._candidates import PLANS, CandidatePlan, CandidateResult, measurement_modes, plans_for
from edgetune.pipeline._evaluate import Evaluation, build_artifact, evaluate_candidates
from edgetune.pipeline._fidelity import Fidelity, Tolerance, compare_outputs
from edgetune.pipeline._options import PRESETS, CompileOptions, options_from
from edgetune.pipeline._run import CompileResult, NoViableCandidateError, benchmark, compile_model
from edgetune.pipeline._select import select_winner
from edgetune.pipeline._suite import SuiteRun, run_suite

__all__ = [
    "PLANS",
    "CandidatePlan",
    "CandidateResult",
    "CompileOptions",
    "PRESETS",
    "options_from",
    "CompileResult",
    "Evaluation",
    "Fidelity",
    "NoViableCandidateError",
    "Tolerance",
    "benchmark",
    "build_artifact",
    "compare_outputs",
    "compile_model",
    "evaluate_candidates",
    "measurement_modes",
    "plans_for",
    "select_winner",
    "SuiteRun",
    "run_suite",
]
