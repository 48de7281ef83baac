"""Tune an ONNX model with TVM MetaSchedule for a CPU target, keeping tuning records per LLVM target.

Candidates are measured where the target is: on this machine for the host CPU, or on a board of
the target's key behind the RPC tracker (``edgetune farm``) through MetaSchedule's RPC runner,
built for the board's triple (cross-linked when it is another architecture).

Records live in ``<profiles_dir>/tvm/<mcpu>-<hash of the LLVM target>/`` as a MetaSchedule JSON
database and are shared by every model compiled for that target: an operator workload that
already has a record is not tuned again, so a second compile of a model tunes nothing.
``tuning_records`` (``--tuning-records DIR``) names the database folder instead: records there
are used (import) and new ones are written there (export).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from edgetune.errors import ConfigError, EdgetuneError, RunnerError, one_line
from edgetune.lowering._base import (
    Artifact,
    Lowering,
    LoweringContext,
    LoweringOptions,
    NamedOptions,
    PlanRequest,
    Variant,
)
from edgetune.lowering._tvm import export_library, import_onnx, llvm_target
from edgetune.lowering._tvm_remote import MeasureOn, measure_on
from edgetune.models import LoadedModel
from edgetune.targets import Target

DEFAULT_TRIALS = 64
# Trials per search round and task; small rounds keep a small budget spread over many tasks.
_MAX_TRIALS_PER_ITER = 16
# Evolutionary search keeps this many candidates per trial it picks in a round, within TVM's
# default of 512: a search sized for 64-trial rounds costs tens of seconds per task on a small
# CPU, wasted when a round picks 2 candidates.
_POPULATION_PER_TRIAL = 32
_POPULATION_RANGE = (64, 512)
_MS_LOGGER = "tvm.s_tir.meta_schedule"


@dataclass(frozen=True)
class TuningOutcome:
    """What one tuning run did, for Artifact.details."""

    tasks_total: int
    tasks_tuned: int  # had no record and got one now
    tasks_reused: int  # had a record already: not tuned again
    tasks_without_record: int  # compiled with TVM's default schedule
    trials_measured: int
    tuning_s: float


def records_dir(tvm_target: Any, profiles_dir: Optional[Path], workdir: Path) -> tuple[Path, bool]:
    """Where the records for ``tvm_target`` live, and whether that folder is the shared profile one."""
    text = str(tvm_target)
    mcpu = str(tvm_target.attrs.get("mcpu", "generic")) or "generic"
    key = f"{mcpu}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if profiles_dir is None:
        return Path(workdir) / "tvm-tuning-records" / key, False
    return Path(profiles_dir) / "tvm" / key, True


@dataclass(frozen=True)
class TuneOptions(LoweringOptions):
    """How many MetaSchedule trials to measure, and an explicit records folder (``--tuning-records``)."""

    tune_trials: int = DEFAULT_TRIALS
    tuning_records: Optional[str] = None

    def __post_init__(self) -> None:
        value = self.tune_trials
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"tune_trials must be a non-negative integer, got {value!r}")

    def records_folder(self) -> Optional[Path]:
        """The ``tuning_records`` folder; one that exists as a file is a ConfigError (checked when tuning starts)."""
        if self.tuning_records is None:
            return None
        folder = Path(self.tuning_records)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--tuning-records '{folder}' is a file; give a folder (it holds MetaSchedule's JSON database)")
        return folder


def _records_option(context: LoweringContext) -> Optional[Path]:
    """The ``tuning_records`` folder of ``context``'s options (see TuneOptions.records_folder)."""
    return TuneOptions.of(context.options).records_folder()


