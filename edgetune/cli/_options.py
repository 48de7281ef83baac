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
    return click.option("--target", "-t", default="host-cpu", show_default=True, help="Target name (see `edgetune targets list`).")(f)


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
