from __future__ import annotations

from edgetune.predict import FusionRules, GraphBuilder, detect_fusion, split_kernels
from edgetune.predict._fusion import CANDIDATE_PAIRS

from tests.predict._fake import FAKE_RULES, fake_latency_ms


def test_split_follows_rules() -> None:
    b = GraphBuilder("n", (1, 8, 16, 16))
    x = b.relu(b.bn(b.conv("input", 8, 3, 1)))
    y = b.relu(b.bn(b.dwconv(x, 3, 1)))
    z = b.add(b.bn(b.conv(y, 8, 1)), x)
    g = b.build(b.relu(z))
    rules = FusionRules(frozenset({("conv", "bn"), ("conv", "relu"), ("dwconv", "bn"), ("dwconv", "relu"), ("conv", "add")}))
    kinds = [k.kind for k in split_kernels(g, rules)]
    assert kinds == ["conv+bn+relu", "dwconv+bn+relu", "conv+bn+add+relu"]
    # nothing fuses: one kernel per op
    assert len(split_kernels(g, FusionRules())) == len(g.ops)


def test_shared_output_is_not_fused() -> None:
    b = GraphBuilder("n", (1, 8, 16, 16))
    x = b.conv("input", 8, 3, 1)
    y = b.relu(x)  # x also feeds the add: relu cannot ride on x's kernel
    g = b.build(b.add(y, x))
    kinds = [k.kind for k in split_kernels(g, FusionRules(frozenset({("conv", "relu")})))]
    assert kinds == ["conv", "relu", "add"]


def test_detection_recovers_the_fake_runtime_rules() -> None:
    measured = []

    def measure(graphs):  # type: ignore[no-untyped-def]
        measured.extend(graphs)
        return [fake_latency_ms(g) for g in graphs]

    rules = detect_fusion(measure, overhead_ms=0.01)
    tested = {(e["head"], e["follower"]) for e in rules.evidence}
    assert tested == set(CANDIDATE_PAIRS)
    assert rules.pairs == FAKE_RULES.pairs
    assert FusionRules.from_dict(rules.to_dict()).pairs == rules.pairs
