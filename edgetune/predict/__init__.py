"""Latency prediction: kernel detection, profiling, per-kernel regressors, network-level prediction.

``edgetune profile`` measures kernels on a target (``profile``), or corrects a profile taken on
another machine for this one (``adapt_profile``); ``edgetune predict`` and the search ask a
``Predictor`` (``predictor_for``) how fast a network is, from an ONNX file or a ``Graph`` built in
code, optionally rescaled for today's machine speed (``calibrate``).
"""

from edgetune.predict._adapt import AdaptResult, MachineCorrection, adapt_profile
from edgetune.predict._base import KernelEstimate, LatencyEstimate, ModelLike, Predictor
from edgetune.predict._calibrate import Calibration, calibrate
from edgetune.predict._fusion import CANDIDATE_PAIRS, FusionRules, Kernel, detect_fusion, split_kernels
from edgetune.predict._graph import OP_KINDS, Graph, GraphBuilder, Op, graph_from_onnx, to_onnx
from edgetune.predict._measure import GraphMeasurer, GraphTiming, reference_graph
from edgetune.predict._predictors import (
    FlopsPredictor,
    KernelPredictor,
    MeasuringPredictor,
    predictor_for,
    predictor_registry,
)
from edgetune.predict._profile import ProfileError, ProfileResult, profile, profile_folder
from edgetune.predict._references import reference_networks


def predict(model: ModelLike, target: str = "host-cpu", runtime: str = "onnxruntime", profiles_dir=None,  # type: ignore[no-untyped-def]
            kind: str = "kernel") -> LatencyEstimate:
    """Predict ``model``'s latency on ``target`` from its trained profile (raises ProfileError without one)."""
    return predictor_for(target, runtime, profiles_dir, kind=kind, fallback=False).predict(model)


__all__ = [
    "AdaptResult",
    "CANDIDATE_PAIRS",
    "Calibration",
    "FlopsPredictor",
    "FusionRules",
    "Graph",
    "GraphBuilder",
    "GraphMeasurer",
    "GraphTiming",
    "Kernel",
    "KernelEstimate",
    "KernelPredictor",
    "LatencyEstimate",
    "MachineCorrection",
    "MeasuringPredictor",
    "OP_KINDS",
    "Op",
    "Predictor",
    "ProfileError",
    "ProfileResult",
    "adapt_profile",
    "calibrate",
    "detect_fusion",
    "graph_from_onnx",
    "predict",
    "predictor_for",
    "predictor_registry",
    "profile",
    "profile_folder",
    "reference_graph",
    "reference_networks",
    "split_kernels",
    "to_onnx",
]
