"""`edgetune profile --target T`: measure kernels on a target and train its latency predictor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click

from edgetune.cli import _options
from edgetune.cli._render import out, print_json, progress_reporter
from edgetune.errors import ConfigError

if TYPE_CHECKING:
    from edgetune.targets import Target


@click.command("profile")
@_options.target
@click.option("--runtime", "-r", default="onnxruntime", show_default=True, help="Runtime to profile (one that runs fp32 ONNX models: onnxruntime, tvm, openvino).")
@click.option("--budget", "budget_min", type=float, default=None, help="Minutes of profiling in all (an interrupted profile resumes and counts what it spent) [default: 20; with --adapt: 3].")
@click.option("--threads", type=int, default=1, show_default=True, help="Threads the kernels run with (one, like nn-Meter's CPU profiles, reproduces best on shared machines).")
@click.option("--profiles-dir", type=click.Path(path_type=Path), default=None,
              help="Where profiles live (default: $EDGETUNE_PROFILES, else ~/.local/share/edgetune/profiles, "
                   "seeded from the profiles shipped with edgetune).")
@click.option("--fresh", is_flag=True, help="Discard an existing profile for this target/runtime and start over.")
@click.option("--retrain", is_flag=True, help="Only refit the regressors from the measurements already stored (no measuring).")
@click.option("--adapt", is_flag=True, help="Keep the profile taken on another machine and correct it for this one from a few reference "
              "networks timed here (<= 20, about 3 minutes); predict and search then use it automatically.")
@click.option("--seed", type=int, default=0, show_default=True)
@_options.targets_dir
@_options.rpc_tracker
@_options.json_output
def command(target: str, runtime: str, budget_min: Optional[float], threads: int, profiles_dir: Optional[Path], fresh: bool,
            retrain: bool, adapt: bool, seed: int, targets_dir: Optional[Path], rpc_tracker: Optional[str], as_json: bool) -> None:
    """Detect fusion, measure sampled kernels, fit per-kernel regressors into profiles/TARGET/RUNTIME/."""
    from edgetune.predict import profile
    from edgetune.predict._profile import fit_summary
    from edgetune.targets import load_target

    if adapt and (fresh or retrain):
        raise ConfigError("--adapt keeps the existing profile and corrects it for this machine; it cannot be combined "
                          f"with --{'fresh' if fresh else 'retrain'}")
    resolved = load_target(target, targets_dir)
    if adapt:
        _adapt(resolved, runtime, 3.0 if budget_min is None else budget_min, profiles_dir, as_json)
        return
    budget_min = 20.0 if budget_min is None else budget_min
    if retrain:
        from edgetune.predict import profile_folder
        from edgetune.predict._profile import retrain as refit

        meta = refit(profile_folder(resolved.name, runtime, profiles_dir))
        if as_json:
            print_json(meta)
        else:
            out.print("\n".join(fit_summary(meta)))
        return
    if resolved.transport == "rpc":
        _use_boards(resolved, runtime, rpc_tracker)
    with progress_reporter(as_json) as progress:
        result = profile(resolved, runtime, budget_min, profiles_dir, threads, seed, fresh, progress,
                         rpc_tracker=rpc_tracker)
    if result.interrupted:
        out.print(f"Interrupted after {result.kernels} kernels ({result.elapsed_s / 60:.1f} min); "
                  f"run the same command again to continue from {result.folder}")
        raise SystemExit(130)
    if as_json:
        print_json({"folder": str(result.folder), "kernels": result.kernels, "new_kernels": result.new_kernels,
                    "elapsed_s": round(result.elapsed_s, 1), **result.metadata})
        return
    meta = result.metadata
    out.print(f"profiled {resolved.name}/{runtime} on {meta['threads']} thread(s): {result.kernels} kernels "
              f"({result.new_kernels} new) in {result.elapsed_s / 60:.1f} min")
    out.print(f"fused kernels: {', '.join(meta['fusion']) or 'none'}")
    out.print("\n".join(fit_summary(meta)))
    out.print(f"wrote {result.folder}")


def _adapt(target: "Target", runtime: str, budget_min: float, profiles_dir: Optional[Path], as_json: bool) -> None:
    from edgetune.predict._adapt import adapt_profile
    from edgetune.predict._machine import describe
    from edgetune.runners import require_runnable

    if target.transport != "local":
        raise ConfigError(f"--adapt times reference networks on this machine; target '{target.name}' is {target.transport}")
    require_runnable(target)
    with progress_reporter(as_json) as progress:
        result = adapt_profile(target, runtime, budget_min, profiles_dir, progress=progress)
    summary = result.fitted.summary()
    if as_json:
        print_json({"adapted_profile": str(result.path), "references": result.references, "measure_s": round(result.measure_s, 1),
                    "source_machine": result.source_machine, "machine": result.machine, **summary})
        return
    held, before = summary["held_out"], summary["source_profile_uncorrected"]
    out.print(f"adapted the {target.name}/{runtime} profile taken on {describe(result.source_machine)} to this machine "
              f"({describe(result.machine)}): {result.references} reference networks timed in {result.measure_s:.0f} s")
    if summary["method"] == "kernel residual":
        out.print(f"a per-kernel correction fitted on {summary['kernels']} kernels timed inside them; their cost here over "
                  "the profile's, per group: " + ", ".join(f"{g} {m:.2f}" for g, m in summary["kernel_ratios"].items())
                  + f"; end to end x{summary['scale']:.2f}")
    else:
        out.print("multipliers per kernel group (this machine / the profile's): "
                  + ", ".join(f"{g} {m:.2f}" for g, m in summary["multipliers"].items()))
    out.print(f"held out (leave-one-out over the references): {held['within_10pct']:.0%} within 10%, median error "
              f"{held['median_abs_error']:.1%}; the profile uncorrected: {before['within_10pct']:.0%} within 10%, "
              f"median error {before['median_abs_error']:.1%}")
    out.print(f"wrote {result.path}; `edgetune predict` and `edgetune search` use it on this machine")


def _use_boards(target: "Target", runtime: str, rpc_tracker: Optional[str]) -> None:
    """Fail now, with one line, when the boards of rpc ``target`` cannot run ``runtime``."""
    from edgetune.runners import require_runnable
    from edgetune.runners._rpc import check_boards, remote_unsupported

    reason = remote_unsupported(runtime)
    if reason:
        raise ConfigError(reason)
    require_runnable(target, rpc_tracker)
    check_boards(target, rpc_tracker)
