"""The lowering registry drives the compile candidates: each lowering declares its options and variants."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from edgetune.lowering import (
    Artifact,
    Lowering,
    LoweringContext,
    LoweringOptions,
    NamedOptions,
    PlanRequest,
    Variant,
    lowering_registry,
)
from edgetune.pipeline import CompileOptions, plans_for
from edgetune.runners import runner_registry
from edgetune.targets import load_target

LOWERINGS = sorted(lowering_registry)


@pytest.mark.parametrize("name", LOWERINGS)
def test_build_sharing_keys_are_the_option_fields(name: str) -> None:
    cls = lowering_registry[name]
    assert cls.option_keys == tuple(f.name for f in fields(cls.options_type))
    options = cls().read_options(LoweringContext())  # the defaults are valid options
    assert isinstance(options, cls.options_type)
    if cls.option_keys:
        with pytest.raises(FrozenInstanceError):
            setattr(options, cls.option_keys[0], None)


@pytest.mark.parametrize("name", LOWERINGS)
def test_variants_name_registered_lowerings_and_runtimes(name: str) -> None:
    cls = lowering_registry[name]
    for variant in cls.variants:
        assert set(variant.after) <= set(lowering_registry), variant
        assert variant.runtime in runner_registry, variant
    assert cls.improves_on is None or cls.improves_on in lowering_registry


def test_option_keys_cannot_be_listed_by_hand() -> None:
    with pytest.raises(TypeError, match="option_keys"):
        class _Listed(Lowering):  # noqa: F841 - defining it is the test
            name = "listed"
            option_keys = ("calib_samples",)


@dataclass(frozen=True)
class _SparseOptions(LoweringOptions):
    sparsity: float = 0.5


class _SparseLowering(Lowering[_SparseOptions]):
    """A lowering added the way a new one is: one class plus one registry entry."""

    name = "sparse-onnx"
    input_format = "onnx"
    output_format = "onnx"
    variants = (Variant("onnxruntime", "fp32", "sparse", after=("onnx",)),)

    @classmethod
    def expand(cls, candidates: list[NamedOptions], request: PlanRequest) -> list[NamedOptions]:
        return [(name, {**options, "sparsity": 0.75}) for name, options in candidates]

    def apply(self, model: Any, target: Any, workdir: Path, context: LoweringContext) -> Artifact:
        raise NotImplementedError


def test_a_registered_lowering_contributes_its_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _SparseLowering.option_keys == ("sparsity",)
    monkeypatch.setitem(lowering_registry, _SparseLowering.name, _SparseLowering)
    plans = {p.name: p for p in plans_for(load_target("host-cpu"), ["onnxruntime"], CompileOptions(prune_ratios=(0.5,)))}
    assert plans["onnxruntime-fp32-sparse"].lowerings == ("onnx", "sparse-onnx")
    assert plans["onnxruntime-fp32-sparse"].option_dict()["sparsity"] == 0.75
    assert plans["onnxruntime-fp32-sparse-pruned50"].lowerings == ("prune", "onnx", "sparse-onnx")


def test_candidates_follow_the_registry_order() -> None:
    options = CompileOptions(train="digits", eval="digits", prune_ratios=(0.5,), calib_methods=("minmax", "entropy"),
                             tune_trials=4)
    names = [p.name for p in plans_for(load_target("host-cpu"), None, options) if not p.name.endswith("-pruned50")]
    assert names == [
        "onnxruntime-fp32", "onnxruntime-int8-static-minmax", "onnxruntime-int8-static-entropy",
        "onnxruntime-int8-dynamic", "tvm-fp32", "tvm-fp32-tuned", "openvino-fp32", "openvino-int8-nncf",
        "openvino-int8-nncf-accuracy-aware", "litert-fp32", "litert-int8", "litert-int8-qat",
    ]
    exact = {p.name for p in plans_for(load_target("host-cpu"), None, options) if p.exact}
    assert exact == {"onnxruntime-fp32", "tvm-fp32", "tvm-fp32-tuned", "openvino-fp32", "litert-fp32"}


def test_the_rpc_tracker_travels_beside_the_options() -> None:
    from edgetune.lowering import Transport

    context = LoweringContext(options={"tune_trials": 4}, transport=Transport("127.0.0.1:9190"))
    assert context.with_options({"calib_samples": 8}).transport.rpc_tracker == "127.0.0.1:9190"
    assert "rpc_tracker" not in context.options