def _candidate_build(cross_compiler: Optional[str] = None) -> Callable[[Any, Any], str]:
    """Build one candidate and export it as a tar, as MetaSchedule's default build does, minus one import.

    The default imports ``tvm.s_tir.tensor_intrin`` (CUDA, ROCm, Arm, ...: about 16 s) in every
    builder process. Candidates arrive already tensorized, so the build does not need it.
    For a board of another architecture it is linked here with ``cross_compiler`` (a .so the board
    loads as is). Returned as a closure so that cloudpickle sends it by value: the builder process
    need not be able to import edgetune.
    """

    def build(mod: Any, target: Any) -> str:
        import os
        import tempfile

        from tvm.driver import build as tvm_build
        from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock
        from tvm.support import cc
        from tvm.support.tar import tar

        runtime_module = tvm_build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)
        if cross_compiler:
            path = os.path.join(tempfile.mkdtemp(), "tvm_tmp_mod.so")
            runtime_module.export_library(path, fcompile=cc.cross_compiler(cross_compiler))
            return path
        path = os.path.join(tempfile.mkdtemp(), "tvm_tmp_mod." + tar.output_format)
        runtime_module.export_library(path, fcompile=tar)
        return path  # removed by MetaSchedule's RemoveBuildArtifact callback once measured

    return build


def _pooled_builder(log: Any, timeout_s: float = 30.0, uses_per_process: int = 64,
                    cross_compiler: Optional[str] = None) -> Any:
    """A MetaSchedule builder whose one worker process lives across batches.

    LocalBuilder starts a fresh process (importing TVM, seconds here) for every batch because
    long-lived workers leak memory; recycling the worker every ``uses_per_process`` builds keeps
    that bounded. The worker's output goes to ``log``.
    """
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.support.popen_pool import PopenPoolExecutor, StatusKind

    build = _candidate_build(cross_compiler)

    @derived_object
    class PooledBuilder(PyBuilder):
        def __init__(self) -> None:
            self.pool = PopenPoolExecutor(max_workers=1, timeout=timeout_s, maximum_process_uses=uses_per_process,
                                          stdout=log, stderr=log)

        def build(self, build_inputs: list[Any]) -> list[Any]:
            results = []
            jobs = [(item.mod, item.target) for item in build_inputs]
            for outcome in self.pool.map_with_error_catching(lambda job: build(*job), jobs):
                if outcome.status == StatusKind.COMPLETE:
                    results.append(BuilderResult(outcome.value, None))
                elif outcome.status == StatusKind.TIMEOUT:
                    results.append(BuilderResult(None, f"build timed out after {timeout_s} s"))
                else:
                    results.append(BuilderResult(None, f"build failed: {outcome.value}"))
            return results

        def shutdown(self) -> None:
            self.pool.shutdown()

    return PooledBuilder()


