from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.errors import TargetError, TargetNotRunnableError, UnknownTargetError
from edgetune.runners import require_runnable, runnability
from edgetune.targets import (
    SCHEMA_VERSION,
    TargetRegistry,
    detect_host,
    list_targets,
    load_target,
)

GOOD = """
schema_version: 1
name: my-board
kind: cpu
transport: rpc
rpc_key: my-board
runtimes: [tvm]
cpu: {arch: aarch64, cores: 4, llvm_mcpu: cortex-a53}
"""


def test_builtin_targets_cover_the_device_kinds() -> None:
    targets = {t.name: t for t in list_targets()}
    assert {"host-cpu", "rpi4", "jetson-orin-nano", "ethos-u55-128", "fpga-zynq7020"} <= set(targets)
    assert {t.kind for t in targets.values()} >= {"cpu", "gpu", "npu", "fpga"}
    assert all(t.schema_version == SCHEMA_VERSION for t in targets.values())
    assert targets["rpi4"].cpu.llvm_mcpu == "cortex-a72"
    assert targets["ethos-u55-128"].simulated


def test_host_cpu_is_detected_and_runnable() -> None:
    host = detect_host()
    target = load_target("host-cpu")
    assert target.cpu.model == host.model and target.cpu.model != "auto"
    assert target.cpu.arch == host.arch
    assert target.cpu.cores == host.cores_physical >= 1
    assert isinstance(target.cpu.features, tuple)
    assert set(target.cpu.features) <= set(host.features)
    assert target.thread_count == host.cores_physical
    assert runnability(target).runnable
    require_runnable(target)


def test_targets_are_frozen() -> None:
    target = load_target("host-cpu")
    with pytest.raises(Exception):
        target.name = "other"  # type: ignore[misc]


def test_described_boards_are_not_runnable_with_a_reason() -> None:
    for name in ("rpi4", "jetson-orin-nano"):  # simulated targets run here: tests/simulate/test_targets.py
        verdict = runnability(load_target(name))
        assert not verdict.runnable and verdict.reason
    with pytest.raises(TargetNotRunnableError, match="rpi4"):
        require_runnable(load_target("rpi4"))


def test_unknown_target_lists_valid_names() -> None:
    with pytest.raises(UnknownTargetError) as info:
        load_target("no-such-board")
    assert "host-cpu" in str(info.value) and "rpi4" in str(info.value)


def test_user_folder_adds_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my-board.yaml").write_text(GOOD)
    assert load_target("my-board", tmp_path).cpu.cores == 4
    monkeypatch.setenv("EDGETUNE_TARGETS_DIR", str(tmp_path))
    assert "my-board" in TargetRegistry.load().names()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("cores: 4", "cores: four"), "key 'cpu.cores'"),
        (GOOD + "colour: blue\n", "unknown key 'colour'"),
        (GOOD.replace("kind: cpu", "kind: toaster"), "key 'kind'"),
        (GOOD.replace("name: my-board\n", ""), "missing required key 'name'"),
        (GOOD.replace("schema_version: 1", "schema_version: 7"), "unsupported version 7"),
        ("name: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(TargetError) as info:
        load_target("my-board", tmp_path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_duplicate_names_in_one_folder(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(TargetError, match="already defined"):
        TargetRegistry.load([tmp_path])


def test_missing_targets_folder(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="does not exist"):
        load_target("host-cpu", tmp_path / "nope")
