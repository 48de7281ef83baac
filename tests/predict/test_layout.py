"""Which ops run outside ONNX Runtime's blocked layout: the rule, and the rule against the runtime itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.predict import FusionRules, GraphBuilder, split_kernels, to_onnx
from edgetune.predict._context import CONTEXT_FEATURES, context_features
from edgetune.predict._graph import Graph
from edgetune.predict._hardware import ProfileHardware
from edgetune.predict._layout import LayoutRules, layout_block
from edgetune.predict._machine import current_machine

RULES = FusionRules(frozenset({("conv", "bn"), ("conv", "relu")}))


def _probe(name: str, middle: str, channels: int = 32) -> tuple[Graph, str]:
    """conv -> ``middle`` -> conv, with the middle op's name: does ``middle`` leave the blocked layout?"""
    b = GraphBuilder(name, (1, 16, 16, 16))
    x = b.relu(b.conv("input", channels, 3))
    if middle == "concat":
        y = b.concat([x, b.relu(b.conv(x, channels, 1))])
    elif middle == "concat-after-slice":
        y = b.concat([b.slice(x, channels // 2), b.relu(b.conv(x, channels // 2, 1))])
    elif middle == "grouped":
        y = b.conv(x, channels, 3, 1, groups=2)
    elif middle == "maxpool":
        y = b.pool(x, "maxpool", 2, 2)
    elif middle == "upsample":
        y = b.resize(x, 32)
    elif middle == "downsample":
        y = b.resize(x, 8)
    elif middle == "pad":
        y = b.pad(x, 1)
    elif middle == "mul":
        y = b.mul(x, b.relu(b.conv(x, channels, 1)))
    elif middle == "squeeze-excite":
        y = b.squeeze_excite(x, 4)
    else:
        raise AssertionError(middle)
    out = b.relu(b.conv(y, 32, 3))
    graph = b.build(out)
    return graph, y


def _unblocked(graph: Graph, name: str, block: int) -> bool:
    op = next(o for o in graph.ops if o.name == name)
    return LayoutRules(graph, block, graph.consumers()).unblocked(op)


def test_layout_block_follows_the_cpu_features_for_onnx_runtime_only() -> None:
    assert layout_block("onnxruntime", ["avx2", "avx512f", "fma"]) == 16
    assert layout_block("onnxruntime", ["avx2", "fma"]) == 8
    assert layout_block("onnxruntime", ["neon"]) == 0
    assert layout_block("openvino", ["avx2", "avx512f"]) == 0


@pytest.mark.parametrize("middle, channels, unblocked", [
    ("concat", 32, False), ("concat", 24, True), ("concat-after-slice", 32, True),
    ("grouped", 32, False), ("grouped", 16, True), ("maxpool", 32, False), ("maxpool", 20, True),
    ("upsample", 20, False), ("downsample", 32, True), ("pad", 32, False), ("mul", 20, False),
    ("squeeze-excite", 32, True),
])
def test_the_rule_at_a_block_of_16(middle: str, channels: int, unblocked: bool) -> None:
    graph, name = _probe(middle, middle, channels)
    assert _unblocked(graph, name, 16) is unblocked


def test_a_pad_is_unblocked_unless_only_convolutions_read_it() -> None:
    b = GraphBuilder("pad-pool", (1, 16, 16, 16))
    x = b.pad(b.relu(b.conv("input", 32, 3)), 1)
    graph = b.build(b.pool(x, "maxpool", 3, 1))
    assert _unblocked(graph, x, 16)


def test_without_a_block_the_first_rule_holds() -> None:
    """Profiles fitted before the block was recorded keep the features they were fitted with."""
    for middle, unblocked in (("concat", True), ("pad", True), ("mul", True), ("maxpool", False), ("upsample", True)):
        graph, name = _probe(middle, middle)
        assert _unblocked(graph, name, 0) is unblocked


def test_context_features_read_the_profiles_block() -> None:
    graph, _name = _probe("fire", "concat")
    kernels = split_kernels(graph, RULES)
    at = len(ProfileHardware().feature_names) + CONTEXT_FEATURES.index("consumer_layout")
    first = kernels[0]  # the stem conv, which feeds the concat
    assert first.head.kind == "conv"
    assert context_features(graph, kernels)[0][at] == 1.0
    assert context_features(graph, kernels, ProfileHardware(layout_block=16))[0][at] == 0.0


def test_every_kernel_sees_the_networks_footprint() -> None:
    small, _ = _probe("small", "concat", 32)
    large, _ = _probe("large", "concat", 256)
    at = len(ProfileHardware().feature_names) + CONTEXT_FEATURES.index("network_weight_log2_bytes")
    rows = {g.name: context_features(g, split_kernels(g, RULES)) for g in (small, large)}
    for name, table in rows.items():
        assert len({row[at] for row in table}) == 1, name  # one value per network
        assert len({row[at + 1] for row in table}) == 1, name
    assert rows["large"][0][at] > rows["small"][0][at] + 2  # 8x the channels: far more weights
    assert rows["large"][0][at + 1] > rows["small"][0][at + 1] + 2


def test_profile_hardware_keeps_its_block_in_the_metadata() -> None:
    hardware = ProfileHardware(layout_block=16)
    metadata = {"hardware": hardware.to_metadata()}
    assert ProfileHardware.from_metadata(metadata).layout_block == 16
    assert ProfileHardware.from_metadata({}).layout_block == 0
    assert ProfileHardware().to_metadata() == {}


def _reordered(graph: Graph, tmp_path: Path) -> bool:
    """Whether ONNX Runtime's optimized graph converts layouts between the first and the last conv."""
    import onnx
    import onnxruntime as ort

    source = to_onnx(graph, tmp_path / f"{graph.name}.onnx")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / f"{graph.name}.opt.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    if "ReorderInput" not in ops:  # nothing ran blocked at all
        return True
    inner = ops[ops.index("ReorderInput") + 1:len(ops) - 1 - ops[::-1].index("ReorderOutput")]
    return any(op in ("ReorderInput", "ReorderOutput") for op in inner)


@pytest.mark.parametrize("middle, channels", [
    ("concat", 32), ("concat", 24), ("concat-after-slice", 32), ("grouped", 32), ("grouped", 16),
    ("maxpool", 32), ("maxpool", 20), ("upsample", 20), ("downsample", 32), ("pad", 32), ("mul", 20),
    ("squeeze-excite", 32),
])
def test_the_rule_matches_onnx_runtime_on_this_cpu(middle: str, channels: int, tmp_path: Path) -> None:
    block = layout_block("onnxruntime", current_machine()["isa"])
    if not block:
        pytest.skip("this CPU has no AVX2: ONNX Runtime runs no blocked layout here")
    graph, name = _probe(f"probe-{middle}-{channels}", middle, channels)
    assert _unblocked(graph, name, block) is _reordered(graph, tmp_path)
