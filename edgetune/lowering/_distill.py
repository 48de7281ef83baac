"""Knowledge distillation: fine-tune a student (pruned, quantized, ...) towards a teacher's outputs.

Shared by lowerings that change a network and then win back accuracy by training it
(pruning now, quantization-aware training later).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgetune._lazy import require
from edgetune.data import Dataset
from edgetune.errors import ConfigError, DatasetError


def check_data_matches(data: Dataset, input_shape: Sequence[int], purpose: str) -> None:
    """Raise DatasetError unless one sample of ``data`` has the model's input shape without its batch dim."""
    sample = tuple(int(d) for d in data.x.shape[1:])
    wanted = tuple(int(d) for d in input_shape[1:])
    if sample != wanted:
        raise DatasetError(
            f"{purpose} data '{data.name}' has samples of shape {_dims(sample)} "
            f"but the model input is {_dims(tuple(input_shape))} (one sample: {_dims(wanted)})"
        )
    if len(data.x) == 0:
        raise DatasetError(f"{purpose} data '{data.name}' is empty")


def check_distill_options(epochs: int, alpha: float, temperature: float) -> None:
    """Raise ConfigError for option values distillation cannot use."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ConfigError(f"train_epochs must be a whole number >= 0, not {epochs!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"distill_alpha must lie in [0, 1] (weight of the teacher's soft targets), not {alpha!r}")
    if not float(temperature) > 0.0:
        raise ConfigError(f"distill_temperature must be > 0, not {temperature!r}")


def predict_logits(module: Any, x: np.ndarray, batch_size: int = 256) -> Any:
    """Outputs of ``module`` (already in the wanted mode) on ``x``, batched, without gradients."""
    torch = require("torch", "torch")
    with torch.no_grad():
        return torch.cat([module(batch) for batch in torch.from_numpy(np.ascontiguousarray(x)).split(batch_size)])


def accuracy(module: Any, data: Dataset) -> float:
    """Top-1 accuracy of ``module`` (put in eval mode) on a labelled Dataset."""
    if data.y is None:
        raise DatasetError(f"dataset '{data.name}' has no labels; accuracy needs labels 'y'")
    module.eval()
    predictions = predict_logits(module, data.x).argmax(1).numpy()
    return float(np.mean(predictions == data.y))


def set_mode(module: Any, train: bool) -> None:
    """module.train()/eval(), also for graphs from torch.export (PT2E QAT), which refuse those calls."""
    try:
        module.train(train)
    except NotImplementedError:
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

        (move_exported_model_to_train if train else move_exported_model_to_eval)(module)


def distill(student: Any, teacher: Any, data: Dataset, epochs: int, alpha: float = 0.7,
            temperature: float = 4.0, seed: int = 0, batch_size: int = 64, lr: float = 1e-3,
            progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Train ``student`` with Adam on alpha * KL(teacher/T || student/T) * T^2 + (1 - alpha) * CE(labels).

    The teacher is run in eval mode and never changed. Without labels (``data.y`` is None) the
    loss is the distillation term alone. The global torch RNG is left as it was.
    Returns stats: epochs, steps, final (last-epoch mean) train loss, whether labels were used.
    """
    torch = require("torch", "torch")
    functional = torch.nn.functional
    check_distill_options(epochs, alpha, temperature)
    set_mode(teacher, False)
    soft_targets = predict_logits(teacher, data.x)
    labels = None if data.y is None else torch.from_numpy(data.y.astype(np.int64))
    if labels is not None and (int(labels.min()) < 0 or int(labels.max()) >= soft_targets.shape[1]):
        raise DatasetError(
            f"dataset '{data.name}' has labels in [{int(labels.min())}, {int(labels.max())}] "
            f"but the model has {soft_targets.shape[1]} outputs"
        )
    ce_weight = 0.0 if labels is None else 1.0 - float(alpha)
    kd_weight = 1.0 if labels is None else float(alpha)
    x = torch.from_numpy(np.ascontiguousarray(data.x))
    steps, final_loss = 0, float("nan")
    with torch.random.fork_rng(devices=[]):  # seeded dropout without touching the caller's RNG
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(student.parameters(), lr=lr)
        set_mode(student, True)
        for epoch in range(epochs):
            total, seen = 0.0, 0
            for idx in torch.randperm(len(x), generator=generator).split(batch_size):
                logits = student(x[idx])
                loss = kd_weight * temperature ** 2 * functional.kl_div(
                    functional.log_softmax(logits / temperature, dim=1),
                    functional.softmax(soft_targets[idx] / temperature, dim=1),
                    reduction="batchmean",
                )
                if ce_weight > 0:
                    loss = loss + ce_weight * functional.cross_entropy(logits, labels[idx])  # type: ignore[index]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
                seen += len(idx)
                steps += 1
            final_loss = total / seen
            if progress is not None:
                progress(f"distill epoch {epoch + 1}/{epochs}: loss {final_loss:.4f}")
    set_mode(student, False)
    return {"epochs": epochs, "steps": steps, "final_train_loss": final_loss, "used_labels": labels is not None,
            "alpha": float(alpha), "temperature": float(temperature), "samples": len(x)}


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"
