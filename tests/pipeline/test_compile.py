from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgetune import benchmark, compile_model
from edgetune.bench import BenchConfig, ResultsStore
from edgetune.errors import ConfigError, TargetNotRunnableError, UnknownTargetError
from edgetune.lowering import LoweringContext
from edgetune.pipeline import CompileOptions, NoViableCandidateError, Tolerance, options_from, plans_for, select_winner
from edgetune.targets import load_target

QUICK = BenchConfig(warmup_runs=3, warmup_s=0.0, min_repeats=10, budget_s=0.3)


def test_compile_torch_model_end_to_end(tiny_pt2: Path, tmp_path: Path, isolated_results: Path) -> None:
    out = tmp_path / "out"
    result = compile_model(tiny_pt2, "host-cpu", out, config=QUICK)
    statuses = {r.name: r.status for r in result.evaluation.results}
    assert {"onnxruntime-fp32", "tvm-fp32", "litert-fp32", "onnxruntime-int8-static", "litert-int8"} <= set(statuses)
    assert set(statuses.values()) == {"ok"}, statuses
    assert result.winner is not None and result.artifact is not None and result.artifact.exists()
    # the winner is the fastest, or a lower-risk candidate statistically tied with it
    fastest = min(result.evaluation.results, key=lambda r: r.timing.stats.median_ms)
    assert result.winner.name == fastest.name or (
        result.winner.timing.stats.ci_low_ms <= fastest.timing.stats.ci_high_ms
        and result.winner.plan.exact and not fastest.plan.exact)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["winner"]["name"] == result.winner.name and manifest["winner"]["reason"]
    assert manifest["input_model"]["sha256"] == result.evaluation.model.sha256
    assert manifest["target"]["name"] == "host-cpu" and manifest["threads"] >= 1
    assert manifest["environment"]["libraries"]["onnxruntime"]
    for candidate in manifest["candidates"]:
        assert candidate["latency"]["median_ms"] > 0
        if candidate["precision"] == "fp32":
            assert candidate["fidelity"]["passed"] and candidate["fidelity"]["max_abs_err"] < 1e-3
        assert candidate["accuracy"]["metric"] == "top1_agreement" and candidate["accuracy"]["allowed"]
        assert Path(candidate["artifact"]).exists() and len(candidate["artifact_sha256"]) == 64
        assert candidate["measurement_mode"].startswith("isolated worker, ")  # each candidate timed alone
    noise = manifest["timing_noise"]  # how much of the machine was not ours while timing, and whether that is noisy
    assert 0 <= noise["other_processes_share"] <= 1 and 0 <= noise["steal_share"] <= 1 and "warning" in noise
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("edgetune compile") and "measured: isolated worker" in summary
    report = (out / "report.html").read_text()
    assert "<svg" in report and result.winner.name in report and "isolated worker" in report
    # no --calib: int8 was calibrated on random inputs, and the manifest says so
    assert manifest["data"]["calibration"]["random"] and any("random" in w for w in manifest["warnings"])

    with ResultsStore(isolated_results) as store:
        rows = store.rows(run_id=result.evaluation.run_id)
    assert {r["candidate"] for r in rows} == set(statuses)
    assert all(r["fingerprint"]["artifact_sha256"] and r["samples_ms"] for r in rows)


def test_unsupported_op_fails_one_runtime_only(unsupported_op_onnx: Path, tmp_path: Path) -> None:
    result = compile_model(unsupported_op_onnx, "host-cpu", tmp_path / "out", config=QUICK,
                           runtimes=["onnxruntime", "tvm", "litert"], options=CompileOptions(calib_samples=8))
    by_name = {r.name: r for r in result.evaluation.results}
    assert by_name["tvm-fp32"].status == "failed" and "Celu" in by_name["tvm-fp32"].reason
    # LiteRT takes the ONNX model through onnx2torch, which converts Celu
    assert by_name["litert-fp32"].status == "ok", by_name["litert-fp32"].reason
    assert by_name["onnxruntime-fp32"].status == "ok"
    assert result.winner is not None and result.winner.name != "tvm-fp32"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {c["name"]: c["status"] for c in manifest["candidates"]}["tvm-fp32"] == "failed"


