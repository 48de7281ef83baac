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
