"""Boards behind a TVM RPC tracker, on loopback: a tracker in this process, two `edgetune farm serve`
processes standing in for boards under one key (tests/farm/_farm.py). The fault tests start their own."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm")
pytest.importorskip("tornado")

from edgetune.bench import BenchConfig, ResultsStore  # noqa: E402
from edgetune.errors import EdgetuneError, RemoteError  # noqa: E402
from edgetune.farm import exposure_notice, farm_status, request_board  # noqa: E402
from edgetune.pipeline import benchmark  # noqa: E402
from edgetune.runners import (
    Runner,  # noqa: E402
    runnability,  # noqa: E402
)
from edgetune.runners._rpc import RemoteTvmRunner, remote_runner  # noqa: E402
from edgetune.targets import load_target  # noqa: E402
from tests.farm._farm import ARTIFACT_FIXTURES, KEY, Farm, free_port, loopback_farm  # noqa: E402

pytestmark = pytest.mark.rpc

FAST = BenchConfig(budget_s=0.3, min_repeats=5, warmup_runs=1, warmup_s=0.0)


def _runner(farm: Farm, **kwargs: float) -> RemoteTvmRunner:
    return RemoteTvmRunner(farm.tracker, KEY, **kwargs)  # type: ignore[arg-type]


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
    for name in ("tvm-fp32", "onnxruntime-fp32"):  # the TVM VM, and ONNX Runtime through edgetune.measure
        result = by_name[name]
        assert result.status == "ok", result.reason
        assert result.fidelity is not None and result.fidelity.passed  # outputs fetched from the board match
        assert result.timing is not None and len(result.timing.samples_ms) >= 5 and min(result.timing.samples_ms) > 0
    with ResultsStore(isolated_results) as store:
        rows = store.rows(run_id=evaluation.run_id)
    # an ONNX model reaches LiteRT too (converted through onnx2torch), timed on the board like the others
    assert sorted((r["candidate"], r["status"]) for r in rows) == [("litert-fp32", "ok"), ("onnxruntime-fp32", "ok"),
                                                                    ("tvm-fp32", "ok")]
    assert {r["target"] for r in rows} == {KEY}


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


def _model_for(runtime: str, tiny_onnx: Path) -> tuple[object, dict[str, object]]:
    """What benchmark() takes to build ``runtime``'s candidate: litert converts from PyTorch."""
    if runtime != "litert":
        return tiny_onnx, {}
    from tests.conftest import tiny_factory

    return tiny_factory(), {"input_shape": (1, 1, 8, 8)}


@pytest.mark.parametrize("runtime", sorted(ARTIFACT_FIXTURES))
def test_board_killed_mid_run_is_retried_elsewhere_and_results_survive(
        runtime: str, tmp_path: Path, tiny_onnx: Path, isolated_results: Path, request: pytest.FixtureRequest) -> None:
    artifact = request.getfixturevalue(ARTIFACT_FIXTURES[runtime])
    model, model_options = _model_for(runtime, tiny_onnx)
    with loopback_farm(tmp_path / "farm-to-kill") as farm:  # its own boards: this test kills them
        target = load_target(KEY, farm.targets_dir)
        first = benchmark(model, KEY, runtimes=[runtime], targets_dir=farm.targets_dir,  # type: ignore[arg-type]
                          rpc_tracker=str(farm.tracker), config=FAST, **model_options)  # type: ignore[arg-type]
        with ResultsStore(isolated_results) as store:
            before = store.rows()
        assert [(r["runtime"], r["status"]) for r in before] == [(runtime, "ok")], before[0]["error"]

        heard: list[str] = []
        runner: Runner = remote_runner(runtime, target, str(farm.tracker), heard.append)
        session = runner.load(artifact, 1)
        session.set_inputs(_feeds())
        samples = list(session.device_timed(3) or [])
        doomed = session.board  # type: ignore[attr-defined]
        assert doomed is not None
        farm.kill(doomed)
        samples += session.device_timed(3) or []  # the board is gone mid-run: retried on the other one
        assert len(samples) == 6 and session.board not in (None, doomed)  # type: ignore[attr-defined]
        faults = session.faults  # type: ignore[attr-defined]
        assert len(faults) == 1 and doomed in faults[0] and doomed in heard[0]
        assert session.run(_feeds())[0].shape == (1, 3)  # outputs come back from the new board too

        farm.kill(session.board)  # type: ignore[attr-defined]  # no board left: a clear error, nothing stored is lost
        with pytest.raises(RemoteError) as info:
            session.device_timed(3)
        assert "failed while timing" in str(info.value) and "no board is registered" in str(info.value)
        session.close()
        with pytest.raises(EdgetuneError):
            benchmark(model, KEY, runtimes=[runtime], targets_dir=farm.targets_dir,  # type: ignore[arg-type]
                      rpc_tracker=str(farm.tracker), config=FAST, **model_options)  # type: ignore[arg-type]
    with ResultsStore(isolated_results) as store:
        after = store.rows()
    assert [(r["run_id"], r["status"]) for r in after] == [(first.run_id, "ok")]
    assert after[0]["samples_ms"] == before[0]["samples_ms"]


