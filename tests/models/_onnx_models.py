"""ONNX models built in code whose windows are not square, 'same'-padded and undilated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (node name, weight shape, attributes): 1x8x20x20 in, every conv 16 channels out
WINDOW_CONVS = (
    ("k1x7", (16, 8, 1, 7), {"kernel_shape": [1, 7], "pads": [0, 3, 0, 3]}),  # 20x20
    ("k7x1", (16, 16, 7, 1), {"kernel_shape": [7, 1], "pads": [3, 0, 3, 0]}),  # 20x20
    ("dilated", (16, 16, 3, 3), {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2], "dilations": [2, 2]}),  # 20x20
    ("valid", (16, 16, 3, 3), {"kernel_shape": [3, 3]}),  # 18x18
    ("same_upper", (16, 16, 3, 3), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),  # 9x9
)
# multiply-accumulates of those convs, then of the classifier (a 2x2 max pool leaves 16x4x4 = 256 features)
WINDOW_MACS = {"k1x7": 16 * 400 * 8 * 7, "k7x1": 16 * 400 * 16 * 7, "dilated": 16 * 400 * 16 * 9,
               "valid": 16 * 324 * 16 * 9, "same_upper": 16 * 81 * 16 * 9, "fc": 256 * 10}


def windows_onnx(folder: Path, name: str = "windows") -> Path:
    """Conv 1x7 -> 7x1 -> dilated 3x3 -> unpadded 3x3 -> SAME_UPPER 3x3/2 -> MaxPool 2/2 -> Flatten -> Gemm."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for node, weight, attrs in WINDOW_CONVS:
        inits.append(numpy_helper.from_array(rng.standard_normal(weight).astype(np.float32) * 0.1, f"{node}.w"))
        nodes.append(helper.make_node("Conv", [x, f"{node}.w"], [node], node, **attrs))
        x = node
    inits.append(numpy_helper.from_array(rng.standard_normal((10, 256)).astype(np.float32) * 0.1, "fc.w"))
    nodes += [helper.make_node("MaxPool", [x], ["pool"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
              helper.make_node("Flatten", ["pool"], ["flat"], "flat"),
              helper.make_node("Gemm", ["flat", "fc.w"], ["y"], "fc", transB=1)]
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 20, 20])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path
