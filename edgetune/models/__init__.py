"""Models: load ONNX / TFLite / PyTorch inputs, summarize graphs, and the built-in zoo."""

from edgetune.models._load import load_model
from edgetune.models._spec import LoadedModel, TensorSpec, parse_shape, parse_shape_option, sha256_of
from edgetune.models._summary import ModelSummary, summarize
from edgetune.models.zoo import ZOO, export_zoo_model, zoo_model

__all__ = [
    "LoadedModel",
    "ModelSummary",
    "TensorSpec",
    "ZOO",
    "export_zoo_model",
    "load_model",
    "parse_shape",
    "parse_shape_option",
    "sha256_of",
    "summarize",
    "zoo_model",
]