def _two_models_of_one_name(folder: Path) -> list[Path]:
    """Two different tiny networks saved under the same file name (a board must not mix them up)."""
    from edgetune.predict._graph import GraphBuilder, to_onnx

    paths = []
    for index, channels in enumerate((4, 6)):
        b = GraphBuilder("net", (1, 1, 8, 8))
        (folder / str(index)).mkdir(parents=True)
        paths.append(to_onnx(b.build(b.relu(b.conv("input", channels, 3, 1))), folder / str(index) / "net.onnx"))
    return paths


def test_sessions_reuse_one_connection_within_a_scope_and_free_the_board_after(
        farm: Farm, host_artifact: Path, tmp_path: Path) -> None:
    from edgetune.lowering import LoweringContext
    from edgetune.lowering._tvm import TvmLowering
    from edgetune.models import load_model
    from edgetune.runners import get_runner
    from edgetune.runners._board_pool import BoardPool
    from edgetune.runners._rpc_runtime import RemoteOrtRunner

    models = _two_models_of_one_name(tmp_path / "onnx")
    libraries = [host_artifact]
    (tmp_path / "tvm").mkdir()
    second = TvmLowering().apply(load_model(models[0], workdir=tmp_path / "tvm"), load_target("host-cpu"),
                                 tmp_path / "tvm", LoweringContext()).path
    libraries.append(second.rename(tmp_path / "tvm" / host_artifact.name))  # same name as the first, other network
    pool = BoardPool(farm.tracker, KEY)
    ort_runner, tvm_runner = RemoteOrtRunner(farm.tracker, KEY), _runner(farm)
    ort_runner.pool = tvm_runner.pool = pool
    work = [(ort_runner, "onnxruntime", m) for m in models] + [(tvm_runner, "tvm", lib) for lib in libraries]
    with pool.reusing():
        for runner, runtime, artifact in work * 2:
            feeds = {"input": np.random.default_rng(1).standard_normal((1, 1, 8, 8)).astype(np.float32)}
            with get_runner(runtime).load(artifact, 1) as local, runner.load(artifact, 1) as remote:
                np.testing.assert_allclose(remote.run(feeds)[0], local.run(feeds)[0], rtol=1e-5, atol=1e-6)
                assert len(remote.device_timed(2) or []) == 2
        assert pool.connects == 1 and pool.connected() == 1  # eight sessions, one board connection
    assert pool.connected() == 0
    farm.wait_for(KEY, 2)  # both boards free at the tracker again


def test_an_idle_connection_goes_back_to_a_waiting_client_and_after_idle_s(farm: Farm, tiny_onnx: Path) -> None:
    import threading

    from edgetune.runners._board_pool import BoardPool
    from edgetune.runners._rpc_runtime import RemoteOrtRunner

    runner = RemoteOrtRunner(farm.tracker, KEY)
    runner.pool = pool = BoardPool(farm.tracker, KEY, idle_s=1.0)
    with pool.reusing():
        runner.load(tiny_onnx, 1).close()
        assert pool.connected() == 1  # kept for the next session
        deadline = time.monotonic() + 10
        while pool.connected() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.connected() == 0  # nobody used it for idle_s: back to the tracker
        farm.wait_for(KEY, 2)

        runner.pool = pool = BoardPool(farm.tracker, KEY, idle_s=600)
        with pool.reusing():
            runner.load(tiny_onnx, 1).close()
            other = request_board(farm.tracker, KEY, wait_s=30)  # another client takes the second board...
            served: list[str] = []

            def waiting_client() -> None:  # ...and a third one waits at the tracker
                board = request_board(farm.tracker, KEY, wait_s=30)
                served.append(board.address)
                time.sleep(0.5)

            thread = threading.Thread(target=waiting_client)
            thread.start()
            deadline = time.monotonic() + 10
            while farm_status(farm.tracker).key(KEY).pending == 0 and time.monotonic() < deadline:  # type: ignore[union-attr]
                time.sleep(0.05)
            with runner.load(tiny_onnx, 1) as session:  # gives its idle board to the waiting client, then waits its turn
                assert served and session.run(_feeds())[0].shape == (1, 3)
            thread.join(30)
            assert pool.connects == 2
            del other
