"""Systolic-array NPU or FPGA overlay: the ONNX graph's conv/FC layers simulated with SCALE-Sim."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgetune._availability import Availability
from edgetune.lowering._base import Artifact, Lowering, LoweringContext, Variant
from edgetune.models import LoadedModel, sha256_of
from edgetune.simulate._cache import cached_simulation, simulation_key
from edgetune.simulate._estimate import SimulatedEstimate, write_estimate
from edgetune.simulate._scalesim import PARSER_VERSION, require_scalesim, scalesim_missing, simulate_layers
from edgetune.simulate._systolic import array_for_target, check_bandwidth, summarize
from edgetune.simulate._topology import systolic_layers
from edgetune.targets import Target


class ScaleSimLowering(Lowering):
    """ONNX (float or QDQ int8) -> SCALE-Sim topology of conv / depthwise / FC layers -> cycles, traffic, energy.

    The artifact is the ONNX model itself (what the array executes; ONNX Runtime produces its
    outputs) with the simulation beside it. An FPGA overlay that does not fit its part, or needs
    more DRAM bandwidth than the board has, is an InfeasibleError naming the numbers.
    """

    name = "scalesim"
    input_format = "onnx"
    output_format = "scalesim-onnx"
    modules = ("onnx", "onnxruntime")
    extra = "all"
    variants = (Variant("scalesim", "int8", after=("onnx", "ort-int8-static")),)

    @classmethod
    def availability(cls) -> Availability:
        missing = scalesim_missing()
        return Availability(False, missing) if missing else super().availability()

    def apply(self, model: LoadedModel, target: Target, workdir: Path, context: LoweringContext) -> Artifact:
        start = time.perf_counter()
        assert model.onnx_path is not None, "accepts() checked the ONNX form"
        version = require_scalesim()
        array = array_for_target(target)  # an overlay that does not fit fails here, before simulating
        network = systolic_layers(model.onnx_path)
        shapes = network.unique_shapes()
        key = simulation_key(sha256_of(model.onnx_path), target, "scalesim", version,
                             {"array": asdict(array.config), "parser": PARSER_VERSION})
        context.progress(f"SCALE-Sim: {len(shapes)} distinct layer(s) of {len(network.layers)} on a "
                         f"{array.config.rows}x{array.config.cols} array")

        def simulate(folder: Path) -> dict[str, Any]:
            rows, reused = simulate_layers(shapes, array.config, folder, version)
            return {"layers": rows, "layers_from_cache": reused}

        result, hit = cached_simulation("scalesim", key, workdir / "scalesim-runs", simulate)
        details = summarize(network, result["layers"], array)
        details["simulation_wall_s"] = result.get("simulation_wall_s")
        details["cache"] = "hit" if hit else "miss"
        details["layers_from_cache"] = len(shapes) if hit else result.get("layers_from_cache", 0)
        if array.config.dram_words_per_cycle is None:  # SCALE-Sim assumed whatever bandwidth the layers asked for
            check_bandwidth(details, target)
        artifact = workdir / f"{model.name}.scalesim.onnx"
        shutil.copyfile(model.onnx_path, artifact)
        estimate = SimulatedEstimate("scalesim", version, target.name, details.pop("latency_ms"), artifact.name,
                                     "onnx", details)
        write_estimate(artifact, estimate)
        return Artifact(artifact, self.output_format, time.perf_counter() - start, estimate.to_details())
