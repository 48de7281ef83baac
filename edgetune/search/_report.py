"""Search outputs: search.json (every trial, the front, the verified winner) and pareto.svg."""

from __future__ import annotations

import json
from typing import Any

from edgetune.search._space import SearchSpace


def _svg(result: Any, budget: Any) -> str:
    """Accuracy vs latency: every finished trial (predicted), the front, and the measured top-k."""
    from edgetune.report._plots import search_front_svg

    points = [t for t in result.trials if t.accuracy is not None and t.predicted_ms and t.feasible and t.state == "complete"]
    if not points:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='520' height='60'><text x='10' y='30'>no finished trials</text></svg>"
    front = {t.number for t in result.front}
    return search_front_svg([(t.number, t.predicted_ms, t.accuracy, t.number in front) for t in points],
                            [(t.number, t.measured_ms, t.accuracy or 0) for t in result.front if t.measured_ms], budget)


def write_outputs(result: Any, config: Any, space: SearchSpace) -> None:
    import optuna

    from edgetune import __version__
    from edgetune.bench._store import redact

    data = {
        "study": result.study_name, "storage": redact(result.storage), "space": space.name, "choices": space.choices,
        "hp_choices": space.hp, "config": {k: getattr(config, k) for k in config.__dataclass_fields__ if k != "storage"},
        "predictor": result.predictor, "validation_split": {"fraction": config.val_fraction, "seed": 0}, "versions": {"edgetune": __version__, "optuna": optuna.__version__},
        "latency_note": "predicted_ms: the latency predictor on the fp32 (pruned) network; latency_ms: the latency "
                        "objective of the study, from latency_source (predicted for fp32 builds, measured -- median "
                        "of a short timing -- for int8/fp16 builds of the lowering pipeline); verified_measured_ms: "
                        "the top-k measured on the target after the search (fastest of >= 30 runs, the predictor's "
                        "own statistic)",
        "seeds": {"search": config.seed, "trial": "seed * 100003 + trial number (user_attrs.seed)",
                  "validation_split": 0},
        "front": [t.to_dict() for t in result.front],
        "winner": result.winner.to_dict() if result.winner else None,
        "compiled": str(result.compiled.artifact) if result.compiled is not None and result.compiled.artifact else None,
        "notes": result.notes,
        "trials": [t.to_dict() for t in result.trials],
    }
    (result.output_dir / "search.json").write_text(json.dumps(data, indent=2, default=str))
    (result.output_dir / "pareto.svg").write_text(_svg(result, config.latency_budget_ms))
