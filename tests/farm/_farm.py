"""Loopback boards for the rpc tests: a tracker in the test process, `edgetune farm serve` processes as boards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

from edgetune.farm import TrackerAddress, farm_status, start_tracker

REPO = Path(__file__).resolve().parents[2]
KEY = "loopback-board"
ARTIFACT_FIXTURES = {"tvm": "host_artifact", "onnxruntime": "tiny_onnx", "litert": "litert_artifact"}  # per runtime


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

    def serve(self, key: str, log: Path, command: Optional[Sequence[str]] = None,
              pythonpath: Sequence[Path] = ()) -> int:
        """Start a board under ``key``: `edgetune farm serve`, or ``command`` (which takes the same options)."""
        port = free_port()
        base = list(command or [sys.executable, "-m", "edgetune.cli.main", "farm", "serve"])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (*pythonpath, REPO))}
        with log.open("wb") as sink:
            self.boards[port] = subprocess.Popen(
                [*base, "--tracker", str(self.tracker), "--key", key, "--port", str(port), "--port-end", str(port + 1)],
                stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        return port

    def wait_for(self, key: str, count: int, timeout_s: float = 90.0) -> None:
        """Wait until ``count`` boards of ``key`` are registered and free."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = farm_status(self.tracker).key(key)
            if status is not None and status.boards == count and status.free == count:
                return
            for process in self.boards.values():
                if process.poll() is not None:
                    pytest.fail(f"an RPC server exited early (logs in {self.targets_dir})")
            time.sleep(0.2)
        pytest.fail(f"{count} boards of '{key}' did not register within {timeout_s} s")


def write_target(folder: Path, key: str) -> None:
    (folder / f"{key}.yaml").write_text(
        f"schema_version: 1\nname: {key}\nkind: cpu\ntransport: rpc\nrpc_key: {key}\n"
        "description: this machine's CPU behind an RPC server on loopback\n"
        "runtimes: [tvm, onnxruntime, litert]\nthreads: 1\n"
    )


@contextmanager
def loopback_farm(folder: Path, boards: int = 2, key: str = KEY) -> Iterator[Farm]:
    """A tracker and ``boards`` boards of ``key``; every process group is killed at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    write_target(folder, key)
    tracker = start_tracker("127.0.0.1", free_port())
    farm = Farm(tracker.address, folder)
    try:
        for index in range(boards):
            farm.serve(key, folder / f"{key}-{index}.log")
        farm.wait_for(key, boards)
        yield farm
    finally:
        for process in farm.boards.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
        tracker.stop()
