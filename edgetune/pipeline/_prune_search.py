"""`--prune-to-latency-ms`: find the smallest prune ratio whose model, measured on the target, meets a goal.

Each step is a real structured prune (the ``prune`` lowering, without fine-tuning: training does
not change the architecture, so not the latency), lowered for one fp32 runtime of the target and
timed with the benchmark harness on a short budget. The ratio found then becomes one more pruning
level of the candidates, fine-tuned with distillation when --train is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from edgetune._lazy import require
from edgetune.bench import BenchConfig, isolated, measure, random_inputs
from edgetune.errors import ConfigError, EdgetuneError, InfeasibleError
from edgetune.lowering import LoweringContext, derive, get_lowering
from edgetune.lowering._torch_form import with_torch_form
from edgetune.models import LoadedModel
from edgetune.pipeline._candidates import CandidatePlan, plans_for
from edgetune.pipeline._evaluate import CandidateSkipped, build_artifact
from edgetune.pipeline._options import CompileOptions
from edgetune.pipeline._qat import is_qat
from edgetune.runners import runner_for
from edgetune.targets import Target

MAX_RATIO = 0.9  # beyond this most layers keep one or two channels
STEPS = 6  # measurements: the unpruned model, MAX_RATIO, then four bisections (ratio within ~0.06)
STEP_BUDGET_S = 1.0  # timing budget per step: enough to tell a goal apart, not a full benchmark

MeasureRatio = Callable[[float], tuple[float, int]]  # prune ratio -> (median latency_ms, parameters)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class PruneStep:
    """One ratio tried: its measured median latency and parameter count."""

    ratio: float
    latency_ms: float
    params: int
    met_goal: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ratio": self.ratio, "latency_ms": self.latency_ms, "params": self.params, "met_goal": self.met_goal}


@dataclass
class PruneSearch:
    """The steps of a search and the ratio chosen (None when even the largest ratio missed the goal)."""

    goal_ms: float
    measured_with: str
    steps: list[PruneStep] = field(default_factory=list)
    chosen_ratio: Optional[float] = None

    @property
    def note(self) -> str:
        if self.chosen_ratio is None:
            return f"even ratio {max(s.ratio for s in self.steps):g} missed the goal"
        if self.chosen_ratio == 0:
            return "the unpruned model already meets the goal: no pruned candidates were added"
        return f"smallest ratio tried that met the goal: {self.chosen_ratio:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"goal_ms": self.goal_ms, "measured_with": self.measured_with, "max_ratio": MAX_RATIO,
                "steps": [s.to_dict() for s in self.steps], "chosen_ratio": self.chosen_ratio,
                "goal_met": self.chosen_ratio is not None, "note": self.note}


def search_ratio(goal_ms: float, measure_ratio: MeasureRatio, measured_with: str = "",
                 max_ratio: float = MAX_RATIO, steps: int = STEPS, progress: Optional[Progress] = None) -> PruneSearch:
    """Bisection over [0, max_ratio] for the smallest ratio measured to meet ``goal_ms``.

    Latency is assumed to fall as the ratio grows; the smallest ratio that met the goal is kept
    (the least pruning, so the least accuracy at risk), even if noise breaks monotonicity.
    """
    say = progress or (lambda _msg: None)
    search = PruneSearch(goal_ms, measured_with)

    def step(ratio: float) -> bool:
        latency_ms, params = measure_ratio(ratio)
        met = latency_ms <= goal_ms
        search.steps.append(PruneStep(ratio, latency_ms, params, met))
        say(f"prune search: ratio {ratio:g} -> {latency_ms:.4g} ms on {measured_with or 'the target'} "
            f"({params} params), goal {goal_ms:g} ms {'met' if met else 'missed'}")
        return met

    if step(0.0):
        search.chosen_ratio = 0.0
        return search
    if not step(max_ratio):
        return search
    missed, met = 0.0, max_ratio
    for _ in range(steps - 2):
        middle = round((missed + met) / 2, 3)
        if middle in (missed, met):
            break
        if step(middle):
            met = middle
        else:
            missed = middle
    search.chosen_ratio = met
    return search


def check_prunable(model: LoadedModel) -> None:
    """ConfigError unless ``model`` is an nn.Module (what torch-pruning can restructure)."""
    module = model.torch_module
    if module is not None:
        torch = require("torch", "torch")
        layers = any(isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)) for m in module.modules())
        # an ExportedProgram's module has flat parameters; onnx2torch's GraphModule has real layers
        if isinstance(module, torch.nn.Module) and (layers or not isinstance(module, torch.fx.GraphModule)):
            return
    what = "an exported graph" if module is not None else f"a {model.source_format} model"
    raise ConfigError(f"--prune-to-latency-ms: pruning needs a PyTorch model (an nn.Module or package.module:factory); "
                      f"'{model.source}' is {what}")


def _measuring_plans(target: Target, runtimes: Optional[Sequence[str]], options: CompileOptions) -> list[CandidatePlan]:
    """The target's plans without pruning, tuning or QAT, fp32 first: the first that builds measures each step."""
    plain = replace(options, prune_ratios=(), prune_to_latency_ms=None, tune_trials=0, qat="never")
    plans = [p for p in plans_for(target, runtimes, plain) if not is_qat(p)]
    return sorted(plans, key=lambda p: p.precision != "fp32")


