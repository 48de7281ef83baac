"""Search outputs: search.json (every trial, the front, the verified winner) and pareto.svg."""

from __future__ import annotations

import json
from typing import Any

from edgetune.search._space import SearchSpace


def _svg(result: Any, budget: Any) -> str:
    """Accuracy vs latency: every finished trial (predicted), the front, and the measured top-k."""
    points = [t for t in result.trials if t.accuracy is not None and t.predicted_ms and t.feasible and t.state == "complete"]
    if not points:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='520' height='60'><text x='10' y='30'>no finished trials</text></svg>"
    lat = [t.predicted_ms for t in points] + [t.measured_ms for t in result.front if t.measured_ms]
    lo, hi = min(lat) * 0.9, max(lat) * 1.1
    w, h, m = 520, 360, 50

    def x(v: float) -> float:
        return m + (v - lo) / max(hi - lo, 1e-9) * (w - 2 * m)

    def y(a: float) -> float:
        return h - m - a * (h - 2 * m)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='11'>",
             f"<line x1='{m}' y1='{h - m}' x2='{w - m}' y2='{h - m}' stroke='black'/><line x1='{m}' y1='{m}' x2='{m}' y2='{h - m}' stroke='black'/>",
             f"<text x='{w / 2 - 80}' y='{h - 12}'>latency (ms): predicted fp32 o, measured on target x</text>",
             f"<text x='6' y='{m - 10}'>validation top-1</text>",
             f"<text x='{m}' y='{h - m + 14}'>{lo:.3g}</text><text x='{w - m - 30}' y='{h - m + 14}'>{hi:.3g}</text>",
             f"<text x='{m - 30}' y='{y(1.0) + 4}'>1.0</text><text x='{m - 30}' y='{y(0.0) + 4}'>0.0</text>"]
    if budget:
        parts.append(f"<line x1='{x(budget):.1f}' y1='{m}' x2='{x(budget):.1f}' y2='{h - m}' stroke='red' stroke-dasharray='4'/>"
                     f"<text x='{x(budget) + 3:.1f}' y='{m + 10}' fill='red'>budget {budget:g} ms</text>")
    front = {t.number for t in result.front}
    for t in points:
        color = "#d62728" if t.number in front else "#1f77b4"
        parts.append(f"<circle cx='{x(t.predicted_ms):.1f}' cy='{y(t.accuracy):.1f}' r='4' fill='none' stroke='{color}'>"
                     f"<title>trial {t.number}: {t.accuracy:.3f}, predicted {t.predicted_ms:.3g} ms</title></circle>")
    for t in result.front:
        if t.measured_ms:
            cx, cy = x(t.measured_ms), y(t.accuracy or 0)
            parts.append(f"<path d='M{cx - 4:.1f},{cy - 4:.1f} L{cx + 4:.1f},{cy + 4:.1f} M{cx - 4:.1f},{cy + 4:.1f} L{cx + 4:.1f},{cy - 4:.1f}' "
                         f"stroke='black'><title>trial {t.number}: measured {t.measured_ms:.3g} ms</title></path>")
    parts.append("</svg>")
    return "".join(parts)


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
