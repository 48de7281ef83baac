"""Hardware-constrained NAS + HPO: search spaces, constraints from the target, Optuna studies, the verified winner."""

from edgetune.search._deploy import Deployment, deploy_precisions
from edgetune.search._space import DEFAULT_CHOICES, DEPLOY_CHOICES, HP_CHOICES, Candidate, SearchSpace, candidate_graph, candidate_module
from edgetune.search._study import (
    OBJECTIVES,
    PRUNERS,
    STRATEGIES,
    SearchConfig,
    SearchError,
    SearchResult,
    TrialSummary,
    open_study,
    search,
    study_status,
)


def sample_graphs(count: int, seed: int = 0, space: str = "mobilenet", in_channels: int = 3, classes: int = 10):  # type: ignore[no-untyped-def]
    """``count`` random networks of a space as Graphs (for the predictor benchmark)."""
    import optuna

    from edgetune._quiet import quiet_logger

    sampler_space = SearchSpace(space, {"resolution": [32, 48, 64, 96], "stage_channels": [[16, 24, 32, 64]]})
    with quiet_logger("optuna"):  # "A new study created in memory" says nothing to a reader of the benchmark
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    graphs = []
    for i in range(count):
        trial = study.ask()
        graph = candidate_graph(sampler_space.suggest(trial), in_channels, classes)
        graphs.append(type(graph)(f"space{i}", graph.input_shape, graph.ops))
        study.tell(trial, 0.0)
    return graphs


__all__ = [
    "Candidate", "DEFAULT_CHOICES", "DEPLOY_CHOICES", "Deployment", "HP_CHOICES", "OBJECTIVES", "PRUNERS", "STRATEGIES", "SearchConfig", "SearchError",
    "SearchResult", "SearchSpace", "TrialSummary", "candidate_graph", "candidate_module", "open_study",
    "deploy_precisions", "sample_graphs", "search", "study_status",
]
