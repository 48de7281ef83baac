"""`edgetune search`: an Optuna study over a search space, constrained by the target, resumable.

Each trial samples a candidate, predicts its latency (no training yet), checks the target's
constraints (latency budget, SRAM for activations, flash for weights) and rejects infeasible
candidates before training; feasible ones are trained with their hyperparameters and
augmentation, then deployed as sampled (pruned and/or quantized through the compile pipeline's
Lowerings, see ``_deploy``) and scored on a validation split. Objectives: accuracy (max) and
latency (min) -- predicted for fp32 builds, measured for lowered precisions, and labelled so --
plus model size when asked; or accuracy alone. Optuna cannot report intermediate values of
multi-objective trials, so early stopping on learning curves (median / Hyperband pruner)
applies to the single-objective mode only. State lives in Optuna storage: SQLite in the output
folder by default, PostgreSQL for several workers.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from edgetune._lazy import require
from edgetune.errors import ConfigError, EdgetuneError, InfeasibleError, one_line
from edgetune.search._constraints import native_constraints, stored_constraints
from edgetune.search._deploy import deploy_precisions
from edgetune.search._objective import TrainingSplit, TrialObjective
from edgetune.search._space import Candidate, SearchSpace, candidate_graph, candidate_module
from edgetune.targets import Target

STRATEGIES = ("nsga2", "tpe", "gp", "random", "grid")
# accuracy-latency (default) and accuracy-latency-size are multi-objective: Optuna cannot report
# intermediate values of multi-objective trials, so learning-curve pruning applies to "accuracy" only.
OBJECTIVES = ("accuracy-latency", "accuracy-latency-size", "accuracy")
PRUNERS = ("median", "hyperband", "none")
HEARTBEAT_S = 10


class SearchError(EdgetuneError):
    """The study storage cannot be opened, or the search cannot proceed."""


@dataclass(frozen=True)
class SearchConfig:
    """What to search, for which target, how long."""

    dataset: str = "digits"
    latency_budget_ms: Optional[float] = None
    trials: int = 12
    strategy: str = "nsga2"
    objective: str = "accuracy-latency"
    storage: Optional[str] = None  # default: sqlite:///OUT/study.db
    study_name: Optional[str] = None
    seed: int = 0
    runtime: str = "onnxruntime"
    max_epochs: Optional[int] = None  # cap every trial's epochs (quick runs, tests)
    val_fraction: float = 0.2
    pruner: str = "median"  # single-objective studies only (see OBJECTIVES)
    fine_tune_epochs: int = 1  # distillation epochs after pruning a trial's network

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy '{self.strategy}'; valid strategies: {', '.join(STRATEGIES)}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective '{self.objective}'; valid: {', '.join(OBJECTIVES)}")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"unknown pruner '{self.pruner}'; valid pruners: {', '.join(PRUNERS)}")
        if self.trials < 1:
            raise ConfigError(f"trials must be at least 1, got {self.trials}")
        if self.latency_budget_ms is not None and self.latency_budget_ms <= 0:
            raise ConfigError(f"latency budget must be positive, got {self.latency_budget_ms} ms")


@dataclass
class TrialSummary:
    number: int
    state: str
    accuracy: Optional[float]
    predicted_ms: Optional[float]
    feasible: bool
    candidate: dict[str, Any]
    rejected: str = ""
    measured_ms: Optional[float] = None  # top-k verification on the target (after the search)
    latency_ms: Optional[float] = None  # the latency objective: predicted (fp32) or measured (lowered builds)
    latency_source: str = "predicted"
    size_kb: Optional[float] = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "accuracy": self.accuracy, "predicted_ms": self.predicted_ms,
                "latency_ms": self.latency_ms, "latency_source": self.latency_source, "size_kb": self.size_kb,
                "verified_measured_ms": self.measured_ms, "feasible": self.feasible, "rejected": self.rejected,
                "candidate": self.candidate}


@dataclass
class SearchResult:
    study_name: str
    storage: str
    trials: list[TrialSummary]
    front: list[TrialSummary]
    winner: Optional[TrialSummary]
    output_dir: Path
    predictor: str
    compiled: Any = None  # CompileResult of the winner
    notes: list[str] = field(default_factory=list)


def _storage_url(config: SearchConfig, out: Path) -> str:
    return config.storage or f"sqlite:///{(out / 'study.db').resolve()}"


def sqlalchemy_url(url: str) -> str:
    """postgresql:// URLs go through psycopg 3 (the driver edgetune installs), not SQLAlchemy's default psycopg2."""
    from edgetune._lazy import available

    if url.startswith(("postgresql://", "postgres://")) and not available("psycopg2") and available("psycopg"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _create_with_retry(storage: str, study_name: str, directions: list[str], sampler: Any, pruner: Any) -> Any:
    """optuna.create_study(load_if_exists=True), retried when workers started together on a fresh database
    race to create Optuna's tables or the study (the loser sees a duplicate key, then loads what the winner made)."""
    optuna = require("optuna", "all")
    for attempt in range(6):
        try:
            # heartbeats: a worker killed mid-trial (kill -9, a lost machine) leaves a RUNNING trial; once
            # its heartbeat is older than the grace period the next optimize() marks it FAIL, so it
            # neither counts as done nor blocks anything
            with _experimental_ok():
                rdb = optuna.storages.RDBStorage(sqlalchemy_url(storage), heartbeat_interval=HEARTBEAT_S,
                                                 grace_period=HEARTBEAT_S * 2)
            return optuna.create_study(storage=rdb, study_name=study_name, directions=directions,
                                       sampler=sampler, pruner=pruner, load_if_exists=True)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy wraps the driver's error types
            race = any(s in str(exc) for s in ("duplicate key", "already exists", "UNIQUE constraint"))
            if not race or attempt == 5:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def open_study(storage: str, study_name: str, directions: list[str], sampler: Any = None, pruner: Any = None) -> Any:
    """Create or load a study; an unreachable database is a one-line SearchError."""
    from edgetune.bench._store import redact

    try:
        return _create_with_retry(storage, study_name, directions, sampler, pruner)
    except ValueError as exc:  # e.g. directions differ from the stored study's
        raise SearchError(f"study '{study_name}' in {redact(storage)} does not match this search: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy/psycopg raise many types for a bad URL or server
        raise SearchError(f"cannot open the study storage {redact(storage)}: {one_line(exc, 200)}; check the URL and that the "
                          "database server is running") from None


@contextlib.contextmanager
def _experimental_ok() -> Iterator[None]:
    """Optuna calls heartbeats and its grid sampler experimental; a warning about that says nothing to the user."""
    optuna = require("optuna", "all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _sampler(strategy: str, seed: int, constraints: Optional[Callable]) -> Any:
    optuna = require("optuna", "all")
    s = optuna.samplers
    if strategy == "random":
        return s.RandomSampler(seed=seed)
    if strategy == "tpe":
        return s.TPESampler(seed=seed, multivariate=True, n_startup_trials=5, constraints_func=constraints)
    if strategy == "gp":
        return s.GPSampler(seed=seed, n_startup_trials=5, constraints_func=constraints)
    if strategy == "grid":
        with _experimental_ok():
            return s.BruteForceSampler(seed=seed)
    return s.NSGAIISampler(seed=seed, population_size=8, constraints_func=constraints)


def _pruner(name: str, multi: bool) -> Any:
    """Learning-curve pruning for single-objective studies; multi-objective trials cannot report, so none."""
    optuna = require("optuna", "all")
    if multi or name == "none":
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


def search(
    target: Union[str, Target] = "host-cpu",
    output_dir: Union[str, Path] = "edgetune-search",
    config: SearchConfig = SearchConfig(),
    space: Optional[SearchSpace] = None,
    predictor: Any = None,
    top_k: int = 3,
    compile_winner: bool = True,
    compile_runtimes: Optional[list[str]] = None,
    progress: Callable[[str], None] = lambda _m: None,
    profiles_dir: Optional[Path] = None,
) -> SearchResult:
    """Run (or resume) the search and return the front, the verified winner and its compiled artifact.

    A ``predictor`` given stays the caller's; one made here is closed once the trials are done (a
    measuring predictor holds its board connections until then).
    """
    from edgetune.targets import load_target

    optuna = require("optuna", "all")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    resolved = load_target(target) if isinstance(target, str) else target
    space = space or SearchSpace()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = TrainingSplit.load(config)
    with _study_predictor(predictor, resolved, config, profiles_dir, progress) as predictor:
        threads = getattr(predictor, "threads", None) or 1  # measured latencies use the predictor's thread count
        space = space.with_precisions(deploy_precisions(resolved, config.runtime))
        _check_smallest(space, predictor, data, config.latency_budget_ms, resolved)
        study, name, storage = _open_search_study(config, space, resolved, out)
        (out / "trials").mkdir(exist_ok=True)
        objective = TrialObjective(space, config, resolved, predictor, data, out / "trials", threads)
        _optimize(study, objective, config, name, progress)
        predictor_name = getattr(predictor, "name", type(predictor).__name__)
    trials = [_summary(t) for t in study.trials]
    front = [_summary(t) for t in _front(study, objective.multi)]
    result = SearchResult(name, storage, trials, front, None, out, predictor_name)
    _verify_and_pick(result, resolved, config, threads, top_k, data.in_channels, data.classes, progress, data.input_size)
    if compile_winner and result.winner is not None:
        result.compiled = _compile(result, resolved, config, data.in_channels, data.classes, compile_runtimes, progress)
    from edgetune.search._report import write_outputs

    write_outputs(result, config, space)
    return result


@contextlib.contextmanager
def _study_predictor(given: Any, target: Target, config: SearchConfig, profiles_dir: Optional[Path],
                     progress: Callable[[str], None]) -> Iterator[Any]:
    """``given`` as it is, else the target's predictor for this study, closed when the block ends."""
    if given is not None:
        yield given
        return
    from edgetune.predict import predictor_for

    # once per study: re-time the profile's reference networks (when it stores some for this machine)
    made = predictor_for(target, config.runtime, profiles_dir, calibrate="auto")
    try:
        if getattr(made, "calibration", None) is not None:
            progress(made.calibration.message())  # type: ignore[attr-defined]
        yield made
    finally:
        close = getattr(made, "close", None)
        if close is not None:
            close()


def _check_smallest(space: SearchSpace, predictor: Any, data: TrainingSplit, budget: Optional[float],
                    target: Target) -> None:
    """InfeasibleError before any trial when even the smallest network of the space misses the budget."""
    small = space.smallest()
    graph = candidate_graph(small, data.in_channels, data.classes, 1 - small.deploy["prune_ratio"], data.input_size)
    smallest = predictor.predict(graph)
    if budget is not None and smallest.total_ms > budget:
        raise InfeasibleError(f"no network in the '{space.name}' space can meet {budget:g} ms on {target.name}: the "
                              f"smallest is predicted at {smallest.total_ms:.3g} ms; raise --latency-budget-ms or narrow the space")


def _open_search_study(config: SearchConfig, space: SearchSpace, target: Target, out: Path) -> tuple[Any, str, str]:
    """The study this search runs in (created or resumed), its name and its storage URL."""
    name = config.study_name or f"{space.name}-{target.name}-{Path(config.dataset).stem}"
    storage = _storage_url(config, out)
    objectives = config.objective.split("-")
    multi = len(objectives) > 1
    study = open_study(storage, name, ["maximize"] + ["minimize"] * (len(objectives) - 1),
                       _sampler(config.strategy, config.seed, None if native_constraints() else stored_constraints),
                       _pruner(config.pruner, multi))
    study.set_user_attr("space", space.name)
    return study, name, storage


def _optimize(study: Any, objective: TrialObjective, config: SearchConfig, name: str,
              progress: Callable[[str], None]) -> None:
    """Run the trials the study still lacks (finished and pruned ones count), with a line of progress per trial."""
    optuna = require("optuna", "all")
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = [t for t in study.trials if t.state in finished]
    remaining = config.trials - len(done)
    started = time.perf_counter()

    def tick(study: Any, trial: Any) -> None:
        count = len([t for t in study.trials if t.state in finished])
        per = (time.perf_counter() - started) / max(1, count - len(done))
        eta = max(0, config.trials - count) * per
        front = _front(study, objective.multi)
        best = max(front, key=lambda t: t.values[0], default=None)
        best_text = (f", best {best.values[0]:.3f} @ {best.user_attrs.get('latency_ms', 0):.3g} ms "
                     f"{best.user_attrs.get('latency_source', 'predicted')}") if best is not None else ""
        progress(f"trial {count}/{config.trials} ({trial.state.name.lower()}), front {len(front)}{best_text}, ETA {eta:.0f} s")

    if remaining > 0:
        progress(f"study '{name}': {len(done)} trials stored, running {remaining} more ({config.strategy})")
        study.optimize(objective, n_trials=remaining, callbacks=[
            optuna.study.MaxTrialsCallback(config.trials, states=finished), tick], gc_after_trial=True)


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and a != b


def _front(study: Any, multi: bool) -> list[Any]:
    """Feasible finished trials not dominated by another (accuracy up, latency/size down); single objective: top 5."""
    optuna = require("optuna", "all")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
                and all(v <= 0 for v in t.user_attrs.get("constraints", [0.0]))]
    if not multi:
        return sorted(complete, key=lambda t: -t.value)[:5]
    keys = {t.number: (-t.values[0], *t.values[1:]) for t in complete}
    front = [t for t in complete if not any(_dominates(keys[o.number], keys[t.number]) for o in complete)]
    return sorted(front, key=lambda t: t.values[1])


def _summary(t: Any) -> TrialSummary:
    values = t.values if t.values is not None else None
    a = t.user_attrs
    return TrialSummary(t.number, t.state.name.lower(), values[0] if values else None, a.get("predicted_ms"),
                        all(v <= 0 for v in a.get("constraints", [0.0])), a.get("candidate", {}), a.get("rejected", ""),
                        None, a.get("latency_ms", a.get("predicted_ms")), a.get("latency_source", "predicted"),
                        a.get("size_kb"))


def _deployed_artifact(result: SearchResult, t: TrialSummary) -> Optional[Path]:
    deploy_choice = t.candidate.get("deploy", {})
    if deploy_choice.get("precision", "fp32") == "fp32" and not deploy_choice.get("prune_ratio"):
        return None
    found = sorted((result.output_dir / "trials").glob(f"trial-{t.number}.{deploy_choice['precision']}.*"))
    return found[0] if found else None


def _verify_and_pick(result: SearchResult, target: Target, config: SearchConfig, threads: int, top_k: int,
                     in_ch: int, classes: int, progress: Callable[[str], None],
                     in_size: Optional[tuple[int, int]] = None) -> None:
    """Measure the top-k of the front on the target; the winner is the most accurate that meets the budget measured.

    A trial shipped as trained (fp32, unpruned) is timed from its graph, as the predictor sees it; a
    pruned or quantized one from the artifact its lowerings built. Both report the fastest of >= 30
    runs (the statistic the predictor is trained on).
    """
    from edgetune.predict import GraphMeasurer
    from edgetune.predict._measure import NETWORK_CONFIG

    if not result.front:
        result.notes.append("no trial both finished and met the constraints")
        return
    top = sorted(result.front, key=lambda t: -(t.accuracy or 0.0))[:max(1, top_k)]
    progress(f"measuring the top {len(top)} on {target.name}")
    plain = [t for t in top if _deployed_artifact(result, t) is None]
    lowered = [t for t in top if t not in plain]
    if plain:
        graphs = [candidate_graph(Candidate(**t.candidate), in_ch, classes, input_size=in_size) for t in plain]
        with GraphMeasurer(target, config.runtime, threads, config=NETWORK_CONFIG, interleave=1) as m:
            timings, interrupted = m.measure(graphs)
        if interrupted:
            raise KeyboardInterrupt
        for t, timing in zip(plain, timings):
            t.measured_ms = None if timing.error else timing.latency_ms
    if lowered:
        _measure_lowered(result, lowered, target, config, threads)
    budget = config.latency_budget_ms
    meets = [t for t in top if t.measured_ms is not None and (budget is None or t.measured_ms <= budget)]
    if meets:
        result.winner = max(meets, key=lambda t: (t.accuracy or 0.0, -(t.measured_ms or 0.0)))
    else:
        result.winner = None
        result.notes.append(f"none of the top {len(top)} met {budget:g} ms when measured on {target.name}; nothing compiled")


def _measure_lowered(result: SearchResult, lowered: list[TrialSummary], target: Target, config: SearchConfig,
                     threads: int) -> None:
    """Time the artifacts the trials' lowerings built, interleaved in isolated workers (every session closed)."""
    from edgetune.bench import isolated, measure_interleaved
    from edgetune.data import load_dataset
    from edgetune.predict._measure import NETWORK_CONFIG
    from edgetune.runners import runner_for

    runner = isolated(runner_for(config.runtime, target))
    with ExitStack() as loaded:
        sessions: dict[str, Any] = {}
        for t in lowered:
            sessions[str(t.number)] = runner.load(_deployed_artifact(result, t), threads)  # type: ignore[arg-type]
            loaded.callback(sessions[str(t.number)].close)
        x = load_dataset(config.dataset).x[:1]
        feeds = {k: {"input": x} for k in sessions}
        timings_by = measure_interleaved(sessions, feeds, NETWORK_CONFIG)
    for t in lowered:
        t.measured_ms = timings_by[str(t.number)].stats.min_ms


def _compile(result: SearchResult, target: Target, config: SearchConfig, in_ch: int, classes: int,
             runtimes: Optional[list[str]], progress: Callable[[str], None]) -> Any:
    from edgetune.pipeline import CompileOptions, compile_model

    torch = require("torch", "torch")
    winner = result.winner
    assert winner is not None
    pruned = result.output_dir / "trials" / f"trial-{winner.number}.pruned.pt2"
    if pruned.exists():
        module: Any = pruned  # the pruned, fine-tuned network as the prune lowering exported it
    else:
        module = candidate_module(Candidate(**winner.candidate), in_ch, classes)
        module.load_state_dict(torch.load(result.output_dir / "trials" / f"trial-{winner.number}.pt", weights_only=True))
        module.eval()
    from edgetune.data import load_dataset

    shape = (1, *load_dataset(config.dataset).x.shape[1:])
    progress(f"compiling trial {winner.number} for {target.name}")
    return compile_model(module, target, result.output_dir / "compiled", runtimes=runtimes, input_shape=shape,
                         options=CompileOptions(calib=config.dataset, eval=config.dataset, seed=config.seed))


def study_status(storage: str, study_name: Optional[str] = None) -> list[dict[str, Any]]:
    """Per study in ``storage``: trials by state, best accuracy, front size (for `edgetune search status`)."""
    optuna = require("optuna", "all")
    from edgetune.bench._store import redact

    try:
        storage = sqlalchemy_url(storage)
        summaries = optuna.get_all_study_summaries(storage=storage)
    except Exception as exc:  # noqa: BLE001
        raise SearchError(f"cannot open the study storage {redact(storage)}: {one_line(exc, 200)}") from None
    rows = []
    for s in summaries:
        if study_name and s.study_name != study_name:
            continue
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        states: dict[str, int] = {}
        for t in study.trials:
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
        multi = len(study.directions) > 1
        front = _front(study, multi)
        best = max((t.values[0] for t in front), default=math.nan)
        rows.append({"study": s.study_name, "trials": len(study.trials), "states": states, "front": len(front),
                     "best_accuracy": None if math.isnan(best) else best})
    if study_name and not rows:
        raise SearchError(f"no study named '{study_name}' in {redact(storage)}")
    return rows


def save_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
