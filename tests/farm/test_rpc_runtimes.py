"""ONNX Runtime and LiteRT artifacts on loopback boards (edgetune.measure over TVM's RPC), the board's
fingerprint, and the one-line errors of boards that cannot run them. Board faults: test_rpc.py."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tvm")
pytest.importorskip("tornado")

from edgetune.bench import BenchConfig, ResultsStore  # noqa: E402
from edgetune.errors import RemoteError, RunnerError  # noqa: E402
from edgetune.farm import Board  # noqa: E402
from edgetune.pipeline import benchmark  # noqa: E402
from edgetune.runners import get_runner  # noqa: E402
from edgetune.runners._rpc import remote_runner  # noqa: E402
from edgetune.targets import detect_host, load_target  # noqa: E402
from tests.farm._farm import ARTIFACT_FIXTURES, KEY, Farm, write_target  # noqa: E402

pytestmark = pytest.mark.rpc

FAST = BenchConfig(budget_s=0.3, min_repeats=5, warmup_runs=1, warmup_s=0.0)
PLAIN = "plain-board"  # `python -m tvm.exec.rpc_server`: no edgetune functions
NO_LITERT = "no-litert-board"  # `edgetune farm serve` on a board where LiteRT is not installed
# Makes ai_edge_litert unimportable in the board's process, as on a board without it.
HIDE_LITERT = '''import sys


class _NoLiteRt:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ai_edge_litert":
            raise ImportError("not on this board")
        return None


sys.meta_path.insert(0, _NoLiteRt())
'''


@pytest.fixture(scope="module")
def odd_farm(farm: Farm) -> Farm:
    """The module's farm plus a plain TVM RPC server and a board without LiteRT, each under its own key."""
    shim = farm.targets_dir / "hide-litert"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDE_LITERT)
    farm.serve(PLAIN, farm.targets_dir / f"{PLAIN}.log", command=[sys.executable, "-m", "tvm.exec.rpc_server"])
    farm.serve(NO_LITERT, farm.targets_dir / f"{NO_LITERT}.log", pythonpath=[shim])
    for key in (PLAIN, NO_LITERT):
        write_target(farm.targets_dir, key)
        farm.wait_for(key, 1)
    return farm


def _feeds(seed: int) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).standard_normal((1, 1, 8, 8)).astype(np.float32)}


@pytest.mark.parametrize("runtime", ["onnxruntime", "litert"])
def test_artifact_runs_on_the_board_with_local_outputs_and_board_timings(
        runtime: str, farm: Farm, request: pytest.FixtureRequest) -> None:
    artifact = request.getfixturevalue(ARTIFACT_FIXTURES[runtime])
    runner = remote_runner(runtime, load_target(KEY, farm.targets_dir), str(farm.tracker))
    with get_runner(runtime).load(artifact, 1) as local, runner.load(artifact, 1) as remote:
        for seed in range(2):
            np.testing.assert_allclose(remote.run(_feeds(seed))[0], local.run(_feeds(seed))[0], rtol=1e-5, atol=1e-6)
        timed = remote.device_timed(4)
        assert timed is not None and len(timed) == 4 and all(t > 0 for t in timed)
        assert remote.device_timed(0) == []  # tells the harness the board times itself
        assert remote.board is not None and not remote.faults  # type: ignore[attr-defined]


