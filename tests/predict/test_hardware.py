"""Hardware terms of a profile: a systolic array's cycles as a feature and baseline term, the latency floor."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from edgetune.predict import FusionRules, GraphBuilder, KernelPredictor, split_kernels
from edgetune.predict._graph import graph_to_dict
from edgetune.predict._hardware import ARRAY_FEATURE, ProfileHardware, SystolicArray
from edgetune.predict._profile import retrain
from edgetune.predict._profile_store import COLUMNS
from edgetune.predict._regress import FLOOR_MS, ROOFLINE_TERMS
from edgetune.predict._sampling import ALIGNMENT_FEATURES, BASE_FEATURES, FEATURES, features
from edgetune.targets import load_target

EDGETPU = SystolicArray(64, 64, "ws", 500.0)
RULES = FusionRules(frozenset({("conv", "bn"), ("conv", "relu")}))


def _conv(cin: int, cout: int, hw: int, kernel: int, stride: int = 1):  # type: ignore[no-untyped-def]
    b = GraphBuilder(f"conv{cin}-{cout}-{hw}-{kernel}-{stride}", (1, cin, hw, hw))
    return b.build(b.relu(b.conv("input", cout, kernel, stride)))


def test_array_cycles_of_known_layers_are_scalesims() -> None:
    """Layers of the committed npu-edgetpu-like profile: SCALE-Sim's latency there is these cycles at 500 MHz."""
    cases = [(_conv(56, 120, 112, 1), 25467),  # measured 0.050934 ms: 1 x 2 folds x (12544 + 190) - 1
             (_conv(88, 16, 12, 3), 4341),  # 0.008682 ms: 13 folds (792 / 64)
             (_conv(12, 48, 79, 3), 12861)]  # 0.025722 ms
    for graph, cycles in cases:
        assert EDGETPU.cycles(graph.ops[0]) == cycles
    b = GraphBuilder("dw", (1, 24, 48, 48))
    dw = b.dwconv("input", 5, 1)
    assert EDGETPU.cycles(b.ops[-1]) == 24 * 2493  # one SCALE-Sim layer (52x52 padded, 5x5, 1 channel) per channel
    b.fc(b.gap(dw), 40)
    kinds = {op.kind: op for op in b.ops}
    assert EDGETPU.cycles(kinds["fc"]) == 190  # 24 inputs, 40 outputs: one fold, one pixel
    assert EDGETPU.cycles(kinds["gap"]) == 0  # the pool runs on the host


def test_targets_get_their_array_and_floor() -> None:
    npu = ProfileHardware.for_target(load_target("npu-edgetpu-like"))
    assert npu.array == EDGETPU and npu.floor_ms == pytest.approx(2e-6)  # one cycle at 500 MHz
    assert npu.feature_names == BASE_FEATURES + (ARRAY_FEATURE,) + ALIGNMENT_FEATURES and "array_cycles" in npu.baseline_terms
    assert ProfileHardware.from_metadata({"hardware": npu.to_metadata()}) == npu
    cpu = ProfileHardware.for_target(load_target("host-cpu"))
    assert cpu == ProfileHardware() and cpu.to_metadata() == {} and cpu.baseline_terms == ROOFLINE_TERMS
    kernel = split_kernels(_conv(8, 16, 10, 3), RULES)[0]
    assert cpu.features(kernel) == features(kernel)
    row, base = npu.features(kernel), len(BASE_FEATURES)
    assert row[:base] + row[base + 1:] == features(kernel, BASE_FEATURES + ALIGNMENT_FEATURES)
    assert row[base] == pytest.approx(np.log1p(579))  # 2 folds x (100 + 190) - 1


def test_profiles_keep_the_features_they_were_trained_with() -> None:
    legacy = ProfileHardware.from_metadata({"features": list(BASE_FEATURES)})
    assert legacy.feature_names == BASE_FEATURES and legacy.extra == ()
    kernel = split_kernels(_conv(37, 40, 10, 3), RULES)[0]
    assert legacy.features(kernel) == features(kernel, BASE_FEATURES)
    values = dict(zip(FEATURES, features(kernel)))
    assert values["cin_pad8"] == pytest.approx(40 / 37) and values["cout_pad16"] == pytest.approx(48 / 40)
    from edgetune.predict import ProfileError

    with pytest.raises(ProfileError, match="features this edgetune does not know"):
        ProfileHardware.from_metadata({"features": list(BASE_FEATURES) + ["log_warp_size"]})