def test_no_viable_candidate_still_writes_manifest(tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # a tolerance nothing can meet except bit-exact; TVM differs from ORT in the last bits
    with pytest.raises(NoViableCandidateError, match="manifest.json"):
        compile_model(tiny_onnx, "host-cpu", out, runtimes=["tvm"], config=QUICK, tolerance=Tolerance(rtol=0.0, atol=0.0))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["winner"] is None and manifest["no_winner_reason"]
    assert manifest["candidates"][0]["status"] == "rejected"


def test_benchmark_stores_each_runtime(tiny_onnx: Path, isolated_results: Path) -> None:
    evaluation = benchmark(tiny_onnx, "host-cpu", runtimes=["onnxruntime"], threads=1, config=QUICK)
    assert [r.name for r in evaluation.results] == ["onnxruntime-fp32"]
    assert evaluation.threads == 1 and evaluation.environment["threads"] == 1
    with ResultsStore(isolated_results) as store:
        rows = store.rows()
    assert len(rows) == 1 and rows[0]["threads"] == 1 and rows[0]["status"] == "ok"


def test_tflite_input_runs_on_litert(tiny_pt2: Path, tmp_path: Path) -> None:
    from edgetune.lowering import get_lowering
    from edgetune.models import load_model

    tflite = get_lowering("tflite").apply(load_model(tiny_pt2, workdir=tmp_path), load_target("host-cpu"), tmp_path, LoweringContext()).path
    result = compile_model(tflite, "host-cpu", tmp_path / "out", config=QUICK, runtimes=["onnxruntime", "litert"])
    by_name = {r.name: r.status for r in result.evaluation.results}
    assert by_name["litert-fp32"] == "ok" and by_name["onnxruntime-fp32"] == "skipped"
    assert result.artifact is not None and result.artifact.suffix == ".tflite"


def test_target_errors(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownTargetError):
        compile_model(tiny_onnx, "nope", tmp_path / "o")
    with pytest.raises(TargetNotRunnableError):
        compile_model(tiny_onnx, "rpi4", tmp_path / "o")
    with pytest.raises(ConfigError, match="does not list runtime"):
        plans_for(load_target("host-cpu"), ["no-such-runtime"])
    with pytest.raises(ConfigError, match="--threads"):
        benchmark(tiny_onnx, "host-cpu", threads=0)


def test_select_winner_explains_noise() -> None:
    from edgetune.bench import Timing, latency_stats
    from edgetune.pipeline import CandidatePlan, CandidateResult

    def result(name: str, samples: list[float]) -> CandidateResult:
        r = CandidateResult(CandidatePlan(name, "onnxruntime", ("onnx",)), status="ok")
        r.timing = Timing(latency_stats(samples), tuple(samples), True, 1.0)
        return r

    a = result("a", list(np.linspace(0.9, 1.1, 201)))
    b = result("b", list(np.linspace(0.91, 1.11, 201)))  # 1% slower, well inside the noise
    c = result("c", list(np.linspace(1.9, 2.1, 201)))
    winner, reason = select_winner([b, a])
    assert winner is a and "within measurement noise" in reason
    winner, reason = select_winner([c, a])
    assert winner is a and "noise" not in reason and "2.0" in reason
    assert select_winner([])[0] is None

    # an int8 candidate 1% faster, within noise, does not beat exact fp32
    q = result("q", list(np.linspace(0.89, 1.09, 201)))
    q.plan = CandidatePlan("q", "onnxruntime", ("onnx", "ort-int8-static"), "int8")
    q.accuracy = {"drop_points": 0.5, "metric": "top1_accuracy", "value": 0.9, "reference_value": 0.905}
    winner, reason = select_winner([q, a])
    assert winner is a and "less accuracy risk" in reason
    # ... but a clearly faster one does
    q.timing = Timing(latency_stats(list(np.linspace(0.4, 0.5, 201))), (), True, 1.0)
    assert select_winner([q, a])[0] is q


def _digits_npz(tmp_path: Path, rows: slice, name: str, labels: bool = True) -> Path:
    from edgetune.data import load_dataset

    digits = load_dataset("digits")
    path = tmp_path / f"{name}.npz"
    arrays = {"x": digits.x[rows]}
    if labels:
        arrays["y"] = digits.y[rows]
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgetune.models import export_zoo_model

    path = tmp_path_factory.mktemp("digits") / "digits.pt2"
    export_zoo_model("digits-cnn", path, train_epochs=10)
    return path


def test_eval_data_gives_top1_and_budget(digits_model: Path, tmp_path: Path) -> None:
    calib = _digits_npz(tmp_path, slice(0, 300), "calib", labels=False)
    evaluation = _digits_npz(tmp_path, slice(1400, 1797), "eval")
    options = CompileOptions(calib=str(calib), eval=str(evaluation), max_accuracy_drop=1.0)
    result = compile_model(digits_model, "host-cpu", tmp_path / "out", runtimes=["onnxruntime"], config=QUICK,
                           options=options)
    by_name = {r.name: r for r in result.evaluation.results}
    fp32 = by_name["onnxruntime-fp32"].accuracy
    assert fp32["metric"] == "top1_accuracy" and fp32["value"] > 0.8 and fp32["drop_points"] == 0
    for r in by_name.values():
        assert r.accuracy["samples"] == 397
        assert (r.status == "ok") == (r.accuracy["drop_points"] <= 1.0)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["data"]["calibration"]["source"] == "calib" and not manifest["data"]["calibration"]["random"]
    assert manifest["warnings"] == []

    # a budget of -0 points with a deliberately bad quantizer setting rejects int8 candidates
    strict = CompileOptions(calib=str(calib), eval=str(evaluation), max_accuracy_drop=0.0, calib_samples=1)
    result = compile_model(digits_model, "host-cpu", tmp_path / "strict", runtimes=["onnxruntime"], config=QUICK,
                           options=strict)
    for r in result.evaluation.results:
        if r.accuracy["drop_points"] > 0:
            assert r.status == "rejected" and "budget" in r.reason


def test_wrong_calibration_shape_is_a_clear_error(digits_model: Path, tmp_path: Path) -> None:
    from edgetune.errors import DatasetError

    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((10, 3, 8, 8), np.float32))
    with pytest.raises(DatasetError, match="samples must be 1x8x8"):
        compile_model(digits_model, "host-cpu", tmp_path / "o", options=CompileOptions(calib=str(bad)))
    with pytest.raises(DatasetError, match="not found"):
        compile_model(digits_model, "host-cpu", tmp_path / "o", options=CompileOptions(calib=str(tmp_path / "none.npz")))