def test_stored_fingerprint_is_the_boards(farm: Farm, tiny_onnx: Path, isolated_results: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    board = detect_host()  # the loopback boards run on this machine, in their own processes
    workstation = dataclasses.replace(board, model="the workstation's CPU", cores_logical=board.cores_logical + 64)
    monkeypatch.setattr("edgetune.bench._fingerprint.detect_host", lambda: workstation)  # this process only
    evaluation = benchmark(tiny_onnx, KEY, runtimes=["onnxruntime", "tvm"], targets_dir=farm.targets_dir,
                           rpc_tracker=str(farm.tracker), config=FAST)
    with ResultsStore(isolated_results) as store:
        rows = store.rows(run_id=evaluation.run_id)
    assert sorted(r["runtime"] for r in rows if r["status"] == "ok") == ["onnxruntime", "tvm"]
    for row in rows:
        fingerprint = row["fingerprint"]
        # the board's CPU, not the workstation's (its core count follows the board process's affinity, which
        # TVM's thread pool may have pinned in whichever process started it, so only its source is checked)
        assert fingerprint["cpu_model"] == board.model and fingerprint["cores_logical"] != workstation.cores_logical
        libraries = fingerprint["libraries"]
        assert libraries["rpc_key"] == KEY and "onnxruntime" in libraries and "tvm" in libraries  # the board's
        assert "board_environment" not in libraries


def test_plain_tvm_rpc_server_gives_a_one_line_error(odd_farm: Farm, tiny_onnx: Path) -> None:
    runner = remote_runner("onnxruntime", load_target(PLAIN, odd_farm.targets_dir), str(odd_farm.tracker))
    with pytest.raises(RemoteError) as info:
        runner.load(tiny_onnx, 1)
    message = str(info.value)
    assert "\n" not in message and "onnxruntime" in message and f"key '{PLAIN}'" in message
    assert "edgetune farm serve" in message
    assert runner.versions()["board_environment"].startswith('{"cpu_model": "unknown')  # not the workstation's


def test_board_without_the_runtime_gives_a_one_line_error(odd_farm: Farm, litert_artifact: Path,
                                                          tiny_onnx: Path) -> None:
    target = load_target(NO_LITERT, odd_farm.targets_dir)
    with pytest.raises(RemoteError) as info:
        remote_runner("litert", target, str(odd_farm.tracker)).load(litert_artifact, 1)
    message = str(info.value)
    assert "\n" not in message and "runtime litert is not installed" in message and f"key '{NO_LITERT}'" in message
    with remote_runner("onnxruntime", target, str(odd_farm.tracker)).load(tiny_onnx, 1) as session:
        assert session.run(_feeds(0))[0].shape == (1, 3)  # the runtimes it has still run


def test_gpu_target_on_a_board_without_the_cuda_provider_gives_a_one_line_error(farm: Farm, tiny_onnx: Path) -> None:
    (farm.targets_dir / "loopback-gpu.yaml").write_text(
        f"schema_version: 1\nname: loopback-gpu\nkind: gpu\ntransport: rpc\nrpc_key: {KEY}\n"
        "runtimes: [onnxruntime]\nthreads: 1\ngpu:\n  arch: sm_87\n")
    runner = remote_runner("onnxruntime", load_target("loopback-gpu", farm.targets_dir), str(farm.tracker))
    assert runner.versions()["onnxruntime_provider"] == "CUDAExecutionProvider"
    with pytest.raises(RunnerError) as info:  # the loopback boards run the CPU build of ONNX Runtime
        runner.load(tiny_onnx, 1)
    message = str(info.value)
    assert "\n" not in message and "no CUDAExecutionProvider" in message and "onnxruntime-gpu" in message
    assert f"(key '{KEY}')" in message and "board 127.0.0.1:" in message and "loading the artifact failed" in message


def test_board_functions_answer_over_rpc(farm: Farm) -> None:
    from edgetune.farm import request_board
    from edgetune.runners import BOARD_ENVIRONMENT, RUNTIME_VERSIONS

    board: Board = request_board(farm.tracker, KEY, wait_s=30)
    runtimes = json.loads(board.session.get_function(RUNTIME_VERSIONS)())
    assert runtimes["onnxruntime"]["installed"] and runtimes["litert"]["installed"]
    environment = json.loads(board.session.get_function(BOARD_ENVIRONMENT)())
    assert environment["cpu_model"] == detect_host().model and "onnxruntime" in environment["libraries"]


def test_bench_suite_takes_the_rpc_tracker(farm: Farm, tiny_onnx: Path, tmp_path: Path,
                                           isolated_results: Path) -> None:
    from click.testing import CliRunner

    from edgetune.cli.main import cli

    suite = tmp_path / "board.yaml"
    suite.write_text(f"schema_version: 1\ntarget: {KEY}\nsessions: 1\nbudget_s: 0.3\n"
                     f"entries:\n  - name: tiny\n    model: {tiny_onnx}\n    runtimes: [onnxruntime]\n")
    result = CliRunner().invoke(cli, ["bench", "--suite", str(suite), "--rpc-tracker", str(farm.tracker),
                                      "--targets-dir", str(farm.targets_dir), "--json"])
    assert result.exit_code == 0, result.output
    with ResultsStore(isolated_results) as store:
        rows = store.rows()
    assert [(r["target"], r["runtime"], r["status"], r["entry"]) for r in rows] == [(KEY, "onnxruntime", "ok", "tiny")]


@pytest.mark.parametrize("runtime, expected", [("openvino", "not supported yet"), ("onnxruntime", "--rpc-tracker")])
def test_profile_on_a_board_target_fails_fast_with_one_line(runtime: str, expected: str, farm: Farm,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from edgetune.cli.main import main

    monkeypatch.delenv("EDGETUNE_RPC_TRACKER", raising=False)
    tracker = ["--rpc-tracker", str(farm.tracker)] if runtime == "openvino" else []
    with pytest.raises(SystemExit) as info:
        main(["profile", "--target", KEY, "--runtime", runtime, "--budget", "0.05",
              "--targets-dir", str(farm.targets_dir), *tracker])
    assert info.value.code != 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and expected in lines[0], lines
