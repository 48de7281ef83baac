"""Device figures (SIMULATED / ESTIMATED) read from a candidate's build details, for every kind of simulated device."""

from __future__ import annotations

from edgetune.simulate._figures import device_figures

MEMORY = {"sram_kb": 320, "flash_kb": 1024}


def test_mcu_figures_are_estimated_against_the_board() -> None:
    figures = device_figures({"simulator": "tflite-micro", "arena_kb": 12.5, "flash_kb": 40.0, "cycles": 123456}, MEMORY)
    assert figures.kind == "mcu" and figures.label == "ESTIMATED"
    assert figures.text == "ESTIMATED: arena 12.5 / 320 KB SRAM, flash 40.0 / 1024 KB, 123,456 cycles"


def test_ethos_u_figures() -> None:
    details = {"simulator": "vela", "npu_ops": 7, "cpu_ops": 1, "sram_used_kb": 10.25, "off_chip_flash_used_kb": 30.0,
               "on_chip_flash_used_kb": 0.0, "cycles_npu": 900, "cycles_total": 1000}
    figures = device_figures(details, {"sram_kb": 384, "flash_kb": None})
    assert figures.label == "SIMULATED" and figures.values["flash_used_kb"] == 30.0
    assert figures.text == "SIMULATED: NPU 7 / CPU 1 ops, SRAM 10.2 / 384 KB, flash 30.0 KB, 1,000 cycles"


def test_systolic_and_fpga_figures() -> None:
    npu = {"simulator": "scalesim", "cycles": 5000, "utilization_pct": 42.0, "energy_uj": 1.5}
    assert device_figures(npu).text == "SIMULATED: 5,000 cycles, util 42.0%, 1.5 uJ"
    fpga = {**npu, "dsp_used": 200, "dsp_available": 220, "bram_used_kb": 100.0, "bram_available_kb": 140}
    figures = device_figures(fpga)
    assert figures.kind == "fpga" and figures.values["dsp_used"] == 200
    assert figures.text.endswith("DSP 200 / 220, BRAM 100.0 / 140 KB")


def test_real_devices_and_incomplete_details_have_none() -> None:
    assert device_figures({}) is None and device_figures({"quantization": "x"}) is None
    assert device_figures({"simulator": "vela"}) is None  # an older manifest without the numbers
