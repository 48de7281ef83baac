"""--target as an LLVM target string or a YAML file, and --rpc-key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.errors import ConfigError, TargetError
from edgetune.targets import load_target, resolve_target_option
from edgetune.targets._from_text import host_arch, parse_target_string


def test_a_target_string_parses_into_tvm_dict_form() -> None:
    spec = parse_target_string("llvm -mtriple=aarch64-linux-gnu -mcpu=cortex-a72 -mattr=+neon,+crc -num-cores=4")
    assert spec == {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72", "mattr": ("+neon", "+crc"),
                    "num-cores": 4}


def test_a_foreign_triple_is_a_board_behind_the_tracker() -> None:
    other = "aarch64" if host_arch() != "aarch64" else "x86_64"
    target = load_target(f"llvm -mtriple={other}-linux-gnu -mcpu=cortex-a72 -num-cores=4")
    assert target.transport == "rpc" and target.rpc_key == target.name
    assert target.cpu.llvm_mtriple == f"{other}-linux-gnu" and target.cpu.llvm_mcpu == "cortex-a72"
    assert target.thread_count == 4 and target.runtimes == ("tvm",)


def test_a_host_string_runs_here_and_reaches_tvm_as_a_dict() -> None:
    pytest.importorskip("tvm")
    from edgetune.lowering._tvm import llvm_target

    target = load_target("llvm -mcpu=x86-64 -mattr=+sse2")
    assert target.transport == "local" and target.name == "llvm-x86-64"
    built = llvm_target(target)
    assert str(built.attrs["mcpu"]) == "x86-64" and list(built.attrs["mattr"]) == ["+sse2"]


def test_rpc_key_turns_a_string_into_a_board_and_renames_an_rpc_targets_key() -> None:
    assert resolve_target_option("llvm -mcpu=x86-64", rpc_key="lab-x86").rpc_key == "lab-x86"
    assert resolve_target_option("rpi4", rpc_key="rpi4-lab").rpc_key == "rpi4-lab"
    with pytest.raises(ConfigError, match="--rpc-key is for targets reached over RPC"):
        resolve_target_option("host-cpu", rpc_key="x")


@pytest.mark.parametrize("text, message", [
    ("llvm -mcpu", "is not -key=value"),
    ("llvm mcpu=x", "is not -key=value"),
    ("llvm -mfoo=1", "unknown attribute -mfoo"),
    ("llvm -mcpu=a -mcpu=b", "given twice"),
    ("llvm -num-cores=0", "-num-cores must be"),
    ("llvm -mattr=neon", "-mattr takes"),
    ("llvm -mcpu=a;rm", "characters LLVM does not use"),
    ("llvm -mcpu='unterminated", "bad target string"),
])
def test_bad_target_strings_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_target(text)


def test_a_target_yaml_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_text("schema_version: 1\nname: my-board\nkind: cpu\ntransport: rpc\nrpc_key: mine\n"
                    "runtimes: [tvm]\ncpu: {arch: aarch64, llvm_mcpu: cortex-a53, llvm_mtriple: aarch64-linux-gnu}\n")
    target = load_target(str(path))
    assert (target.name, target.rpc_key, target.cpu.llvm_mcpu) == ("my-board", "mine", "cortex-a53")


def test_a_missing_target_yaml_is_a_target_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="does not exist"):
        load_target(str(tmp_path / "nope.yaml"))
