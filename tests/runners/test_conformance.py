"""One suite every Runner passes. Tests are generated from the registry: add a runner, get its tests.

Each runner's artifact is produced by the registered Lowering whose output format the runner
loads, from the same tiny PyTorch model; outputs are checked against the PyTorch forward pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import RunnerError
from edgetune.lowering import LoweringContext, lowering_registry
from edgetune.models import load_model
from edgetune.runners import get_runner, runner_registry
from edgetune.targets import load_target

RUNNERS = sorted(runner_registry)


def _lowering_for(runner_name: str):
    fmt = runner_registry[runner_name].artifact_format
    return next(cls() for cls in lowering_registry.values() if cls.output_format == fmt)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    from tests.conftest import tiny_factory

    module = tiny_factory()
    return module, load_model(module, input_shape=(1, 1, 8, 8), workdir=tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def artifacts(loaded, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _, model = loaded
    target = load_target("host-cpu")
    built = {}
    for name in RUNNERS:
        if not runner_registry[name].availability().ok:
            continue
        built[name] = _lowering_for(name).apply(model, target, tmp_path_factory.mktemp(name), LoweringContext()).path
    return built


def _inputs(seed: int) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(seed).standard_normal((1, 1, 8, 8)).astype(np.float32)}


def _expected(module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(feeds["input"])).numpy()


@pytest.mark.parametrize("name", RUNNERS)
class TestRunnerConformance:
    def test_available_here(self, name: str) -> None:
        availability = runner_registry[name].availability()
        assert availability.ok, availability.reason

    def test_runs_and_matches_reference(self, name: str, loaded, artifacts) -> None:
        module, _ = loaded
        with get_runner(name).load(artifacts[name], threads=1) as session:
            for seed in range(3):
                feeds = _inputs(seed)
                outputs = session.run(feeds)
                assert len(outputs) == 1 and outputs[0].shape == (1, 3)
                np.testing.assert_allclose(outputs[0], _expected(module, feeds), rtol=1e-3, atol=1e-4)

    def test_a_closed_session_leaves_the_cpu_affinity_as_it_found_it(self, name: str, artifacts) -> None:
        import os

        before = os.sched_getaffinity(0)
        with get_runner(name).load(artifacts[name], threads=1) as session:
            session.run(_inputs(0))
        assert os.sched_getaffinity(0) == before  # e.g. TVM's thread pool pins its calling thread while it runs

    def test_invoke_is_repeatable_and_follows_inputs(self, name: str, artifacts) -> None:
        with get_runner(name).load(artifacts[name], threads=2) as session:
            session.set_inputs(_inputs(0))
            session.invoke()
            first = session.outputs()[0].copy()
            session.invoke()
            np.testing.assert_array_equal(session.outputs()[0], first)
            session.set_inputs(_inputs(1))
            session.invoke()
            assert not np.allclose(session.outputs()[0], first)

    def test_corrupt_artifact_is_a_runner_error(self, name: str, artifacts, tmp_path: Path) -> None:
        broken = tmp_path / f"broken{artifacts[name].suffix}"
        broken.write_bytes(b"garbage" * 100)
        with pytest.raises(RunnerError):
            get_runner(name).load(broken, threads=1)

    def test_reports_versions(self, name: str) -> None:
        versions = get_runner(name).versions()
        assert versions and all(isinstance(v, str) and v for v in versions.values())