@contextlib.contextmanager
def _meta_schedule_logs_in(log_file: Path) -> Iterator[Callable[[str], logging.Logger]]:
    """Send MetaSchedule's logs to ``log_file`` instead of the console while tuning.

    Yields a function that returns the logger of one task (a child of MetaSchedule's logger).
    """
    root = logging.getLogger(_MS_LOGGER)
    handler = logging.FileHandler(log_file, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s [%(levelname)s] %(message)s"))
    saved = (root.level, root.propagate, list(root.handlers))  # e.g. a console handler TVM set up
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    root.propagate = False
    try:
        yield lambda name: logging.getLogger(f"{_MS_LOGGER}.edgetune.{name}")
    finally:
        handler.close()
        root.setLevel(saved[0])
        root.propagate = saved[1]
        root.handlers = saved[2]


def _progress_callback(total: int, progress: Callable[[str], None]) -> Any:
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class ReportProgress(PyMeasureCallback):
        def __init__(self) -> None:
            self.measured = 0

        def apply(self, task_scheduler: Any, task_id: int, measure_candidates: Any, builder_results: Any,
                  runner_results: Any) -> None:
            if len(measure_candidates):  # a task whose search space ran out reports empty rounds
                self.measured += len(measure_candidates)
                progress(f"tvm-tuned: measured {self.measured}/{total} trials")

    return ReportProgress()


def _has_record(database: Any, task: Any, tvm_target: Any) -> bool:
    return database.query_tuning_record(task.dispatched[0], tvm_target, "main") is not None


def _flops(task: Any) -> float:
    from tvm.s_tir.analysis import estimate_tir_flops

    try:
        return float(estimate_tir_flops(task.dispatched[0])) * task.weight
    except Exception:  # noqa: BLE001 - only an ordering hint
        return 0.0


def _tune(pending: list[Any], database: Any, trials: int, log_dir: Path, progress: Callable[[str], None],
          measure: Optional["MeasureOn"] = None) -> int:
    """Tune ``pending`` tasks into ``database`` with ``trials`` measurements in all; return how many ran.

    ``measure`` says where candidates run (a board behind the tracker); None: on this machine."""
    from tvm.s_tir import meta_schedule as ms

    # With fewer trials than tasks, the costliest tasks get them first.
    pending = sorted(pending, key=_flops, reverse=True)
    # The scheduler's first round gives every task per_iter trials, so per_iter <= trials / tasks
    # lets every task get a record; per_task (twice the even share) caps what the later,
    # gradient-driven rounds give one task, so that no task eats the budget of the others.
    per_task = min(trials, 2 * math.ceil(trials / len(pending)))
    per_iter = max(1, min(trials // len(pending), _MAX_TRIALS_PER_ITER))
    low, high = _POPULATION_RANGE
    population = min(high, max(low, _POPULATION_PER_TRIAL * per_iter))
    log_dir.mkdir(parents=True, exist_ok=True)
    callback = _progress_callback(trials, progress)
    with _meta_schedule_logs_in(log_dir / "meta_schedule.log") as task_logger, \
            open(log_dir / "workers.log", "ab") as worker_log:
        contexts = [
            ms.TuneContext(
                mod=task.dispatched[0], target=task.target, space_generator="post-order-apply",
                search_strategy=ms.search_strategy.EvolutionarySearch(population_size=population),
                task_name=task.task_name, logger=task_logger(f"task_{i}_{task.task_name}"),
                rand_state=i, num_threads="physical",
            ).clone()
            for i, task in enumerate(pending)
        ]
        builder = _pooled_builder(worker_log, cross_compiler=measure.cross_compiler if measure else None)
        try:
            ms.tune_tasks(
                tasks=contexts, task_weights=[float(task.weight) for task in pending], work_dir=str(log_dir),
                max_trials_global=trials, max_trials_per_task=per_task, num_trials_per_iter=per_iter,
                builder=builder, database=database, runner=measure.runner() if measure else "local",
                measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), callback],
            )
        finally:
            builder.shutdown()
    return int(callback.measured)


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder``: one process at a time tunes into a records database."""
    import fcntl

    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_database(db_dir: Path) -> Any:
    from tvm.s_tir import meta_schedule as ms

    try:
        return ms.database.JSONDatabase(work_dir=str(db_dir))
    except Exception as exc:  # a truncated or foreign file: TVM's parser error, whatever its type
        reason = one_line(exc, 200, last=True)
        raise ConfigError(f"tuning records in '{db_dir}' are not a MetaSchedule JSON database "
                          f"(database_workload.json, database_tuning_record.json): {reason}") from None


def tune_with_records(fused: Any, tvm_target: Any, db_dir: Path, trials: int, log_dir: Path,
                      progress: Callable[[str], None], measure: Optional["MeasureOn"] = None) -> tuple[Any, TuningOutcome]:
    """Tune the operator tasks of ``fused`` that have no record in ``db_dir``; return (database, outcome).

    ``measure`` runs candidates on a board behind the RPC tracker; None runs them here."""
    from tvm.s_tir import meta_schedule as ms

    db_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(db_dir):
        database = _open_database(db_dir)  # reopened under the lock: sees others' records
        tasks = ms.relax_integration.extract_tasks(fused, tvm_target)
        pending = [task for task in tasks if not _has_record(database, task, tvm_target)]
        progress(f"tvm-tuned: {len(tasks)} operator tasks, {len(tasks) - len(pending)} with records in {db_dir}")
        start = time.perf_counter()
        measured = 0
        if pending and trials > 0:
            progress(f"tvm-tuned: tuning {len(pending)} tasks with {trials} trials (logs in {log_dir})")
            measured = _tune(pending, database, trials, log_dir, progress, measure)
        tuning_s = time.perf_counter() - start
        # a task can stay without a record: fewer trials than tasks, or every candidate failed
        missing = sum(1 for task in pending if not _has_record(database, task, tvm_target))
    reused = len(tasks) - len(pending)
    return database, TuningOutcome(len(tasks), len(pending) - missing, reused, missing, measured, tuning_s)


class TvmTunedLowering(Lowering[TuneOptions]):
    """ONNX -> Relax -> MetaSchedule tuning (records per target, reused) -> tvm.compile -> .so."""

    name = "tvm-tuned"
    input_format = "onnx"
    output_format = "tvm-lib"
    modules = ("tvm", "xgboost")  # xgboost: MetaSchedule's cost model
    extra = "tvm"
    variants = (Variant("tvm", "fp32", "tuned"),)

    @classmethod
    def expand(cls, candidates: list[NamedOptions], request: PlanRequest) -> list[NamedOptions]:
        """Only with --tune-trials above 0, which the candidates take (and --tuning-records when given)."""
        if request.tune_trials <= 0:
            return []
        tune: dict[str, Any] = {"tune_trials": request.tune_trials}
        if request.tuning_records is not None:
            tune["tuning_records"] = request.tuning_records
        return [(name, {**options, **tune}) for name, options in candidates]

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        import tvm
        from tvm import relax

        start = time.perf_counter()
        options = self.read_options(context)  # tune_trials that is not a count is a ConfigError
        trials = options.tune_trials
        measure = measure_on(target, context.transport.rpc_tracker)
        records = options.records_folder()
        tvm_target = llvm_target(target)
        fused = relax.get_pipeline("zero")(import_onnx(model))
        db_dir, shared = (records, True) if records is not None else records_dir(tvm_target, context.profiles_dir, workdir)
        log_dir = Path(workdir) / f"{model.name}.tvm-tuning-logs"
        try:
            database, outcome = tune_with_records(fused, tvm_target, db_dir, trials, log_dir, context.progress,
                                                  measure)
            context.progress("tvm-tuned: compiling with the tuned schedules")
            with tvm_target, database, tvm.transform.PassContext(opt_level=3):
                tuned = relax.transform.MetaScheduleApplyDatabase()(fused)
            executable = tvm.compile(tuned, target=tvm_target)
        except EdgetuneError:
            raise
        except Exception as exc:
            reason = one_line(exc)
            raise RunnerError(f"TVM tuning or build failed: {reason} (logs in {log_dir})") from None
        out = Path(workdir) / f"{model.name}.tvm-tuned.so"
        details: dict[str, Any] = export_library(executable, out, target)
        details.update({
            "tvm_target": str(tvm_target),
            "tune_trials": trials,
            "trials_measured": outcome.trials_measured,
            "tasks_total": outcome.tasks_total,
            "tasks_tuned": outcome.tasks_tuned,
            "tasks_reused": outcome.tasks_reused,
            "tasks_without_record": outcome.tasks_without_record,
            "tuning_s": round(outcome.tuning_s, 3),
            "records_dir": str(db_dir),
            "records_shared": shared,
            "measured_on": measure.describe() if measure else "this machine",
        })
        if not shared:
            details["records_note"] = "no profiles_dir given: records kept in the work folder and not reused later"
        return Artifact(out, "tvm-lib", time.perf_counter() - start, details)
