"""Options shared by several verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from edgetune.targets import TARGETS_DIR_ENV

F = Callable[..., Any]


def targets_dir(f: F) -> F:
    return click.option(
        "--targets-dir", type=click.Path(path_type=Path), default=None,
        help=f"Folder of your own target YAML files (searched before the built-in ones; also ${TARGETS_DIR_ENV}).",
    )(f)


def target(f: F) -> F:
    return click.option("--target", "-t", default="host-cpu", show_default=True, help="Target: a name (see `edgetune targets list`), a target YAML file, or an LLVM target string "
                        "such as \"llvm -mtriple=aarch64-linux-gnu -mcpu=cortex-a72\".")(f)


def input_shape(f: F) -> F:
    return click.option(
        "--input-shape", multiple=True,
        help="Input shape, e.g. 1x3x224x224 (or NAME:SHAPE per input). Needed for PyTorch factories and dynamic ONNX inputs.",
    )(f)


def threads(f: F) -> F:
    return click.option("--threads", type=int, default=None, help="Threads to run with (default: the target's, host: physical cores).")(f)


def runtime(f: F) -> F:
    return click.option("--runtime", "-r", "runtimes", multiple=True, help="Only this runtime (repeatable), e.g. onnxruntime, tvm, litert.")(f)


def results(f: F) -> F:
    return click.option(
        "--results", default=None,
        help="Results store: a SQLite file or a postgresql:// URL (password from the URL or PGPASSWORD; never printed). "
        "Default: $EDGETUNE_RESULTS or ~/.local/share/edgetune/results.sqlite.",
    )(f)


def json_output(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")(f)


def budget(default: float) -> Callable[[F], F]:
    def wrap(f: F) -> F:
        return click.option(
            "--budget-s", type=float, default=default, show_default=True,
            help="Timing budget per candidate in seconds (stops earlier once the median's 95% CI is within +-1%).",
        )(f)

    return wrap


def rpc_tracker(f: F) -> F:
    return click.option(
        "--rpc-tracker", "rpc_tracker", default=None, metavar="HOST:PORT",
        help="TVM RPC tracker for targets reached over RPC (e.g. rpi4); default $EDGETUNE_RPC_TRACKER.",
    )(f)


def rpc_key(f: F) -> F:
    return click.option(
        "--rpc-key", "rpc_key", default=None, metavar="KEY",
        help="Key of the boards at the RPC tracker (overrides the target's rpc_key; with an LLVM target string it "
             "makes the target a board behind the tracker). Keys are labels, not secrets.",
    )(f)


def per_layer(f: F) -> F:
    f = click.option("--per-layer-out", type=click.Path(path_type=Path), default=None,
                     help="With --per-layer: write layers.json, layers.csv, a bar chart per candidate and layers.html here.")(f)
    f = click.option("--top", type=int, default=10, show_default=True, help="With --per-layer: layers listed per candidate.")(f)
    return click.option("--per-layer", is_flag=True,
                        help="Per-layer times from each runtime's own profiler (ONNX Runtime, TVM, OpenVINO; "
                             "Vela/SCALE-Sim figures on simulated targets).")(f)


def check_per_layer(enabled: bool, top: int, folder: Path | None) -> None:
    """One-line errors for per-layer options that make no sense."""
    from edgetune.errors import ConfigError

    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    if folder is not None and not enabled:
        raise ConfigError("--per-layer-out needs --per-layer")
    if folder is not None and folder.exists() and not folder.is_dir():
        raise ConfigError(f"--per-layer-out '{folder}' exists and is not a folder")
