"""Where MetaSchedule measures tuning candidates: this machine, or a board behind the RPC tracker.

A board reached through `edgetune farm` (or TVM's own RPC server) runs every candidate the
tuner builds: MetaSchedule's RPC runner asks the tracker for a board of the target's key per
batch, uploads the candidate, times it there (TVM's ``time_evaluator``) and gives the board back.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any, Optional

from edgetune.errors import ConfigError, MissingDependencyError
from edgetune.targets import Target
from edgetune.targets._from_text import host_arch

RPC_SESSION_TIMEOUT_S = 120  # one batch of candidates on one board


@dataclass(frozen=True)
class MeasureOn:
    """A board key behind a tracker that MetaSchedule measures candidates on."""

    tracker_host: str
    tracker_port: int
    key: str
    cross_compiler: Optional[str] = None  # e.g. aarch64-linux-gnu-g++ when the board is another architecture
    session_timeout_s: int = RPC_SESSION_TIMEOUT_S

    def runner(self) -> Any:
        """MetaSchedule's RPC runner for this key (one board connection at a time)."""
        from tvm.s_tir import meta_schedule as ms

        config = ms.runner.RPCConfig(tracker_host=self.tracker_host, tracker_port=self.tracker_port,
                                     tracker_key=self.key, session_timeout_sec=self.session_timeout_s)
        return ms.runner.RPCRunner(rpc_config=config, evaluator_config=ms.runner.EvaluatorConfig(), max_workers=1)

    def describe(self) -> str:
        return f"boards of key '{self.key}' behind the RPC tracker {self.tracker_host}:{self.tracker_port}"


def _is_host_arch(target: Target) -> bool:
    triple = target.cpu.llvm_mtriple
    return triple == "auto" or triple.split("-")[0] == host_arch()


def cross_compiler_name(target: Target) -> Optional[str]:
    """The linker a board of another architecture needs (``<triple>-g++``), checked to be installed; None for this one."""
    if _is_host_arch(target):
        return None
    compiler = f"{target.cpu.llvm_mtriple}-g++"
    if shutil.which(compiler) is None:
        raise MissingDependencyError(
            f"tuning for {target.cpu.llvm_mtriple} (target '{target.name}') links every candidate with {compiler}: "
            f"on Debian/Ubuntu apt-get install g++-{target.cpu.llvm_mtriple}")
    return compiler


def measure_on(target: Target, rpc_tracker: Optional[str] = None) -> Optional[MeasureOn]:
    """Where tuning candidates of ``target`` run: None for this machine's CPU, a board key for an rpc target.

    An unreachable tracker or a key without boards fails here, before anything is built.
    """
    if target.kind != "cpu":
        raise ConfigError(f"lowering 'tvm-tuned' tunes CPU targets; target '{target.name}' is a {target.kind} "
                          "(use lowering 'tvm' for it)")
    if target.transport == "local":
        if not _is_host_arch(target):
            raise ConfigError(f"target '{target.name}' is a {target.cpu.llvm_mtriple} CPU, not this machine's: "
                              "tune it on a board behind the RPC tracker (an rpc target, or --rpc-key)")
        return None
    if target.transport != "rpc":
        raise ConfigError(f"lowering 'tvm-tuned' measures candidates on the device; target '{target.name}' is "
                          f"{target.transport} (simulated), so there is nothing to tune on")
    from edgetune.farm import HOW_TO_CONFIGURE, farm_status, require_key, resolve_tracker

    tracker = resolve_tracker(rpc_tracker)
    if tracker is None:
        raise ConfigError(f"tuning target '{target.name}' measures on its boards; {HOW_TO_CONFIGURE}")
    key = target.rpc_key or target.name
    require_key(farm_status(tracker), key)
    return MeasureOn(tracker.host, tracker.port, key, cross_compiler_name(target))
