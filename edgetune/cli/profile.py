"""`edgetune profile --target T`: measure kernels on a target and train its latency predictor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click

from edgetune.cli import _options
from edgetune.cli._render import out, print_json, progress_reporter

if TYPE_CHECKING:
    from edgetune.targets import Target


@click.command("profile")
@_options.target
@click.option("--runtime", "-r", default="onnxruntime", show_default=True, help="Runtime to profile (one that runs fp32 ONNX models: onnxruntime, tvm, openvino).")
@click.option("--budget", "budget_min", type=float, default=20.0, show_default=True, help="Minutes of profiling in all (an interrupted profile resumes and counts what it spent).")
@click.option("--threads", type=int, default=1, show_default=True, help="Threads the kernels run with (one, like nn-Meter's CPU profiles, reproduces best on shared machines).")
@click.option("--profiles-dir", type=click.Path(path_type=Path), default=None,
              help="Where profiles live (default: $EDGETUNE_PROFILES, else ~/.local/share/edgetune/profiles, "
                   "seeded from the profiles shipped with edgetune).")
@click.option("--fresh", is_flag=True, help="Discard an existing profile for this target/runtime and start over.")
@click.option("--retrain", is_flag=True, help="Only refit the regressors from the measurements already stored (no measuring).")
@click.option("--seed", type=int, default=0, show_default=True)
@_options.targets_dir
@_options.rpc_tracker
@_options.json_output
def command(target: str, runtime: str, budget_min: float, threads: int, profiles_dir: Optional[Path], fresh: bool,
            retrain: bool, seed: int, targets_dir: Optional[Path], rpc_tracker: Optional[str], as_json: bool) -> None:
    """Detect fusion, measure sampled kernels, fit per-kernel regressors into profiles/TARGET/RUNTIME/."""
    from edgetune.predict import profile
    from edgetune.predict._profile import held_out_summary
    from edgetune.targets import load_target

    resolved = load_target(target, targets_dir)
    if retrain:
        from edgetune.predict import profile_folder
        from edgetune.predict._profile import retrain as refit

        meta = refit(profile_folder(resolved.name, runtime, profiles_dir))
        if as_json:
            print_json(meta)
        else:
            out.print(held_out_summary(meta))
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
    out.print(held_out_summary(meta))
    chains = meta.get("chains_check", {})
    if chains.get("chains"):
        out.print(f"check on {chains['chains']} random kernel chains measured while profiling (not fitted on): "
                  f"{chains['within_10pct']:.0%} within 10%, median error {chains['median_error']:+.1%}")
    out.print(f"wrote {result.folder}")


def _use_boards(target: "Target", runtime: str, rpc_tracker: Optional[str]) -> None:
    """Fail now, with one line, when the boards of rpc ``target`` cannot run ``runtime``."""
    from edgetune.errors import ConfigError
    from edgetune.runners._rpc import check_boards, remote_unsupported
    from edgetune.runners import require_runnable

    reason = remote_unsupported(runtime)
    if reason:
        raise ConfigError(reason)
    require_runnable(target, rpc_tracker)
    check_boards(target, rpc_tracker)
