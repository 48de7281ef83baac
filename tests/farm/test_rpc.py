"""Boards behind a TVM RPC tracker, on loopback: a tracker in this process, two `edgetune farm serve`
processes standing in for boards under one key. The fault test kills one board and stays last."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

pytest.importorskip("tvm")
pytest.importorskip("tornado")

from edgetune.bench import BenchConfig, ResultsStore  # noqa: E402
from edgetune.errors import EdgetuneError, RemoteError  # noqa: E402
from edgetune.farm import TrackerAddress, exposure_notice, farm_status, request_board, start_tracker  # noqa: E402
from edgetune.pipeline import benchmark  # noqa: E402
from edgetune.runners._rpc import RemoteTvmRunner  # noqa: E402
from edgetune.targets import load_target, runnability  # noqa: E402

pytestmark = pytest.mark.rpc

REPO = Path(__file__).resolve().parents[2]
KEY = "loopback-board"
FAST = BenchConfig(budget_s=0.3, min_repeats=5, warmup_runs=1, warmup_s=0.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Farm:
    tracker: TrackerAddress
    targets_dir: Path
    boards: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)  # RPC server port -> process

    def kill(self, address: str) -> None:
        """Kill the board serving at host:port, session processes included (its process group)."""
        process = self.boards.pop(int(address.rsplit(":", 1)[1]))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _serve(tracker: TrackerAddress, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "edgetune.cli.main", "farm", "serve", "--tracker", str(tracker), "--key", KEY,
             "--port", str(port), "--port-end", str(port + 1)],
            stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )


def _wait_for_boards(farm: Farm, count: int, logs: list[Path], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = farm_status(farm.tracker).key(KEY)
        if status is not None and status.boards == count and status.free == count:
            return
        for process, log in zip(farm.boards.values(), logs):
            if process.poll() is not None:
                pytest.fail(f"RPC server exited early: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"{count} boards did not register within {timeout_s} s")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    folder = tmp_path_factory.mktemp("farm")
    (folder / f"{KEY}.yaml").write_text(
        f"schema_version: 1\nname: {KEY}\nkind: cpu\ntransport: rpc\nrpc_key: {KEY}\n"
        "description: this machine's CPU behind an RPC server on loopback\nruntimes: [tvm, onnxruntime]\nthreads: 1\n"
    )
    tracker = start_tracker("127.0.0.1", free_port())
    farm = Farm(tracker.address, folder)
    logs = []
    try:
        for index in range(2):
            port = free_port()
            logs.append(folder / f"board{index}.log")
            farm.boards[port] = _serve(tracker.address, port, logs[-1])
        _wait_for_boards(farm, 2, logs)
        yield farm
    finally:
        for process in farm.boards.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
        tracker.stop()


def _runner(farm: Farm, **kwargs: float) -> RemoteTvmRunner:
    return RemoteTvmRunner(farm.tracker, KEY, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def host_artifact(tmp_path_factory: pytest.TempPathFactory, tiny_onnx: Path) -> Path:
    """The tiny CNN built by the tvm lowering for this machine's CPU (what the loopback boards run)."""
    from edgetune.lowering import LoweringContext
    from edgetune.lowering._tvm import TvmLowering
    from edgetune.models import load_model

    folder = tmp_path_factory.mktemp("artifact")
    model = load_model(tiny_onnx, workdir=folder)
    return TvmLowering().apply(model, load_target("host-cpu"), folder, LoweringContext()).path


def _feeds(seed: int = 0) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).standard_normal((1, 1, 8, 8)).astype(np.float32)}


def test_status_lists_boards_and_free_per_key(farm: Farm) -> None:
    status = farm_status(farm.tracker)
    key = status.key(KEY)
    assert key is not None and (key.boards, key.free, key.pending) == (2, 2, 0)
    assert sorted(int(a.rsplit(":", 1)[1]) for k, a in status.boards if k == KEY) == sorted(farm.boards)