class _RatioMeter:
    """Prunes the model to a ratio, lowers it for one plan and times it on the target."""

    def __init__(self, model: LoadedModel, target: Target, plan: CandidatePlan, workdir: Path, threads: int,
                 context: LoweringContext, config: BenchConfig, seed: int) -> None:
        self.model, self.target, self.plan, self.workdir = model, target, plan, workdir
        self.threads, self.context, self.config, self.seed = threads, context, config, seed
        self.runner = isolated(runner_for(plan.runtime, target, context.transport.rpc_tracker, context.progress))
        self.feeds = random_inputs(model.inputs, seed=0)[0]

    def __call__(self, ratio: float) -> tuple[float, int]:
        folder = self.workdir / f"ratio-{ratio:.3f}"
        model = self.model
        if ratio > 0:
            prune_dir = folder / "0-prune"
            prune_dir.mkdir(parents=True, exist_ok=True)
            options = {"prune_ratio": ratio, "train_epochs": 0, "seed": self.seed}
            pruned = get_lowering("prune").apply(model, self.target, prune_dir, self.context.with_options(options))
            model = derive(model, pruned, prune_dir)
        artifact = build_artifact(self.plan, model, self.target, folder, self.context, {})
        with self.runner.load(artifact.path, self.threads) as session:
            timing = measure(session, self.feeds, self.config)
        params = sum(int(p.numel()) for p in model.torch_module.parameters())
        return timing.stats.median_ms, params


def prune_to_latency(model: LoadedModel, target: Target, options: CompileOptions, runtimes: Optional[Sequence[str]],
                     workdir: Path, threads: int, context: LoweringContext, config: BenchConfig) -> PruneSearch:
    """Search the prune ratio for ``options.prune_to_latency_ms`` on ``target``.

    Raises ConfigError for a model torch-pruning cannot take, and InfeasibleError (with the
    numbers) when even MAX_RATIO misses the goal: a compile would otherwise hand back a model
    that does not meet the latency the user asked for.
    """
    goal_ms = options.prune_to_latency_ms
    assert goal_ms is not None
    if model.source_format == "onnx":
        model = with_torch_form(model)  # onnx2torch: pruning works on the converted nn.Module
    check_prunable(model)
    step_config = replace(config, budget_s=min(config.budget_s, STEP_BUDGET_S))
    meter, problems = None, []
    for plan in _measuring_plans(target, runtimes, options):
        try:  # the first plan that builds and runs the unpruned model measures every step
            meter = _RatioMeter(model, target, plan, workdir, threads, context, step_config, options.seed)
            first = meter(0.0)
            break
        except (CandidateSkipped, EdgetuneError) as exc:
            problems.append(f"{plan.name}: {exc}")
            meter = None
    if meter is None:
        raise ConfigError(f"--prune-to-latency-ms: no runtime of target '{target.name}' could measure the model "
                          f"({'; '.join(problems) or 'no candidates'})")
    found: _RatioMeter = meter

    def measure_ratio(ratio: float) -> tuple[float, int]:
        return first if ratio == 0 else found(ratio)  # the unpruned model was measured just above

    search = search_ratio(goal_ms, measure_ratio, found.plan.name, progress=context.progress)
    if search.chosen_ratio is None:
        tried = ", ".join(f"{s.ratio:g} -> {s.latency_ms:.4g} ms" for s in search.steps)
        # torch-pruning leaves a layer whole rather than prune it to no channels: narrow models may not shrink
        narrow = (" (torch-pruning removed no parameters there: the layers are too narrow)"
                  if search.steps[-1].params >= search.steps[0].params else "")
        raise InfeasibleError(
            f"latency goal {goal_ms:g} ms is out of reach by pruning: at the largest ratio, {MAX_RATIO:g}, "
            f"{found.plan.name} still measured {search.steps[-1].latency_ms:.4g} ms on {target.name}{narrow} "
            f"(tried {tried}); raise --prune-to-latency-ms or use --prune RATIO"
        )
    return search


def with_searched_ratio(options: CompileOptions, search: PruneSearch) -> CompileOptions:
    """``options`` with the chosen ratio added to the pruning levels (none when no pruning was needed)."""
    ratio = search.chosen_ratio
    if not ratio or ratio in options.prune_ratios:
        return options
    return replace(options, prune_ratios=(*options.prune_ratios, ratio))
