"""Datasets: the built-in digits data (ships with scikit-learn) and .npz files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

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


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
MAX_IMAGES = 10000


def load_image_folder(path: Path, shape: Optional[Sequence[int]] = None) -> Dataset:
    """Images from a folder: ``class_name/*.png`` subfolders give labels, loose files give none.

    ``shape`` is (C, H, W): images are converted to 1 or 3 channels and resized to HxW;
    pixel values are scaled to [0, 1].
    """
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    files = [(f, classes.index(f.parent.name)) for c in classes for f in sorted((path / c).iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES]
    labelled = bool(files)
    if not files:
        files = [(f, -1) for f in sorted(path.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(f"image folder '{path}' has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    files = files[:MAX_IMAGES]
    channels, height, width = (tuple(shape) if shape else (3, 0, 0))
    if channels not in (1, 3):
        raise DatasetError(f"image folder '{path}': the model wants {channels} input channels; images give 1 or 3")
    arrays = []
    for file, _ in files:
        try:
            with Image.open(file) as image:
                image = image.convert("L" if channels == 1 else "RGB")  # type: ignore[assignment]
                if height and width:
                    image = image.resize((width, height))  # type: ignore[assignment]
                arrays.append(np.asarray(image, dtype=np.float32) / 255.0)
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"image '{file}' cannot be read: {exc}") from None
    if len({a.shape for a in arrays}) > 1:
        raise DatasetError(f"images in '{path}' differ in size; give the model input shape so they can be resized")
    x = np.stack(arrays)
    x = x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)
    y = np.array([label for _, label in files], dtype=np.int64) if labelled else None
    return Dataset(path.name, x, y)


def load_dataset(name_or_path: str, shape: Optional[Sequence[int]] = None) -> Dataset:
    """Load a built-in dataset by name, an .npz file (arrays ``x`` and optional ``y``) or an image folder.

    ``shape`` (C, H, W) is used to resize images from a folder.
    """
    if name_or_path == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
        return Dataset("digits", x, bunch.target.astype(np.int64))
    path = Path(name_or_path)
    if not path.exists():
        raise DatasetError(
            f"dataset '{name_or_path}' not found; give an .npz file, an image folder or a built-in name ({', '.join(BUILTIN)})"
        )
    if path.is_dir():
        return load_image_folder(path, shape)
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
    if len(x) == 0:
        raise DatasetError(f"dataset '{path}' is empty")
    return Dataset(path.stem, x, y)


def check_matches_input(data: Dataset, input_shape: Sequence[int], role: str) -> None:
    """Raise DatasetError unless each sample of ``data`` has the model input's shape without batch."""
    want = tuple(input_shape[1:])
    have = tuple(data.x.shape[1:])
    if have != want:
        raise DatasetError(
            f"{role} data '{data.name}' has samples of shape {'x'.join(map(str, have)) or 'scalar'} but the model "
            f"input is {'x'.join(map(str, input_shape))} (samples must be {'x'.join(map(str, want))})"
        )


__all__ = ["BUILTIN", "Dataset", "check_matches_input", "load_dataset", "load_image_folder"]
