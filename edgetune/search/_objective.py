"""One trial of the search: estimate the sampled network, reject it untrained when it cannot fit the
target, else train it and deploy it as sampled (see ``_study`` for the study around it)."""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetune._lazy import require
from edgetune.data import Dataset
from edgetune.errors import ConfigError, EdgetuneError
from edgetune.predict import Graph, LatencyEstimate
from edgetune.search._constraints import memory_kb, rejection_reasons, set_constraints, violations_of
from edgetune.search._deploy import deploy as deploy_trained
from edgetune.search._space import Candidate, SearchSpace, candidate_graph, candidate_module
from edgetune.search._train import train_candidate
from edgetune.targets import Target

if TYPE_CHECKING:
    from edgetune.search._study import SearchConfig


@dataclass(frozen=True)
class TrainingSplit:
    """The search's data: one split for every worker and seed (split seed 0), so accuracies in a shared
    study compare; and the sizes a sampled network takes and gives."""

    train: Dataset
    val: Dataset
    in_channels: int
    classes: int
    input_size: tuple[int, int]  # the network resizes it to its resolution

    @classmethod
    def load(cls, config: "SearchConfig") -> "TrainingSplit":
        """Load ``config.dataset`` and split it (ConfigError when it has no labels)."""
        from edgetune.data import load_dataset

        data = load_dataset(config.dataset)
        if data.y is None:
            raise ConfigError(f"dataset '{config.dataset}' has no labels; the search trains classifiers")
        train, val = data.split(config.val_fraction, 0)
        return cls(train, val, int(data.x.shape[1]), int(data.y.max()) + 1,
                   (int(data.x.shape[-2]), int(data.x.shape[-1])))


@dataclass
class TrialEstimate:
    """What a trial knows before training: the predicted latency and memory of the sampled network."""

    graph: Graph  # the fp32 network at its sampled channels
    latency: LatencyEstimate  # of the network with its channels scaled by the prune ratio
    act_kb: float
    weight_kb: float
    violations: list[float]
    seed: int

    @property
    def latency_ms(self) -> float:
        return self.latency.total_ms

    @property
    def feasible(self) -> bool:
        return not any(v > 0 for v in self.violations)


