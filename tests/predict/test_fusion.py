from __future__ import annotations

from pathlib import Path

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


def test_a_follower_that_ran_its_own_node_is_never_fused_and_a_free_one_is_not_judged() -> None:
    """The clock says conv+hswish costs no more than the conv alone, but the runtime's profiler ran a node for the
    hswish: separate. An activation on an FC layer's outputs that costs nothing alone is not judged fused either."""
    def measure(graphs):  # type: ignore[no-untyped-def]
        out = []
        for g in graphs:
            kinds = [op.kind for op in g.ops]
            if kinds == ["conv", "hswish"]:
                out.append(fake_latency_ms(graphs[0]))  # as fast as the head alone
            elif kinds == ["relu"] and tuple(g.input_shape)[1:] == (1024, 1, 1):  # beside an FC layer
                out.append(0.01)  # the per-call overhead alone: costs nothing
            elif kinds == ["fc", "relu"]:
                out.append(fake_latency_ms(graphs[0]) - 1e-4)  # a hair under the FC alone
            else:
                out.append(fake_latency_ms(g))
        return out

    def node_counts(graphs):  # type: ignore[no-untyped-def]
        return [len(split_kernels(g, FAKE_RULES)) for g in graphs]  # the fake runtime runs a node per kernel

    rules = detect_fusion(measure, overhead_ms=0.01, node_counts=node_counts)
    assert rules.pairs == FAKE_RULES.pairs
    hswish = [e for e in rules.evidence if (e["head"], e["follower"]) == ("conv", "hswish")]
    assert all(e["nodes"] == {"head": 1, "pair": 2} and not e["fused"] for e in hswish)
    assert not detect_fusion(measure, overhead_ms=0.01).fuses("fc", "relu")  # without node counts too
    assert detect_fusion(measure, overhead_ms=0.01).fuses("conv", "hswish")  # what the clock alone would say


def test_a_pair_run_as_one_node_that_timed_slow_is_timed_again() -> None:
    """A neighbour slows the conv+relu pair in the first pass of each shape; the runtime ran it as one node, so
    the shape gets two more passes, where it runs at its speed: fused."""
    seen: dict[tuple, int] = {}

    def measure(graphs):  # type: ignore[no-untyped-def]
        out = []
        for g in graphs:
            key = (g.name, tuple(g.input_shape))
            seen[key] = seen.get(key, 0) + 1
            slow = g.name == "pair-conv-relu" and seen[key] == 1
            out.append(fake_latency_ms(g) * (1.5 if slow else 1.0))
        return out

    def node_counts(graphs):  # type: ignore[no-untyped-def]
        return [len(split_kernels(g, FAKE_RULES)) for g in graphs]

    rules = detect_fusion(measure, pairs=[("conv", "relu")], overhead_ms=0.01, node_counts=node_counts)
    assert rules.fuses("conv", "relu") and all(e.get("retimed") == 2 for e in rules.evidence)
    seen.clear()
    assert not detect_fusion(measure, pairs=[("conv", "relu")], overhead_ms=0.01).fuses("conv", "relu")


def test_x_times_sigmoid_x_is_one_swish_kernel(tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    from edgetune.predict import graph_from_onnx, to_onnx
    from edgetune.predict._graph import fold_swish

    b = GraphBuilder("swishes", (1, 8, 6, 6))
    x = b.bn(b.conv("input", 8, 3, 1))
    x = b.mul(x, b.sigmoid(x))  # EfficientNet's swish, written as two ops (as an ONNX file has it)
    gate = b.sigmoid(x)
    kept = b.mul(gate, b.relu(gate))  # a Sigmoid times something else: not a swish
    y = b.add(b.swish(x), kept)
    graph = b.build(y)
    folded = fold_swish(graph)
    assert [op.kind for op in folded.ops].count("swish") == 2 and len(folded.ops) == len(graph.ops) - 1
    swish = next(op for op in folded.ops if op.kind == "swish")
    assert swish.inputs == (graph.ops[1].name,) and swish.name == graph.ops[3].name  # named after the product
    kinds = [k.kind for k in split_kernels(graph, FusionRules(frozenset({("conv", "bn")})))]
    assert kinds.count("swish") == 2 and "sigmoid" in kinds  # the gate that feeds two ops stays a sigmoid
    # exported as Sigmoid + Mul, it computes x * sigmoid(x) and reads back as the same kernels
    path = to_onnx(graph, tmp_path / "swish.onnx")
    back, estimated = graph_from_onnx(path)
    assert not estimated and [k.kind for k in split_kernels(back, FusionRules(frozenset({("conv", "bn")})))] == kinds
    single = GraphBuilder("one", (1, 8, 4, 4))
    path = to_onnx(single.build(single.swish("input")), tmp_path / "one.onnx")
    value = np.linspace(-4, 4, 128, dtype=np.float32).reshape(1, 8, 4, 4)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": value})[0]
    assert np.allclose(out, value / (1 + np.exp(-value)), atol=1e-5)
