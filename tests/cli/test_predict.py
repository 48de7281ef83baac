"""`edgetune predict` and `edgetune profile` as a user meets them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetune.predict import to_onnx
from tests.cli.test_cli import edgetune, error_line
from tests.predict.test_graph import _residual_net


@pytest.fixture
def net_onnx(tmp_path: Path) -> Path:
    return to_onnx(_residual_net(), tmp_path / "net.onnx")


def test_predict_table_and_json(fake_profile: Path, net_onnx: Path) -> None:
    root = str(fake_profile.parent.parent)
    proc = edgetune("predict", str(net_onnx), "--runtime", "fake", "--profiles-dir", root)
    assert proc.returncode == 0, proc.stderr
    assert "predicted" in proc.stdout and "not a measurement" in proc.stdout and "conv+bn+relu" in proc.stdout
    assert "the interval covers the profile's model error" in proc.stdout
    assert "the interval is not for today's speed" in " ".join(proc.stdout.split())  # uncalibrated: says so
    proc = edgetune("predict", str(net_onnx), "--runtime", "fake", "--profiles-dir", root, "--json")
    data = json.loads(proc.stdout)
    assert data["predicted"] is True and data["total_ms"] > 0 and data["kernels"]
    assert data["low_ms"] < data["total_ms"] < data["high_ms"] and len(data["interval_covers"]) == 2
    flops = json.loads(edgetune("predict", str(net_onnx), "--runtime", "fake", "--profiles-dir", root, "--json",
                                "--predictor", "flops").stdout)
    assert flops["predictor"] == "flops" and flops["total_ms"] > 0


def test_predict_network_description(fake_profile: Path, tmp_path: Path) -> None:
    from edgetune.predict._graph import graph_to_dict

    desc = tmp_path / "net.json"
    desc.write_text(json.dumps(graph_to_dict(_residual_net())))
    proc = edgetune("predict", str(desc), "--runtime", "fake", "--profiles-dir", str(fake_profile.parent.parent), "--json")
    assert proc.returncode == 0, proc.stderr and json.loads(proc.stdout)["network"] == "res"


@pytest.mark.parametrize("args, needle", [
    (["predict", "{net}", "--profiles-dir", "{tmp}"], "run `edgetune profile"),
    (["predict", "{tmp}/missing.onnx"], "does not exist"),
    (["predict", "{tmp}"], "is a folder"),
    (["predict", "{bad}", "--runtime", "fake", "--profiles-dir", "{prof}"], "cannot read ONNX model"),
    (["profile", "--budget", "0"], "budget must be positive"),
    (["profile", "--target", "no-such-board"], "no-such-board"),
    (["profile", "--runtime", "vela"], "does not list runtime"),
    (["profile", "--adapt", "--fresh"], "cannot be combined with --fresh"),
    (["profile", "--adapt", "--profiles-dir", "{tmp}"], "no host-cpu/onnxruntime profile to adapt"),
    (["profile", "--adapt", "--budget", "0", "--profiles-dir", "{prof}"], "budget must be positive"),
    (["profile", "--adapt", "--target", "rpi4"], "--adapt times reference networks on this machine"),
    (["profile", "--adapt", "--runtime", "fake", "--profiles-dir", "{prof}"], "was taken on this machine"),
])
def test_predict_profile_errors(args: list[str], needle: str, net_onnx: Path, tmp_path: Path, fake_profile: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("garbage")
    fill = {"net": str(net_onnx), "tmp": str(tmp_path), "bad": str(bad), "prof": str(fake_profile.parent.parent)}
    proc = edgetune(*[a.format(**fill) for a in args])
    assert proc.returncode != 0
    assert needle in error_line(proc)


def test_predict_calibrate_without_references_names_the_adapt_command(fake_profile: Path, net_onnx: Path,
                                                                      tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "host-cpu" / "fake"
    shutil.copytree(fake_profile, copy)
    (copy / "references.json").unlink()
    proc = edgetune("predict", str(net_onnx), "--runtime", "fake", "--profiles-dir", str(tmp_path), "--calibrate")
    assert proc.returncode != 0 and "edgetune profile --target host-cpu --runtime fake --adapt" in error_line(proc)


def test_profile_adapt_fits_kernel_by_kernel_with_onnxruntime(net_onnx: Path, tmp_path: Path) -> None:
    """The shipped ONNX Runtime profile adapted here: real sessions, ONNX Runtime's per-node profiler,
    a residual fitted on the references' kernels, then used by `predict` on this machine."""
    import shutil

    from edgetune._locations import shipped_dir

    copy = tmp_path / "host-cpu" / "onnxruntime"
    shutil.copytree(shipped_dir("profiles") / "host-cpu" / "onnxruntime", copy, ignore=shutil.ignore_patterns("adapted"))
    meta = json.loads((copy / "metadata.json").read_text())  # taken on another CPU, whichever machine runs the test
    meta["environment"]["cpu_model"] = meta["machine"]["cpu_model"] = "Some Other CPU 9000"
    (copy / "metadata.json").write_text(json.dumps(meta))
    proc = edgetune("profile", "--adapt", "--budget", "0.2", "--profiles-dir", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["method"] == "kernel residual" and data["references"] == 20 and data["kernels"] > 200
    assert set(data["kernel_ratios"]) >= {"conv", "dwconv", "fc"} and 0 <= data["held_out"]["within_10pct"] <= 1
    proc = edgetune("predict", str(net_onnx), "--profiles-dir", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    correction = json.loads(proc.stdout)["machine_correction"]
    assert correction["adapted"] and correction["method"] == "kernel residual"


def test_profile_retrain_refits_from_stored_measurements(fake_profile: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "profiles"
    shutil.copytree(fake_profile, root / "host-cpu" / "fake")
    (root / "host-cpu" / "fake" / "models" / "conv.lgb.txt").unlink()
    proc = edgetune("profile", "--runtime", "fake", "--profiles-dir", str(root), "--retrain", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["held_out"]["conv"]["kernels"] >= 5  # as many as the fake profile fitted in its budget
    assert (root / "host-cpu" / "fake" / "models" / "conv.lgb.txt").exists()


def test_profile_retrain_says_what_a_profile_says(fake_profile: Path, tmp_path: Path) -> None:
    """`profile --retrain` prints the same account of the fit as `profile`: kernels, chains, networks, drift."""
    import shutil

    from edgetune.predict._profile import fit_summary

    root = tmp_path / "profiles"
    shutil.copytree(fake_profile, root / "host-cpu" / "fake")
    proc = edgetune("profile", "--runtime", "fake", "--profiles-dir", str(root), "--retrain")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((root / "host-cpu" / "fake" / "metadata.json").read_text())
    lines = fit_summary(meta)
    assert any(line.startswith("check on") and "random kernel chains" in line for line in lines)
    assert " ".join(proc.stdout.split()) == " ".join(" ".join(lines).split())  # the same words, however rich wraps them


@pytest.mark.parametrize("args, needle", [
    (["search", "--dataset", "no-such-data", "--trials", "1"], "not found"),
    (["search", "--latency-budget-ms", "0.000001", "--trials", "1"], "can meet"),
    (["search", "--storage", "postgresql://u:pw@127.0.0.1:1/x", "--trials", "1"], "cannot open the study storage"),
    (["search", "status", "-o", "{tmp}/nothing"], "no study"),
    (["search", "--space", "{tmp}/missing.yaml"], "cannot read search space"),
])
def test_search_errors(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = edgetune(*[a.format(tmp=tmp_path) for a in args], "-o", str(tmp_path / "out")) if args[1] != "status" else \
        edgetune(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode != 0
    assert needle in error_line(proc)


def test_search_supernet_cli() -> None:
    proc = edgetune("search", "supernet", "--samples", "3", "--standalone", "3", "--epochs", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["architectures"]) == 3 and "kendall_tau" in data


def test_a_warning_is_one_line_that_names_the_fix(fake_profile: Path, net_onnx: Path, tmp_path: Path) -> None:
    """A profile taken under load: `predict` warns in one `Warning: ...` line with the command to re-run, not in
    Python's file:line form (that with --debug)."""
    import shutil

    copy = tmp_path / "host-cpu" / "fake"
    shutil.copytree(fake_profile, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["in_network"] = {**(meta.get("in_network") or {}),
                          "disturbed": {"networks": 971, "over": 0.05, "share": 0.1874, "warn": True}}
    (copy / "metadata.json").write_text(json.dumps(meta))
    proc = edgetune("predict", str(net_onnx), "--runtime", "fake", "--profiles-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "other load" in line]
    assert len(lines) == 1 and lines[0].startswith("Warning: the host-cpu/fake profile was taken while other load")
    assert "--runtime fake --fresh` again" in lines[0] and "UserWarning" not in proc.stderr
    debug = edgetune("--debug", "predict", str(net_onnx), "--runtime", "fake", "--profiles-dir", str(tmp_path))
    assert "UserWarning: the host-cpu/fake profile was taken while other load" in debug.stderr