class TrialObjective:
    """What Optuna calls for each trial; returns the objective values (a tuple when multi-objective)."""

    def __init__(self, space: SearchSpace, config: "SearchConfig", target: Target, predictor: Any,
                 data: TrainingSplit, trials_dir: Path, threads: int) -> None:
        self.space, self.config, self.target, self.predictor = space, config, target, predictor
        self.data, self.trials_dir, self.threads = data, trials_dir, threads
        self.objectives = config.objective.split("-")
        self.multi = len(self.objectives) > 1

    def __call__(self, trial: Any) -> Any:
        cand = self.space.suggest(trial, discrete=self.config.strategy == "grid")
        estimate = self.estimate(trial, cand)
        if not estimate.feasible:
            return self.reject(trial, estimate)
        module, accuracy = self.train(trial, cand, estimate)
        if cand.deploy["precision"] != "fp32" or cand.deploy["prune_ratio"]:
            return self.deploy(trial, cand, estimate, module, accuracy)
        set_constraints(trial, estimate.violations, final=True)
        return self.values(accuracy, estimate.latency_ms, estimate.weight_kb)

    def values(self, accuracy: float, latency_ms: float, size_kb: float) -> Any:
        named = {"accuracy": accuracy, "latency": latency_ms, "size": size_kb}
        return tuple(named[o] for o in self.objectives) if self.multi else accuracy

    def estimate(self, trial: Any, cand: Candidate) -> TrialEstimate:
        """Predict the sampled network and check it against the target's constraints (nothing trained yet)."""
        precision, ratio = cand.deploy["precision"], cand.deploy["prune_ratio"]
        data = self.data
        graph = candidate_graph(cand, data.in_channels, data.classes, input_size=data.input_size)
        # before training: the fp32 network with its channels scaled by the prune ratio (an estimate;
        # the pruned network itself is predicted again after pruning)
        estimated = candidate_graph(cand, data.in_channels, data.classes, 1 - ratio, data.input_size) if ratio else graph
        latency = self.predictor.predict(estimated)
        act_kb, weight_kb = memory_kb(estimated, precision)
        violations = violations_of(latency.total_ms, self.config.latency_budget_ms, act_kb, weight_kb, self.target)
        seed = self.config.seed * 100003 + trial.number
        set_constraints(trial, violations)
        for key, value in (("predicted_ms", latency.total_ms), ("latency_ms", latency.total_ms),
                           ("latency_source", "predicted"), ("predictor", latency.predictor), ("size_kb", weight_kb),
                           ("candidate", cand.to_dict()), ("seed", seed), ("worker", f"{socket.gethostname()}:{os.getpid()}")):
            trial.set_user_attr(key, value)
        return TrialEstimate(graph, latency, act_kb, weight_kb, violations, seed)

    def reject(self, trial: Any, estimate: TrialEstimate) -> Any:
        """An infeasible candidate ends here, untrained, with the reason recorded."""
        why = rejection_reasons(estimate.violations, estimate.latency_ms, "predicted", self.config.latency_budget_ms,
                                estimate.act_kb, estimate.weight_kb, self.target)
        trial.set_user_attr("rejected", f"{why} (not trained)")
        set_constraints(trial, estimate.violations, final=True)
        return self.values(0.0, estimate.latency_ms, estimate.weight_kb)

    def train(self, trial: Any, cand: Candidate, estimate: TrialEstimate) -> tuple[Any, float]:
        """Train the candidate with its hyperparameters (single-objective studies may prune it); keep its weights."""
        module = candidate_module(cand, self.data.in_channels, self.data.classes)
        report = functools.partial(self._report, trial, estimate.violations)
        accuracy = train_candidate(module, cand, self.data.train, self.data.val, estimate.seed, report,
                                   self.config.max_epochs)
        torch = require("torch", "torch")
        torch.save(module.state_dict(), f"{self._stem(trial)}.pt")
        return module, accuracy

    def _report(self, trial: Any, violations: list[float], epoch: int, accuracy: float) -> None:
        if not self.multi:  # Optuna prunes single-objective studies only
            trial.report(accuracy, epoch)
            if trial.should_prune():
                set_constraints(trial, violations, final=True)
                raise require("optuna", "all").TrialPruned()

    def deploy(self, trial: Any, cand: Candidate, estimate: TrialEstimate, module: Any, accuracy: float) -> Any:
        """Prune and/or quantize the trained network as sampled and score what would ship; a failing build
        is this trial's result, not the search's."""
        precision, budget = cand.deploy["precision"], self.config.latency_budget_ms
        try:
            shipped = deploy_trained(module, estimate.graph, cand.deploy, self.target, self.config.runtime,
                                     self.data.train, self.data.val, estimate.seed, self._stem(trial),
                                     self.config.fine_tune_epochs, threads=self.threads)
        except EdgetuneError as exc:
            set_constraints(trial, [1.0, *estimate.violations[1:]], final=True)
            trial.set_user_attr("rejected", f"deployment failed: {exc}")
            return self.values(0.0, estimate.latency_ms, estimate.weight_kb)
        trial.set_user_attr("trained_accuracy", accuracy)
        predicted = self.predictor.predict(shipped.graph).total_ms  # the pruned fp32 network
        latency, source = (predicted, "predicted") if precision == "fp32" else (shipped.measured_ms, "measured")
        act_kb, weight_kb = memory_kb(shipped.graph, precision)
        violations = violations_of(latency, budget, act_kb, weight_kb, self.target)  # type: ignore[arg-type]
        set_constraints(trial, violations)
        for key, value in (("predicted_ms", predicted), ("latency_ms", latency), ("latency_source", source),
                           ("size_kb", weight_kb), ("deploy_plan", shipped.plan), ("deploy", shipped.details)):
            trial.set_user_attr(key, value)
        if any(v > 0 for v in violations):
            why = rejection_reasons(violations, latency, source, budget, act_kb, weight_kb, self.target)  # type: ignore[arg-type]
            trial.set_user_attr("rejected", f"{why} (after {shipped.plan})")
        set_constraints(trial, violations, final=True)
        return self.values(shipped.accuracy, latency, weight_kb)  # type: ignore[arg-type]

    def _stem(self, trial: Any) -> Path:
        return self.trials_dir / f"trial-{trial.number}"
