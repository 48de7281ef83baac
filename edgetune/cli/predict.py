"""`edgetune predict MODEL --target T`: predicted latency with a per-kernel breakdown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click
from rich.table import Table

from edgetune.cli import _options
from edgetune.cli._render import out, print_json
from edgetune.errors import ConfigError
from edgetune.predict import predictor_registry

if TYPE_CHECKING:
    from edgetune.predict import LatencyEstimate


@click.command("predict")
@click.argument("model")
@_options.target
@click.option("--runtime", "-r", default="onnxruntime", show_default=True)
@click.option("--predictor", "kind", type=click.Choice(list(predictor_registry)), default="kernel", show_default=True,
              help="kernel: the profiled per-kernel regressors; flops: the MACs-proportional baseline.")
@click.option("--profiles-dir", type=click.Path(path_type=Path), default=None)
@click.option("--top", type=int, default=15, show_default=True, help="Kernels listed in the breakdown (slowest first).")
@click.option("--calibrate", is_flag=True,
              help="First re-time the profile's reference networks here (about 10 s) and rescale for today's machine speed.")
@click.option("--compare-measured", is_flag=True,
              help="Also run MODEL on the runtime's own per-node profiler here and show measured beside predicted per kernel.")
@_options.json_output
def command(model: str, target: str, runtime: str, kind: str, profiles_dir: Optional[Path], top: int,
            calibrate: bool, compare_measured: bool, as_json: bool) -> None:
    """Predict MODEL's latency (an .onnx file, or a network description .json) from TARGET's profile."""
    from edgetune.predict import predictor_for
    from edgetune.predict._cli_model import model_argument

    network = model_argument(model)
    if calibrate and not as_json:
        out.print("re-timing the profile's reference networks here (about 10 s) ...")
    if compare_measured:
        _compare(network, target, runtime, kind, profiles_dir, top, as_json, calibrate)
        return
    predictor = predictor_for(target, runtime, profiles_dir, kind=kind, fallback=False, calibrate=calibrate)
    estimate = predictor.predict(network)
    if as_json:
        print_json(estimate.to_dict())
        return
    _say_calibration(predictor)
    out.print(f"[bold]{estimate.network}[/] on {target}/{runtime}: predicted {estimate.total_ms:.4g} ms "
              f"(95% interval {estimate.low_ms:.4g}-{estimate.high_ms:.4g} ms; {estimate.predictor} predictor, not a measurement)")
    for line in estimate.extra.get("interval_covers") or ():
        out.print(f"  the interval covers {line}" if not line.startswith("not ") else f"  [bold]the interval is {line}[/]")
    correction = estimate.extra.get("machine_correction") or {}
    if correction.get("adapted"):
        held = correction.get("held_out") or {}
        out.print(f"corrected for this machine by its adapted profile (the profile was taken on "
                  f"{(correction.get('source_machine') or {}).get('cpu_model', 'another machine')}; held-out error on the "
                  f"reference networks: median {held.get('median_abs_error', float('nan')):.1%})")
    if estimate.kernels:
        table = Table(title=f"{len(estimate.kernels)} kernels (slowest {min(top, len(estimate.kernels))})")
        for column in ("kernel", "ops", "MACs", "predicted ms", "share"):
            table.add_column(column, justify="right" if column not in ("kernel", "ops") else "left")
        for k in sorted(estimate.kernels, key=lambda k: -k.latency_ms)[:top]:
            table.add_row(k.kind + (" (estimated)" if k.estimated else ""), ", ".join(k.ops), f"{k.macs:,}",
                          f"{k.latency_ms:.4f}", f"{k.latency_ms / estimate.total_ms:.0%}")
        out.print(table)
        out.print(f"per-call cost {estimate.extra.get('overhead_ms', 0):.4f} ms included in the total"
                  + (" (kernels: in-network costs on the end-to-end scale)" if estimate.extra.get("kernel_costs") == "in-network" else ""))
    _say_estimated(estimate)
    if estimate.uncovered:
        out.print(f"[yellow]not covered by the predictor (left out of the total):[/] {', '.join(estimate.uncovered)}")


def _say_calibration(predictor: object) -> None:
    """The calibration's line, when ``--calibrate`` re-timed the references."""
    calibration = getattr(predictor, "calibration", None)
    if calibration is not None:
        out.print(calibration.message())


def _say_estimated(estimate: "LatencyEstimate") -> None:
    """One line per way kernels were estimated (kinds the profile has no regressor for), with their share."""
    estimated = [k for k in estimate.kernels if k.estimated]
    if not estimated:
        return
    out.print(f"[yellow]{len(estimated)} kernel(s) estimated, not profiled: {estimate.estimated_ms:.4f} ms, "
              f"{estimate.estimated_ms / estimate.total_ms:.0%} of the total[/]")
    for how in sorted({k.estimated for k in estimated}):
        kinds = sorted({k.kind for k in estimated if k.estimated == how})
        out.print(f"  {', '.join(kinds)}: {how}")


def _compare(model: object, target: str, runtime: str, kind: str, profiles_dir: Optional[Path], top: int,
             as_json: bool, calibrate: bool) -> None:
    from edgetune.predict import predictor_for
    from edgetune.predict._compare import compare_measured
    from edgetune.runners import require_runnable
    from edgetune.targets import load_target

    resolved = load_target(target)
    require_runnable(resolved)
    if resolved.transport != "local":
        raise ConfigError(f"--compare-measured runs the model here; target '{target}' is {resolved.transport}")
    predictor = predictor_for(resolved, runtime, profiles_dir, kind=kind, fallback=False, calibrate=calibrate)
    found = compare_measured(model, resolved, runtime, predictor)  # type: ignore[arg-type]
    if as_json:
        print_json(found.to_dict())
        return
    _say_calibration(predictor)  # the predicted column is then at today's speed, as the measured one
    estimate = found.estimate
    table = Table(title=f"{estimate.network} on {target}/{runtime}, {found.threads} thread(s): predicted vs measured "
                        f"per kernel (slowest {min(top, len(found.kernels))} predicted)")
    for column in ("kernel", "ops", "predicted ms", "measured ms", "measured/predicted"):
        table.add_column(column, justify="right" if column not in ("kernel", "ops") else "left")
    for k in sorted(found.kernels, key=lambda k: -k.predicted_ms)[:top]:
        table.add_row(k.kind, ", ".join(k.ops), f"{k.predicted_ms:.4f}",
                      f"{k.measured_ms:.4f}" if k.measured_ms is not None else "-", f"{k.ratio:.2f}" if k.ratio else "-")
    out.print(table)
    out.print(f"predicted total {estimate.total_ms:.4f} ms (predicted); the profiler's nodes add up to "
              f"{found.measured_layers_ms:.4f} ms (measured, with the profiler's own cost)")
    if not found.attributed:
        out.print("[yellow]the runtime's nodes could not be matched to the kernels (it split or merged operators "
                  "differently): only the totals compare[/]")