def _systolic_profile(folder: Path) -> Path:
    """A tiny scalesim-like profile (kernels timed at their array cycles), trained with retrain()."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with (folder / "measurements.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for i in range(16):
            graph = _conv(int(rng.integers(4, 200)), int(rng.integers(4, 200)), int(rng.choice([4, 8, 14, 28])),
                          int(rng.choice([1, 3])), int(rng.choice([1, 2])))
            ms = EDGETPU.cycles(graph.ops[0]) / 500e3
            writer.writerow({"id": i, "head": "conv", "kind": "conv+relu", "macs": graph.ops[0].macs, "raw_ms": ms,
                             "ci_low_ms": ms, "ci_high_ms": ms, "samples": 30, "converged": 1, "min_ms": ms,
                             "reference_ms": "", "latency_ms": ms, "time": 0.0,
                             "graph": json.dumps(graph_to_dict(graph))})
    (folder / "fusion.json").write_text(json.dumps(RULES.to_dict()))
    (folder / "state.json").write_text(json.dumps({"schema": 1, "target": "npu-edgetpu-like", "runtime": "scalesim",
                                                   "threads": 1, "overhead_ms": 0.0, "elapsed_s": 1.0,
                                                   "environment": {"libraries": {}}}))
    retrain(folder)
    return folder


def test_a_systolic_profile_records_and_uses_the_array_cycles(tmp_path: Path) -> None:
    folder = _systolic_profile(tmp_path / "npu-edgetpu-like" / "scalesim")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["hardware"]["systolic"] == EDGETPU.to_dict() and meta["features"][len(BASE_FEATURES)] == ARRAY_FEATURE
    predictor = KernelPredictor(folder)
    assert predictor.hardware.array == EDGETPU
    # shapes it never saw, folding differently from every sample: the array term carries them
    graphs = [_conv(130, 70, 20, 3), _conv(64, 65, 6, 1), _conv(3, 200, 40, 3, 2)]
    truth = np.array([EDGETPU.cycles(g.ops[0]) / 500e3 for g in graphs])
    pred = np.array([e.total_ms for e in predictor.predict_many(graphs)])
    assert np.allclose(pred, truth, rtol=0.02), pred / truth


def test_a_cpu_profile_has_no_hardware_terms(fake_profile: Path) -> None:
    meta = json.loads((fake_profile / "metadata.json").read_text())
    assert "hardware" not in meta and meta["features"] == list(FEATURES)
    models = json.loads((fake_profile / "models" / "models.json").read_text())
    assert all("terms" not in m and "floor_ms" not in m for m in models.values())
    predictor = KernelPredictor(fake_profile)
    assert predictor.hardware == ProfileHardware() and predictor.hardware.floor_ms == FLOOR_MS


def test_onnx_convs_map_to_the_array_as_the_scalesim_topology_maps_them(tmp_path: Path) -> None:
    """Pads, dilation and non-square kernels: the predictor's array layers are the SCALE-Sim topology's rows."""
    from edgetune.predict import graph_from_onnx
    from edgetune.simulate._topology import systolic_layers
    from tests.models._onnx_models import windows_onnx

    path = windows_onnx(tmp_path)
    graph, _ = graph_from_onnx(path)
    ops = {op.name: op for op in graph.ops}
    for layer in systolic_layers(path).layers:
        if layer.kind != "fc":  # the predictor maps an FC over one pixel
            assert EDGETPU.layers(ops[layer.node]) == (layer.shape, layer.repeat), layer.node
    assert EDGETPU.layers(ops["dilated"])[0].filter_h == 5 and EDGETPU.layers(ops["k1x7"])[0].ifmap_w == 26


def test_square_onnx_convs_have_the_features_of_the_networks_they_were_exported_from(tmp_path: Path) -> None:
    """Profile compatibility: reading a network back from ONNX changes none of its kernels' feature rows."""
    from edgetune.predict import graph_from_onnx, to_onnx

    b = GraphBuilder("square", (1, 3, 32, 32))
    x = b.relu(b.bn(b.conv("input", 16, 3, 2)))
    x = b.pool(b.relu6(b.dwconv(x, 5, 1)), "maxpool", 3, 2)
    x = b.conv(b.conv(x, 24, 1), 32, 3, 1, groups=4)
    graph = b.build(b.fc(b.gap(x), 10))
    back, _ = graph_from_onnx(to_onnx(graph, tmp_path / "square.onnx"))
    npu = ProfileHardware(array=EDGETPU)
    assert [npu.features(k) for k in split_kernels(back, RULES)] == [npu.features(k) for k in split_kernels(graph, RULES)]


def test_kernels_of_one_shape_share_a_feature_row_and_other_shapes_do_not() -> None:
    from edgetune.predict._hardware import GENERIC_HARDWARE

    def stem(name: str, width: int, stride: int):  # type: ignore[no-untyped-def]
        b = GraphBuilder(name, (1, 3, 32, 32))
        return split_kernels(b.build(b.relu(b.conv("input", width, 3, stride))), RULES)[0]

    first, same, wider, strided = stem("a", 16, 1), stem("b", 16, 1), stem("c", 24, 1), stem("d", 16, 2)
    row = GENERIC_HARDWARE.features(first)
    assert row == GENERIC_HARDWARE._features(first)  # what an uncached computation gives
    row.append(99.0)  # a caller extending its row (the in-network context) leaves the shared one alone
    assert GENERIC_HARDWARE.features(same) == GENERIC_HARDWARE._features(same) == row[:-1]
    assert GENERIC_HARDWARE.features(wider) == GENERIC_HARDWARE._features(wider) != row[:-1]
    assert GENERIC_HARDWARE.features(strided) == GENERIC_HARDWARE._features(strided) != row[:-1]