def test_objective_size_picks_the_smallest(digits_model: Path, tmp_path: Path) -> None:
    calib = _digits_npz(tmp_path, slice(0, 200), "calib", labels=False)
    options = CompileOptions(calib=str(calib), objective="size", max_accuracy_drop=100)
    result = compile_model(digits_model, "host-cpu", tmp_path / "out", runtimes=["onnxruntime", "litert"], config=QUICK,
                           options=options)
    ok = [r for r in result.evaluation.results if r.status == "ok"]
    assert result.winner.artifact.size_bytes == min(r.artifact.size_bytes for r in ok)
    assert "artifact size" in result.reason


def test_presets_and_option_validation() -> None:
    thorough = options_from("thorough")
    assert len(thorough.calib_methods) == 3 and thorough.tune_trials > 0 and thorough.prune_ratios
    assert options_from("fast", tune_trials=5).tune_trials == 5
    assert options_from(None, objective=None).objective == "latency"
    with pytest.raises(ConfigError, match="unknown preset"):
        options_from("ludicrous")
    with pytest.raises(ConfigError, match="prune"):
        CompileOptions(prune_ratios=(1.5,))
    with pytest.raises(ConfigError, match="calibration method"):
        CompileOptions(calib_methods=("vibes",))
    plans = plans_for(load_target("host-cpu"), ["onnxruntime"], CompileOptions(calib_methods=("minmax", "entropy")))
    assert {"onnxruntime-int8-static-minmax", "onnxruntime-int8-static-entropy"} <= {p.name for p in plans}


def test_sessions_are_stored_separately_and_pooled(tiny_onnx: Path, tmp_path: Path, isolated_results: Path) -> None:
    result = compile_model(tiny_onnx, "host-cpu", tmp_path / "out", runtimes=["onnxruntime"], config=QUICK,
                           options=CompileOptions(sessions=2, calib_samples=8))
    with ResultsStore(isolated_results) as store:
        rows = [r for r in store.rows(run_id=result.evaluation.run_id) if r["candidate"] == "onnxruntime-fp32"]
    assert [r["session_index"] for r in rows] == [0, 1]
    pooled = next(r for r in result.evaluation.results if r.name == "onnxruntime-fp32").timing
    assert pooled.stats.n == sum(r["n"] for r in rows)
    assert pooled.stats.iqr_ms >= 0 and "iqr_rel" in pooled.stats.to_dict()


def test_a_worker_killed_while_timing_fails_only_its_candidate(tiny_onnx: Path, isolated_results: Path) -> None:
    """The candidates' workers are this process's children; killing one as timing starts fails that one only."""
    import os
    import signal

    killed: list[int] = []

    def kill_one_worker(message: str) -> None:
        if not message.startswith("timing") or killed:
            return
        for pid in os.listdir("/proc"):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError, ValueError):
                continue
            if (b"edgetune.bench._worker" in b" ".join(cmdline) and int(parent) == os.getpid()
                    and "onnxruntime_pybind" in Path(f"/proc/{pid}/maps").read_text()):  # the ONNX Runtime worker
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return

    evaluation = benchmark(tiny_onnx, "host-cpu", runtimes=["onnxruntime", "openvino"], threads=1,
                           precisions=["fp32"], config=QUICK, progress=kill_one_worker)
    by_name = {r.name: r for r in evaluation.results}
    assert killed
    assert by_name["onnxruntime-fp32"].status == "failed" and "SIGKILL" in by_name["onnxruntime-fp32"].reason
    assert by_name["openvino-fp32"].status == "ok" and by_name["openvino-fp32"].timing is not None
    with ResultsStore(isolated_results) as store:
        rows = {r["candidate"]: r for r in store.rows()}
    assert rows["onnxruntime-fp32"]["status"] == "failed" and rows["openvino-fp32"]["samples_ms"]