def test_status_cli(farm: Farm) -> None:
    from click.testing import CliRunner

    from edgetune.cli.main import cli

    result = CliRunner().invoke(cli, ["farm", "status", "--tracker", str(farm.tracker), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["keys"] == [{"key": KEY, "boards": 2, "free": 2, "pending": 0}]


def test_bench_runs_on_a_board_and_stores_the_board_timings(farm: Farm, tiny_onnx: Path,
                                                             isolated_results: Path) -> None:
    evaluation = benchmark(tiny_onnx, KEY, targets_dir=farm.targets_dir, rpc_tracker=str(farm.tracker), config=FAST)
    by_name = {r.name: r for r in evaluation.results}
    tvm = by_name["tvm-fp32"]
    assert tvm.status == "ok", tvm.reason
    assert tvm.fidelity is not None and tvm.fidelity.passed  # outputs fetched from the board match ONNX Runtime's
    assert tvm.timing is not None and len(tvm.timing.samples_ms) >= 5 and min(tvm.timing.samples_ms) > 0
    assert by_name["onnxruntime-fp32"].status == "skipped" and "RPC" in by_name["onnxruntime-fp32"].reason
    with ResultsStore(isolated_results) as store:
        rows = store.rows(run_id=evaluation.run_id)
    assert [(r["candidate"], r["status"]) for r in rows] == [("tvm-fp32", "ok")]
    assert rows[0]["target"] == KEY


def test_session_matches_local_outputs_and_times_on_the_board(farm: Farm, host_artifact: Path) -> None:
    from edgetune.runners import get_runner

    with get_runner("tvm").load(host_artifact, 1) as local, _runner(farm).load(host_artifact, 1) as remote:
        for seed in range(2):
            np.testing.assert_allclose(remote.run(_feeds(seed))[0], local.run(_feeds(seed))[0], rtol=1e-5, atol=1e-6)
        timed = remote.device_timed(4)
        assert timed is not None and len(timed) == 4 and all(t > 0 for t in timed)
        assert remote.device_timed(0) == []  # tells the harness the board times itself


def test_candidates_use_several_boards_and_take_turns_when_outnumbered(farm: Farm, host_artifact: Path) -> None:
    runner = _runner(farm)
    sessions = [runner.load(host_artifact, 1) for _ in range(3)]  # 3 sessions, 2 boards
    try:
        for session in sessions:
            session.set_inputs(_feeds())
            assert len(session.device_timed(2) or []) == 2
        assert len({s.boards_used[0] for s in sessions[:2]}) == 2  # the first two ran in parallel on both boards
        assert all(not s.faults for s in sessions)
    finally:
        for session in sessions:
            session.close()


def test_unknown_key_is_a_one_line_error(farm: Farm) -> None:
    with pytest.raises(RemoteError) as info:
        request_board(farm.tracker, "no-such-board", wait_s=1)
    message = str(info.value)
    assert "\n" not in message and "no-such-board" in message and "edgetune farm serve" in message


def test_unreachable_tracker_is_a_one_line_error(tiny_onnx: Path, farm: Farm) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(RemoteError) as info:
        benchmark(tiny_onnx, KEY, targets_dir=farm.targets_dir, rpc_tracker=nowhere, config=FAST)
    assert time.monotonic() - start < 30  # no minute-long retries
    assert "\n" not in str(info.value) and f"cannot reach the RPC tracker at {nowhere}" in str(info.value)


def test_rpc_target_needs_a_tracker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGETUNE_RPC_TRACKER", raising=False)
    verdict = runnability(load_target("rpi4"))
    assert not verdict.runnable and "--rpc-tracker" in verdict.reason and "EDGETUNE_RPC_TRACKER" in verdict.reason
    monkeypatch.setenv("EDGETUNE_RPC_TRACKER", "127.0.0.1:9190")
    assert runnability(load_target("rpi4")).runnable


def test_non_loopback_bind_is_announced() -> None:
    notice = exposure_notice("0.0.0.0", 9090, "RPC server")
    assert notice is not None and "not secrets" in notice and "0.0.0.0:9090" in notice
    assert exposure_notice("127.0.0.1", 9090, "RPC server") is None


def test_board_killed_mid_run_is_retried_elsewhere_and_results_survive(  # keep last: it kills boards
        farm: Farm, tiny_onnx: Path, host_artifact: Path, isolated_results: Path) -> None:
    first = benchmark(tiny_onnx, KEY, targets_dir=farm.targets_dir, rpc_tracker=str(farm.tracker), config=FAST)
    with ResultsStore(isolated_results) as store:
        before = store.rows()
    assert [r["status"] for r in before] == ["ok"]

    heard: list[str] = []
    session = _runner(farm, notify=heard.append).load(host_artifact, 1)  # type: ignore[arg-type]
    session.set_inputs(_feeds())
    samples = list(session.device_timed(3) or [])
    doomed = session.board
    assert doomed is not None
    farm.kill(doomed)
    samples += session.device_timed(3) or []  # the board is gone mid-run: retried on the other one
    assert len(samples) == 6 and session.board not in (None, doomed)
    assert len(session.faults) == 1 and doomed in session.faults[0] and doomed in heard[0]
    assert session.run(_feeds())[0].shape == (1, 3)  # outputs come back from the new board too

    farm.kill(session.board)  # no board left: a clear error for this measurement, nothing stored is lost
    with pytest.raises(RemoteError) as info:
        session.device_timed(3)
    assert "failed while timing" in str(info.value) and "no board is registered" in str(info.value)
    session.close()
    with pytest.raises(EdgetuneError):
        benchmark(tiny_onnx, KEY, targets_dir=farm.targets_dir, rpc_tracker=str(farm.tracker), config=FAST)
    with ResultsStore(isolated_results) as store:
        after = store.rows()
    assert [(r["run_id"], r["status"]) for r in after] == [(first.run_id, "ok")]
    assert after[0]["samples_ms"] == before[0]["samples_ms"]
