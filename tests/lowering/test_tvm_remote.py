"""Where tvm-tuned measures, and its --tuning-records folder: the errors that need no tuning run."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.errors import ConfigError
from edgetune.lowering import LoweringContext
from edgetune.lowering._tvm_remote import host_arch, measure_on
from edgetune.lowering._tvm_tune import _open_database, _records_option
from edgetune.targets import load_target


def test_the_host_cpu_is_tuned_here() -> None:
    assert measure_on(load_target("host-cpu")) is None
    assert measure_on(load_target(f"llvm -mtriple={host_arch()}-linux-gnu")) is None


def test_another_architecture_is_tuned_on_its_boards_only() -> None:
    other = "aarch64" if host_arch() != "aarch64" else "x86_64"
    local = load_target("host-cpu").model_copy(update={"cpu": load_target("host-cpu").cpu.model_copy(
        update={"llvm_mtriple": f"{other}-linux-gnu"})})
    with pytest.raises(ConfigError, match="tune it on a board behind the RPC tracker"):
        measure_on(local)


@pytest.mark.parametrize("name, message", [("ethos-u55-128", "tunes CPU targets"), ("jetson-orin-nano", "tunes CPU targets")])
def test_devices_without_a_cpu_to_tune_are_refused(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        measure_on(load_target(name))


def test_an_rpc_target_needs_a_tracker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGETUNE_RPC_TRACKER", raising=False)
    with pytest.raises(ConfigError, match="--rpc-tracker"):
        measure_on(load_target("rpi4"))


def test_tuning_records_must_be_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    path.write_text("{}")
    with pytest.raises(ConfigError, match="is a file; give a folder"):
        _records_option(LoweringContext(options={"tuning_records": str(path)}))
    assert _records_option(LoweringContext(options={"tuning_records": str(tmp_path)})) == tmp_path
    assert _records_option(LoweringContext()) is None


def test_corrupt_tuning_records_are_a_one_line_error(tmp_path: Path) -> None:
    pytest.importorskip("tvm")
    (tmp_path / "database_workload.json").write_text("this is not json\n")
    (tmp_path / "database_tuning_record.json").write_text("")
    with pytest.raises(ConfigError, match="not a MetaSchedule JSON database"):
        _open_database(tmp_path)
