"""Data a compile uses: calibration inputs, training data, and what candidates are judged on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from edgetune.data import Dataset, check_matches_input, load_dataset
from edgetune.errors import DatasetError
from edgetune.lowering import CalibrationData
from edgetune.models import LoadedModel
from edgetune.pipeline._accuracy import QualityData
from edgetune.pipeline._options import CompileOptions

RANDOM_CALIBRATION_SAMPLES = 64
AGREEMENT_SAMPLES = 64


@dataclass
class CompileData:
    calibration: Optional[CalibrationData]
    train: Optional[Dataset]
    eval: Optional[Dataset]
    quality: Optional[QualityData]
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "calibration": None if self.calibration is None else {
                "source": self.calibration.source, "samples": int(len(self.calibration.x)),
                "random": self.calibration.is_random,
            },
            "train": None if self.train is None else {"source": self.train.name, "samples": int(len(self.train.x))},
            "eval": None if self.eval is None else {
                "source": self.eval.name, "samples": int(len(self.eval.x)), "labelled": self.eval.y is not None,
            },
            "judged_on": None if self.quality is None else {
                "source": self.quality.source, "samples": int(len(self.quality.x)),
                "metric": "top1_accuracy" if self.quality.labelled else "top1_agreement_with_fp32",
                "random_inputs": self.quality.is_random,
            },
        }


def _load(spec: str, model: LoadedModel, role: str) -> Dataset:
    data = load_dataset(spec, shape=model.inputs[0].shape[1:])
    check_matches_input(data, model.inputs[0].shape, role)
    return data


def prepare_data(model: LoadedModel, options: CompileOptions, needs_calibration: bool) -> CompileData:
    """Load --calib/--train/--eval, check their shapes against the model, fall back to random calibration."""
    if len(model.inputs) != 1 and (options.calib or options.eval or options.train):
        raise DatasetError("calibration/eval/train data is supported for single-input models only")
    warnings: list[str] = []
    train = _load(options.train, model, "training") if options.train else None
    if train is not None and train.y is None:
        raise DatasetError(f"training data '{options.train}' has no labels (array 'y' or class subfolders)")
    evaluation = _load(options.eval, model, "eval") if options.eval else None
    calibration = None
    if options.calib:
        calib = _load(options.calib, model, "calibration")
        calibration = CalibrationData(calib.x, calib.name)
    elif train is not None:
        calibration = CalibrationData(train.x, f"{train.name} (training data)")
    elif needs_calibration:
        rng = np.random.default_rng(options.seed)
        shape = (RANDOM_CALIBRATION_SAMPLES, *model.inputs[0].shape[1:])
        calibration = CalibrationData(rng.standard_normal(shape).astype(np.float32), "random normal", is_random=True)
        warnings.append(
            "no calibration data given (--calib): int8 candidates were calibrated on random inputs, "
            "so their accuracy is unreliable; pass an .npz, an image folder or a built-in dataset"
        )
    batch = model.inputs[0].shape[0] if model.inputs and len(model.inputs[0].shape) >= 2 else 1
    if batch > 1:  # quality is judged one sample at a time, which a fixed-batch model cannot take
        if evaluation is not None:
            raise DatasetError(f"--eval judges one sample at a time and this model takes a batch of {batch}; "
                               "judge accuracy at batch 1")
        warnings.append(f"batch {batch}: candidates were checked against the fp32 reference on random inputs "
                        "only (accuracy and top-1 agreement are judged at batch 1)")
        return CompileData(calibration, train, evaluation, None, warnings)
    if evaluation is not None:
        rows = evaluation.x[: options.eval_samples]
        labels = None if evaluation.y is None else evaluation.y[: options.eval_samples]
        quality = QualityData(x=rows, y=labels, source=evaluation.name)
    elif calibration is not None:
        # prefer rows the quantizers did not calibrate on (they use the first calib_samples rows)
        start = min(options.calib_samples, max(len(calibration.x) - AGREEMENT_SAMPLES, 0))
        quality = QualityData(x=calibration.x[start : start + AGREEMENT_SAMPLES], y=None,
                              source=calibration.source, is_random=calibration.is_random)
    else:
        rng = np.random.default_rng(options.seed + 1)
        x = rng.standard_normal((16, *model.inputs[0].shape[1:])).astype(np.float32)
        quality = QualityData(x=x, y=None, source="random normal", is_random=True)
    if quality.is_random and quality.y is None:
        warnings.append("no eval data given (--eval): reduced-precision candidates were judged by top-1 agreement "
                        "with fp32 on random inputs")
    return CompileData(calibration, train, evaluation, quality, warnings)
