"""The analytic systolic-array cycle count against SCALE-Sim's own numbers, for every dataflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.simulate._cycles import ofmap_rows, stall_free_cycles
from edgetune.simulate._scalesim import ArrayConfig, run_scalesim
from edgetune.simulate._topology import ArrayLayer

# SCALE-Sim 3.0.0 "Total Cycles" of layers the npu-edgetpu-like profile simulated (64x64, ws, no stalls)
EDGETPU_LAYERS = [
    (ArrayLayer(2, 2, 1, 1, 20, 20, 1), 193),  # one fold: pixels + 2R + C - 2 - 1
    (ArrayLayer(14, 14, 3, 3, 88, 16, 1), 4341),  # 13 row folds
    (ArrayLayer(28, 28, 5, 5, 56, 56, 1), 16851),
    (ArrayLayer(20, 20, 1, 1, 248, 204, 2), 4975),  # 4 x 4 folds; SCALE-Sim rounds 19/2 + 1 output rows up to 11
    (ArrayLayer(53, 53, 5, 5, 8, 160, 2), 9779),
    (ArrayLayer(52, 52, 5, 5, 1, 1, 1), 2493),  # one depthwise channel
    (ArrayLayer(88, 88, 3, 3, 1, 1, 2), 2125),
    (ArrayLayer(1, 1, 1, 1, 64, 40, 1), 190),  # fully connected: one pixel
]

# SCALE-Sim 3.0.0 on a 12x14 array (rows != cols tells the two apart) in each dataflow
SMALL_ARRAY_LAYERS = [
    (ArrayLayer(10, 10, 3, 3, 5, 20, 1), {"ws": 799, "os": 827, "is": 1119}),
    (ArrayLayer(1, 1, 1, 1, 40, 33, 1), {"ws": 443, "os": 191, "is": 275}),
    (ArrayLayer(12, 12, 3, 3, 4, 16, 2), {"ws": 431, "os": 359, "is": 467}),
]


@pytest.mark.parametrize("layer,cycles", EDGETPU_LAYERS)
def test_weight_stationary_cycles_match_scalesim_on_the_edgetpu_like_array(layer: ArrayLayer, cycles: int) -> None:
    assert stall_free_cycles(layer, 64, 64, "ws") == cycles


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_each_dataflow_matches_scalesim_on_a_non_square_array(dataflow: str) -> None:
    for layer, cycles in SMALL_ARRAY_LAYERS:
        assert stall_free_cycles(layer, 12, 14, dataflow) == cycles[dataflow], layer


def test_scalesims_golden_alexnet_conv1() -> None:
    """SCALE-Sim's repository golden report: AlexNet Conv1 on its 32x32 ws example array, 112,283 cycles."""
    assert stall_free_cycles(ArrayLayer(224, 224, 11, 11, 3, 96, 4), 32, 32, "ws") == 112283


def test_output_rows_round_up_like_scalesim() -> None:
    assert ofmap_rows(20, 1, 2) == 11 and ofmap_rows(21, 3, 2) == 10 and ofmap_rows(10, 3, 1) == 8


def test_an_unknown_dataflow_is_refused() -> None:
    with pytest.raises(ValueError, match="dataflow 'rs'"):
        stall_free_cycles(ArrayLayer(4, 4, 1, 1, 1, 1, 1), 8, 8, "rs")


def test_the_model_agrees_with_a_live_scalesim_run(tmp_path: Path) -> None:
    """Two layers per dataflow through SCALE-Sim itself (about a second)."""
    layers = [layer for layer, _ in SMALL_ARRAY_LAYERS[:2]]
    for dataflow in ("ws", "os", "is"):
        rows = run_scalesim(layers, ArrayConfig(12, 14, dataflow, 64, 64, 64), tmp_path / dataflow, jobs=1)
        assert [int(r["cycles"]) for r in rows] == [stall_free_cycles(layer, 12, 14, dataflow) for layer in layers]
