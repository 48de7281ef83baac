"""Cortex-M MCUs through TFLite Micro: arena and flash of a tiny int8 model, latency estimate, does-not-fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import InfeasibleError
from edgetune.lowering import CalibrationData, LoweringContext, get_lowering
from edgetune.models import load_model
from edgetune.runners import get_runner
from edgetune.simulate._tflite_ops import CMSIS_NN_M7_CYCLES_PER_MAC
from edgetune.targets import load_target
from edgetune.targets._schema import MemorySpec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    from edgetune.data import load_dataset
    from tests.conftest import tiny_factory

    model = load_model(tiny_factory(), input_shape=(1, 1, 8, 8), workdir=tmp_path_factory.mktemp("model"))
    return model, LoweringContext(calibration=CalibrationData(load_dataset("digits").x[:32], "digits"))


def test_arena_flash_and_latency_of_a_tiny_int8_model(tiny, tmp_path: Path) -> None:
    model, context = tiny
    artifact = get_lowering("tflm").apply(model, load_target("mcu-stm32f746"), tmp_path, context)
    d = artifact.details
    assert d["simulated"] is True and d["simulator"] == "tflite-micro" and d["fits"] is True
    assert 0 < d["arena_bytes"] < 64 * 1024 and d["arena_kb"] == pytest.approx(d["arena_bytes"] / 1024)
    assert d["flash_kb"] == pytest.approx(artifact.size_bytes / 1024)
    assert d["macs"] == 8 * 8 * 9 * 4 + 4 * 3  # conv 3x3 1->4 on 8x8, FC 4->3
    assert d["latency_ms"] == pytest.approx(d["macs"] * CMSIS_NN_M7_CYCLES_PER_MAC / 216e3)
    with get_runner("tflm").load(artifact.path, threads=1) as session:
        out = session.run({"input": np.ones((1, 1, 8, 8), np.float32)})[0]
        assert out.shape == (1, 3) and session.device_timed(1) == [d["latency_ms"]]


def test_a_board_too_small_says_what_it_needs(tiny, tmp_path: Path) -> None:
    model, context = tiny
    board = load_target("mcu-nrf52840").model_copy(update={"memory": MemorySpec(sram_kb=1, flash_kb=1)})
    with pytest.raises(InfeasibleError, match=r"does not fit mcu-nrf52840: needs \d+ KB SRAM for the tensor arena, "
                                              r"the board has 1 KB; needs \d+ KB flash for the model, the board has 1 KB"):
        get_lowering("tflm").apply(model, board, tmp_path, context)
