"""Datasets: the built-in digits data (ships with scikit-learn) and .npz files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetune.errors import DatasetError

BUILTIN = ("digits",)


@dataclass(frozen=True)
class Dataset:
    """Inputs ``x`` (N, C, H, W float32) with integer labels ``y`` (N,) or None when unlabelled."""

    name: str
    x: np.ndarray
    y: "np.ndarray | None"

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """Shuffle with ``seed`` and split into (train, validation)."""
        order = np.random.default_rng(seed).permutation(len(self.x))
        cut = int(len(order) * (1 - val_fraction))
        parts = order[:cut], order[cut:]
        return tuple(  # type: ignore[return-value]
            Dataset(f"{self.name}[{tag}]", self.x[idx], None if self.y is None else self.y[idx])
            for tag, idx in zip(("train", "val"), parts)
        )


def load_dataset(name_or_path: str) -> Dataset:
    """Load a built-in dataset by name or an .npz file with arrays ``x`` (and optionally ``y``)."""
    if name_or_path == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
        return Dataset("digits", x, bunch.target.astype(np.int64))
    path = Path(name_or_path)
    if not path.exists():
        raise DatasetError(
            f"dataset '{name_or_path}' not found; give an .npz file or a built-in name ({', '.join(BUILTIN)})"
        )
    if path.suffix != ".npz":
        raise DatasetError(f"dataset '{path}' is not an .npz file; save arrays x (and y) with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive:
                raise DatasetError(f"dataset '{path}' has no array 'x' (found: {', '.join(archive.files)})")
            x = archive["x"].astype(np.float32)
            y = archive["y"].astype(np.int64) if "y" in archive else None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset '{path}' cannot be read as .npz: {exc}") from None
    if y is not None and len(y) != len(x):
        raise DatasetError(f"dataset '{path}': x has {len(x)} rows but y has {len(y)}")
    return Dataset(path.stem, x, y)


__all__ = ["BUILTIN", "Dataset", "load_dataset"]
