"""Remote-path benchmark: the MobileNetV2-style network (1x3x224x224) measured through the loopback
RPC path (tracker + `edgetune farm serve` on 127.0.0.1) vs locally, for TVM, ONNX Runtime and
LiteRT, and the arm64 cross-compile time.

What it reports:
  - build time for this CPU, and cross-compile time for rpi4 (aarch64, cortex-a72) and
    jetson-orin-nano (CUDA sm_87 hosted by aarch64 cortex-a78ae), with the ELF machine of each .so;
  - per runtime, load time: local load vs remote (request a board + upload + load);
  - per runtime, latency: local (harness wall clock) vs on the board (TVM: time_evaluator over RPC;
    ONNX Runtime and LiteRT: the harness run on the board by edgetune.measure), the two interleaved
    in the same rounds, several rounds so their spread shows the noise floor;
  - per runtime, per-call round trip through RPC (run + fetch outputs; and with the input upload
    too), i.e. what a remote call costs beyond the board-timed latency.

Run:  .venv/bin/python benchmarks/rpc/run.py [--rounds 3] [--budget-s 5] [--threads 2] [--calls 30]
                                             [--runtimes tvm,onnxruntime,litert]
Prints a summary and writes benchmarks/results/rpc_<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgetune.bench import BenchConfig, measure_interleaved, random_inputs  # noqa: E402
from edgetune.farm import farm_status, start_tracker  # noqa: E402
from edgetune.lowering import LoweringContext  # noqa: E402
from edgetune.lowering._tvm import TvmLowering  # noqa: E402
from edgetune.models import load_model  # noqa: E402
from edgetune.runners import get_runner  # noqa: E402
from edgetune.runners._rpc import RemoteTvmRunner  # noqa: E402
from edgetune.runners._rpc_runtime import RemoteLiteRtRunner, RemoteOrtRunner  # noqa: E402
from edgetune.targets import detect_host, load_target  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
KEY = "bench-loopback"
MODEL = "edgetune.models.zoo:mobilenet_v2_like"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(model, target_name: str, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    artifact = TvmLowering().apply(model, load_target(target_name), folder, LoweringContext())
    head = artifact.path.read_bytes()[:20]
    row = {"target": target_name, "build_s": artifact.build_s, "size_kb": artifact.size_bytes / 1024,
           "elf_machine": int.from_bytes(head[18:20], "little"), "path": str(artifact.path),
           "cross_compiler": artifact.details.get("cross_compiler")}
    print(f"  {target_name:<18} {artifact.build_s:6.1f} s  {row['size_kb']:8.0f} KB  ELF machine {row['elf_machine']}"
          f"  {row['cross_compiler'] or 'native'}", flush=True)
    return row


def median_wall_ms(call, count: int) -> float:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def tflite_artifact(folder: Path) -> Path:
    """The network as fp32 .tflite (the tflite lowering converts from PyTorch)."""
    from edgetune.lowering._tflite import TfliteLowering

    model = load_model(MODEL, input_shape=(1, 3, 224, 224), workdir=folder)
    artifact = TfliteLowering().apply(model, load_target("host-cpu"), folder, LoweringContext())
    print(f"  {'litert (host-cpu)':<18} {artifact.build_s:6.1f} s  {artifact.size_bytes / 1024:8.0f} KB", flush=True)
    return artifact.path


def compare(runtime: str, artifact: Path, remote_runner, feeds: dict, args: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def]
    """Local vs board-timed latency of one runtime's artifact, interleaved, and the per-call round trip."""
    start = time.perf_counter()
    local = get_runner(runtime).load(artifact, args.threads)
    local_load_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    remote = remote_runner.load(artifact, args.threads)
    remote_load_ms = (time.perf_counter() - start) * 1e3
    max_abs = float(np.max(np.abs(remote.run(feeds)[0] - local.run(feeds)[0])))
    print(f"{runtime}: load local {local_load_ms:.0f} ms, remote (request board + upload "
          f"{artifact.stat().st_size / 1e6:.1f} MB + load) {remote_load_ms:.0f} ms; outputs max |diff| {max_abs:.2e}",
          flush=True)
    rounds = []
    config = BenchConfig(budget_s=args.budget_s)
    for index in range(args.rounds):
        timings = measure_interleaved({"local": local, "rpc": remote}, {"local": feeds, "rpc": feeds}, config)
        row = {name: {"median_ms": t.stats.median_ms, "ci_rel": t.stats.ci_rel, "n": len(t.samples_ms)}
               for name, t in timings.items()}
        row["rpc_over_local"] = row["rpc"]["median_ms"] / row["local"]["median_ms"]
        rounds.append(row)
        print(f"  round {index + 1}: local {row['local']['median_ms']:.2f} ms (n={row['local']['n']}), "
              f"board-timed over RPC {row['rpc']['median_ms']:.2f} ms (n={row['rpc']['n']}), "
              f"ratio {row['rpc_over_local']:.3f}", flush=True)
    remote.set_inputs(feeds)
    call_ms = median_wall_ms(remote.invoke, args.calls)  # run on the board + fetch outputs
    call_upload_ms = median_wall_ms(lambda: remote.run(feeds), args.calls)  # + upload the input first
    local.set_inputs(feeds)
    local_call_ms = median_wall_ms(local.invoke, args.calls)
    board_ms = statistics.median(r["rpc"]["median_ms"] for r in rounds)
    print(f"  per call, wall clock on the workstation (median of {args.calls}): local {local_call_ms:.2f} ms; "
          f"RPC run+fetch {call_ms:.2f} ms; RPC upload+run+fetch {call_upload_ms:.2f} ms "
          f"(board-timed median {board_ms:.2f} ms)", flush=True)
    ratios = [r["rpc_over_local"] for r in rounds]
    local.close()
    remote.close()
    return {
        "load_ms": {"local": local_load_ms, "remote": remote_load_ms},
        "artifact_mb": artifact.stat().st_size / 1e6,
        "outputs_max_abs_diff": max_abs,
        "rounds": rounds,
        "rpc_over_local_ratio": {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)},
        "per_call_wall_ms": {"local_invoke": local_call_ms, "rpc_run_fetch": call_ms,
                             "rpc_upload_run_fetch": call_upload_ms, "board_timed_median": board_ms},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=30, help="calls for the per-call round-trip medians")
    parser.add_argument("--runtimes", default="tvm,onnxruntime,litert", help="comma-separated, of tvm, onnxruntime, litert")
    parser.add_argument("--skip-cross", action="store_true")
    parser.add_argument("--no-save", action="store_true", help="print only (a smoke run): no results file")
    args = parser.parse_args()
    runtimes = [r for r in args.runtimes.split(",") if r]
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="edgetune-rpc-bench-"))
    model = load_model(MODEL, input_shape=(1, 3, 224, 224), workdir=work / "model")
    report: dict = {"model": MODEL, "input_shape": [1, 3, 224, 224], "threads": args.threads,
                    "machine": {"cpu": detect_host().model, "cores": detect_host().cores_physical}, "builds": [],
                    "runtimes": {}}

    print("builds (ONNX import + tvm.compile + export_library):", flush=True)
    host = build(model, "host-cpu", work / "host")
    report["builds"].append(host)
    if not args.skip_cross:
        for name in ("rpi4", "jetson-orin-nano"):
            report["builds"].append(build(model, name, work / name))
    artifacts = {"tvm": Path(host["path"]), "onnxruntime": Path(model.onnx_path)}
    if "litert" in runtimes:
        artifacts["litert"] = tflite_artifact(work / "tflite")

    tracker = start_tracker("127.0.0.1", free_port())
    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "edgetune.cli.main", "farm", "serve", "--tracker", str(tracker.address), "--key", KEY,
         "--port", str(port), "--port-end", str(port + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while (farm_status(tracker.address).key(KEY) is None) and time.monotonic() < deadline:
            time.sleep(0.2)
        feeds = random_inputs(model.inputs, seed=0)[0]
        remotes = {"tvm": RemoteTvmRunner(tracker.address, KEY), "onnxruntime": RemoteOrtRunner(tracker.address, KEY),
                   "litert": RemoteLiteRtRunner(tracker.address, KEY)}
        for runtime in runtimes:
            report["runtimes"][runtime] = compare(runtime, artifacts[runtime], remotes[runtime], feeds, args)
    finally:
        os.killpg(board.pid, signal.SIGKILL)
        board.wait(10)
        tracker.stop()
    if args.no_save:
        print("\nsmoke run: nothing written")
        return
    path = RESULTS / f"rpc_{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
