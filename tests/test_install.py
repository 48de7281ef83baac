"""A non-editable install works outside the checkout: built-in targets and profiles ship with the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("edgetune", "targets", "profiles", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with edgetune installed from a wheel (no -e); dependencies come from this environment."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # a copy, so that the build leaves nothing in the checkout
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "_data"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(source),
                 cwd=tmp)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp / "dist").glob("edgetune-*.whl")
    venv = tmp / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp).returncode == 0
    python = venv / "bin" / "python"
    done = _run(*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel), cwd=tmp)
    assert done.returncode == 0, done.stderr
    # dependencies (numpy, onnx, onnxruntime, ...) from this environment, after the venv's own site-packages;
    # a plain path line, so that this environment's editable edgetune (a .pth finder) is not picked up
    site = Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp)
                .stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "EDGETUNE_PROFILES", "EDGETUNE_TARGETS_DIR", "EDGETUNE_RESULTS")}
    return {**env, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_the_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = _run(str(installed / "bin" / "python"), "-c", "import edgetune; print(edgetune.__file__)", cwd=tmp_path,
                 env=_env(tmp_path))
    assert where.returncode == 0, where.stderr
    assert str(installed) in where.stdout and str(REPO) not in where.stdout


def test_targets_list_and_predict_from_another_folder(installed: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(tmp_path / "home")
    listed = _run(str(installed / "bin" / "edgetune"), "targets", "list", "--json", cwd=elsewhere, env=env)
    assert listed.returncode == 0, listed.stderr
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert {"host-cpu", "rpi4", "mcu-stm32f746", "ethos-u55-128"} <= names
    predicted = _run(str(installed / "bin" / "edgetune"), "predict", str(tiny_onnx), "--target", "host-cpu", "--json",
                     cwd=elsewhere, env=env)
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["total_ms"] > 0 and json.loads(predicted.stdout)["predicted"] is True
    seeded = tmp_path / "home" / "data" / "edgetune" / "profiles" / "host-cpu" / "onnxruntime" / "metadata.json"
    assert seeded.is_file()  # the user's profiles folder was seeded from the shipped profiles


def test_the_report_templates_ship_with_the_package(installed: Path, tmp_path: Path) -> None:
    listed = _run(str(installed / "bin" / "python"), "-c",
                  "from edgetune.report._templates import _environment; print(' '.join(_environment().list_templates()))",
                  cwd=tmp_path, env=_env(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert {"compile.html.j2", "dashboard.html.j2", "layers.html.j2", "layers_section.html.j2"} <= set(listed.stdout.split())


def test_profiles_default_to_a_seeded_user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgetune._locations import profiles_dir, shipped_dir

    shipped = shipped_dir("profiles")
    if not (shipped / "host-cpu").is_dir():
        pytest.skip("no shipped host-cpu profile")
    monkeypatch.delenv("EDGETUNE_PROFILES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = profiles_dir("host-cpu")
    assert folder == tmp_path / "data" / "edgetune" / "profiles" / "host-cpu"
    assert (folder / "onnxruntime" / "metadata.json").read_bytes() == \
        (shipped / "host-cpu" / "onnxruntime" / "metadata.json").read_bytes()
    (folder / "onnxruntime" / "metadata.json").write_text("{}")  # the user's copy is theirs: never re-seeded
    assert (profiles_dir("host-cpu") / "onnxruntime" / "metadata.json").read_text() == "{}"
    assert not profiles_dir("no-such-target").exists()  # nothing shipped, nothing made
    assert not [p for p in folder.parent.iterdir() if "seeding" in p.name]


def _ship(root: Path, runtime: str, created: str, data: str) -> None:
    folder = root / "t" / runtime
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.json").write_text(json.dumps({"created": created}))
    (folder / "kernels.csv").write_text(data)


def test_a_seeded_copy_follows_newer_shipped_profiles_until_the_user_profiles(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgetune import _locations

    shipped = tmp_path / "shipped"
    monkeypatch.setattr(_locations, "shipped_dir", lambda name: shipped)
    monkeypatch.delenv("EDGETUNE_PROFILES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _ship(shipped, "ort", "2026-01-01T00:00:00Z", "v1")
    mine = _locations.profiles_dir("t") / "ort"
    assert (mine / "kernels.csv").read_text() == "v1"
    _ship(shipped, "ort", "2026-02-01T00:00:00Z", "v2")  # a newer edgetune ships a re-taken profile
    _ship(shipped, "tvm", "2026-02-01T00:00:00Z", "t1")  # ... and one for another runtime
    assert (_locations.profiles_dir("t") / "ort" / "kernels.csv").read_text() == "v2"
    assert (mine.parent / "tvm" / "kernels.csv").read_text() == "t1"
    assert (mine.parent / ".ort-replaced-2026-01-01T000000Z" / "kernels.csv").read_text() == "v1"  # kept aside
    (mine / "metadata.json").write_text(json.dumps({"created": "2026-02-02T00:00:00Z"}))  # the user profiled over it
    (mine / "kernels.csv").write_text("mine")
    _ship(shipped, "ort", "2026-03-01T00:00:00Z", "v3")
    assert (_locations.profiles_dir("t") / "ort" / "kernels.csv").read_text() == "mine"  # theirs, never replaced
    (mine.parent / "tvm" / _locations.SEED_MARK).unlink()  # a copy seeded before copies were marked
    _ship(shipped, "tvm", "2026-03-01T00:00:00Z", "t2")
    assert (_locations.profiles_dir("t") / "tvm" / "kernels.csv").read_text() == "t1"


def test_edgetune_profiles_wins_and_is_never_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgetune._locations import profiles_dir

    monkeypatch.setenv("EDGETUNE_PROFILES", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert profiles_dir("host-cpu") == tmp_path / "mine" / "host-cpu"
    assert not (tmp_path / "mine").exists() and not (tmp_path / "data").exists()
