"""Isolated timing: each session in a worker process of its own, one worker running at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgetune.bench import BenchConfig, IsolatedRunner, WorkerSession, isolated, measure_interleaved
from edgetune.bench._worker import describe_cpus
from edgetune.errors import RunnerError
from tests.bench._fake_runner import BusyRunner, artifact

QUICK = BenchConfig(warmup_runs=2, warmup_s=0.0, min_repeats=30, budget_s=0.5, ci_rel=0.001, block=5,
                    early_stop_ratio=0)
FEED = {"x": np.ones(3, dtype=np.float32)}


def test_each_session_runs_in_its_own_process_and_returns_its_outputs(tmp_path: Path) -> None:
    runner = isolated(BusyRunner())
    assert isinstance(runner, IsolatedRunner)
    with runner.load(artifact(tmp_path, "a"), 1) as a, runner.load(artifact(tmp_path, "b"), 1) as b:
        assert isinstance(a, WorkerSession)
        pid_a, doubled = a.run(FEED)
        pid_b = b.run(FEED)[0]
        assert {int(pid_a[0]), int(pid_b[0])}.isdisjoint({os.getpid()}) and int(pid_a[0]) != int(pid_b[0])
        np.testing.assert_array_equal(doubled, FEED["x"] * 2)
        assert a.info.pid == int(pid_a[0]) and a.info.load_ms >= 0
        assert a.mode.startswith("isolated worker, 1 thread(s), cpus ")


def test_two_workers_never_run_at_the_same_time(tmp_path: Path) -> None:
    runner = isolated(BusyRunner())
    sessions = {name: runner.load(artifact(tmp_path, name, ms=0.3), 1) for name in ("a", "b", "c")}
    try:
        timings = measure_interleaved(sessions, {name: FEED for name in sessions}, QUICK)
    finally:
        for session in sessions.values():
            session.close()
    blocks = sorted((block for timing in timings.values() for block in timing.blocks), key=lambda b: b.start_ns)
    assert len({block.pid for block in blocks}) == 3 and os.getpid() not in {block.pid for block in blocks}
    assert all(len(timing.blocks) >= 2 for timing in timings.values())
    for earlier, later in zip(blocks, blocks[1:]):
        assert earlier.end_ns <= later.start_ns, "two workers' blocks overlap"
    pids = [block.pid for block in blocks]
    assert any(p != q for p, q in zip(pids, pids[1:])), "blocks are interleaved round-robin"


def test_the_parent_loads_no_runtime(tmp_path: Path) -> None:
    """A fresh parent that times an ONNX Runtime session through a worker never imports onnxruntime itself."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from pathlib import Path
        from edgetune.bench import BenchConfig, isolated, measure_interleaved
        from edgetune.runners import get_runner
        runner = isolated(get_runner("onnxruntime"))
        with runner.load(Path({str(model)!r}), 1) as session:
            out = session.run({{"x": -np.ones((1, 4), np.float32)}})[0]
            timing = measure_interleaved({{"m": session}}, {{"m": {{"x": np.ones((1, 4), np.float32)}}}},
                                         BenchConfig(budget_s=0.2, min_repeats=10))["m"]
        assert (out == 0).all() and timing.stats.n >= 10
        print("onnxruntime" in sys.modules)
    """)
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                           cwd=Path(__file__).parents[2])
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == "False"


def _time_beside_a_healthy_one(tmp_path: Path, runner, name: str, **spec: object) -> tuple[dict, dict[str, str], dict]:
    """Time a misbehaving fake beside a healthy one; returns (timings, failures, sessions)."""
    sessions = {name: runner.load(artifact(tmp_path, name, ms=0.2, **spec), 1),
                "lives": runner.load(artifact(tmp_path, "lives", ms=0.2), 1)}
    failures: dict[str, str] = {}
    try:
        timings = measure_interleaved(sessions, {n: FEED for n in sessions}, QUICK, failures)
    finally:
        for session in sessions.values():
            session.close()
    return timings, failures, sessions


def test_a_worker_killed_mid_timing_fails_only_its_candidate(tmp_path: Path) -> None:
    timings, failures, _ = _time_beside_a_healthy_one(tmp_path, isolated(BusyRunner()), "dies", die_after=25)
    assert set(timings) == {"lives"} and timings["lives"].stats.n >= QUICK.min_repeats
    assert "died" in failures["dies"] and "SIGKILL" in failures["dies"]


def test_a_hung_worker_is_killed_after_its_timeout(tmp_path: Path) -> None:
    timings, failures, sessions = _time_beside_a_healthy_one(tmp_path, isolated(BusyRunner(), timeout_s=3), "hangs",
                                                             hang_after=20)
    assert set(timings) == {"lives"}
    assert "did not answer" in failures["hangs"] and "killed" in failures["hangs"]
    pid = sessions["hangs"].info.pid
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_worker_error_reaches_the_parent_as_the_same_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="cannot load bad.json: no such op"):
        isolated(BusyRunner()).load(artifact(tmp_path, "bad", fail_load="no such op"), 1)


def test_inside_reusing_a_closed_sessions_process_serves_the_next(tmp_path: Path) -> None:
    runner = isolated(BusyRunner())
    with runner.reusing():
        with runner.load(artifact(tmp_path, "a"), 1) as first:
            pid = first.info.pid
        with runner.load(artifact(tmp_path, "b"), 1) as second:
            assert second.info.pid == pid
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    with runner.load(artifact(tmp_path, "c"), 1) as third:  # outside the scope: a fresh process
        assert third.info.pid != pid


def test_idle_workers_are_stopped_between_their_blocks(tmp_path: Path) -> None:
    runner = isolated(BusyRunner())
    with runner.load(artifact(tmp_path, "a"), 1) as session:
        session.run(FEED)
        state = Path(f"/proc/{session.info.pid}/stat").read_text().split()[2]
        assert state == "T"  # stopped: none of its threads can run until the parent resumes it


def test_boards_and_simulators_are_not_wrapped() -> None:
    class DeviceTimed(BusyRunner):
        host_timed = False

    runner = DeviceTimed()
    assert isolated(runner) is runner


def test_cpu_ranges_read_as_a_person_writes_them() -> None:
    assert describe_cpus((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"
    assert describe_cpus((3,)) == "3"


class _UnsendableRunner(BusyRunner):
    """A runner holding a lambda: it does not pickle, so no worker process can be sent it."""

    def __init__(self) -> None:
        self.hook = lambda: None


def test_a_runner_that_cannot_be_sent_to_its_worker_leaves_no_process(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", recording)
    with pytest.raises(Exception, match="pickle|lambda"):
        isolated(_UnsendableRunner()).load(artifact(tmp_path, "a"), 1)
    assert len(started) == 1 and started[0].poll() is not None  # killed and reaped, not left waiting for a runner
