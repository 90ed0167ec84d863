"""Training, evaluation and export of the demo model (CPU, deterministic for a seed).

Determinism: with the same seed, thread count, torch build and CPU the trained weights are
bit-identical (seeded init, data order and augmentation; deterministic algorithms on).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from demo.labels import read_labels
from explain.compute.loading import file_sha256
from explain.compute.models import DEMO_CLASS_LABELS, AttentionResNet
from library.imaging import display
from library.imaging.dicom_read import read_dicom
from library.imaging.errors import ImageRejected

DEFAULT_EPOCHS = 40
MAX_TRAINING_PIXELS = 64 * 1024 * 1024
"""Pixels a training image may decode to (the demo's are far smaller)."""


class TrainingDataError(ValueError):
    """Training inputs are missing, malformed or inconsistent."""


class TrainingArrays(NamedTuple):
    train_x: np.ndarray  # float32 (N, C, H, W), normalised
    train_y: np.ndarray  # int64 (N,), index into DEMO_CLASS_LABELS
    test_x: np.ndarray
    test_y: np.ndarray


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    epochs: int
    loss: float  # mean training cross-entropy
    train_accuracy: float
    test_auc: float
    learning_rate: float  # at the end of the epoch
    seconds: float  # wall time since training started


@dataclass
class TrainResult:
    model: AttentionResNet  # eval mode
    test_auc: float
    train_seconds: float
    history: list[EpochStats] = field(default_factory=list)
    test_scores: np.ndarray | None = None  # P(nodule) per test case
    settings: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def dicom_to_unit_image(path: Path) -> np.ndarray:
    """DICOM -> modality values -> first VOI window -> MONOCHROME1 inversion -> [0, 1] float32.

    The serving pipeline itself (library.imaging: read_dicom, display01), so that a model is
    trained on exactly the values it is later served (no train/serve skew).
    """
    try:
        data = Path(path).read_bytes()
        image = read_dicom(data, max_bytes=len(data) + 1, max_pixels=MAX_TRAINING_PIXELS)
    except (OSError, ImageRejected) as exc:
        raise TrainingDataError(f"cannot read DICOM pixels from {path}: {exc}") from exc
    if image.is_color or image.number_of_frames != 1:
        raise TrainingDataError(f"{path} is not a single-frame greyscale image")
    return display.display01(image)


def unit_image_to_input(unit: np.ndarray, input_spec: dict) -> np.ndarray:
    """[0, 1] (rows, cols) image -> resized, normalised float32 (C, H, W), as served."""
    try:
        return display.spec_model_input(unit, input_spec)
    except ValueError as exc:
        raise TrainingDataError(f"input_spec {input_spec} is not usable: {exc}") from exc


def load_training_arrays(
    dataset_dir: Path,
    *,
    input_spec: dict,
    to_input: Callable[[Path], np.ndarray] | None = None,
) -> TrainingArrays:
    """Model inputs and labels for the train and test splits of a demo dataset.

    Cases keep labels.csv order within each split. `to_input(path)` may replace the
    serving pipeline; it must return a float32 (C, H, W) array matching input_spec.
    """
    dataset_dir = Path(dataset_dir)
    _check_input_spec(input_spec)
    expected = (int(input_spec["channels"]), *(int(v) for v in input_spec["size"]))
    if to_input is None:

        def to_input(path: Path) -> np.ndarray:
            return unit_image_to_input(dicom_to_unit_image(path), input_spec)

    split_x: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    split_y: dict[str, list[int]] = {"train": [], "test": []}
    for case in read_labels(dataset_dir):
        path = case.image_path(dataset_dir)
        if not path.is_file():
            raise TrainingDataError(f"labels.csv lists {case.case} but {path} is missing")
        array = np.asarray(to_input(path), dtype=np.float32)
        if array.shape != expected:
            raise TrainingDataError(
                f"input for {case.case} has shape {array.shape}, expected {expected}"
            )
        split_x[case.split].append(array)
        split_y[case.split].append(DEMO_CLASS_LABELS.index(case.label))
    for split in ("train", "test"):
        if len(set(split_y[split])) < 2:
            raise TrainingDataError(f"the {split} split needs cases of both labels")
    return TrainingArrays(
        np.stack(split_x["train"]),
        np.asarray(split_y["train"], dtype=np.int64),
        np.stack(split_x["test"]),
        np.asarray(split_y["test"], dtype=np.int64),
    )


def _check_input_spec(input_spec: dict) -> None:
    try:
        size = [int(v) for v in input_spec["size"]]
        channels = int(input_spec["channels"])
        means, stds = list(input_spec["mean"]), list(input_spec["std"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainingDataError(f"input_spec needs size, channels, mean and std: {exc}") from exc
    if len(size) != 2 or min(size) < 8 or channels < 1:
        raise TrainingDataError(f"input_spec size {size} / channels {channels} is not usable")
    if len(means) not in (1, channels) or len(stds) not in (1, channels):
        raise TrainingDataError("input_spec mean/std need one value or one per channel")
    if any(float(s) <= 0 for s in stds):
        raise TrainingDataError("input_spec std values must be positive")


# --------------------------------------------------------------------------- metrics


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic; tied scores count 1/2."""
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but scores has {s.size}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite numbers")
    positive = y.astype(bool) if y.dtype == bool else y == 1
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true must hold only 0/1 (or booleans)")
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs at least one positive and one negative case")
    # Average ranks (1-based) of tied values.
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# --------------------------------------------------------------------------- training


@contextmanager
def deterministic_torch(seed: int, num_threads: int | None) -> Iterator[None]:
    """Seed torch, fix the thread count and enable deterministic algorithms; restore after."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
            torch.set_num_threads(previous_threads)


def _augment(batch: torch.Tensor, generator: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random horizontal flips, integer shifts (edge padding) and intensity jitter."""
    n = batch.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
    if max_shift > 0:
        height, width = batch.shape[-2:]
        padded = nn.functional.pad(batch, [max_shift] * 4, mode="replicate")
        offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
        batch = torch.stack(
            [
                padded[i, :, int(dy) : int(dy) + height, int(dx) : int(dx) + width]
                for i, (dy, dx) in enumerate(offsets)
            ]
        )
    gain = 1.0 + (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.3
    bias = (torch.rand(n, 1, 1, 1, generator=generator) - 0.5) * 0.3
    noise = torch.randn(batch.shape, generator=generator) * 0.03
    return batch * gain + bias + noise


@torch.no_grad()
def predict_scores(
    model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    """P(nodule) for each input, in eval mode."""
    model.eval()
    tensor = torch.as_tensor(x, dtype=torch.float32)
    scores = [
        torch.softmax(model(tensor[i : i + batch_size]), dim=1)[:, 1]
        for i in range(0, tensor.shape[0], batch_size)
    ]
    return torch.cat(scores).numpy().astype(np.float64)


def _check_arrays(name: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 4:
        raise TrainingDataError(f"{name}_x must be (N, C, H, W), got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise TrainingDataError(f"{name}_y must be (N,) with N={x.shape[0]}, got {y.shape}")
    if not np.all(np.isin(y, (0, 1))) or len(np.unique(y)) < 2:
        raise TrainingDataError(f"{name}_y must hold both classes 0 and 1 and nothing else")


def _cosine_schedule(
    optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """One warm-up epoch (at most a tenth of the steps), then cosine decay per step."""
    total_steps = epochs * steps_per_epoch
    warmup = min(steps_per_epoch, max(1, total_steps // 10))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_ = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress_))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


@dataclass
class _Trainer:
    """One training run's model, optimiser, schedule and seeded generator."""

    model: AttentionResNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    batch_size: int
    augment: bool
    max_shift: int
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)

    def epoch(self, x_all: torch.Tensor, y_all: torch.Tensor) -> tuple[float, int]:
        """One pass over the data in a seeded order; (summed loss, correct predictions)."""
        self.model.train()
        order = torch.randperm(len(x_all), generator=self.generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            if index.numel() < 2:  # BatchNorm needs more than one sample
                continue
            inputs = x_all[index]
            if self.augment:
                inputs = _augment(inputs, self.generator, self.max_shift)
            targets = y_all[index]
            logits = self.model(inputs)
            loss = self.loss_fn(logits, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += float(loss.detach()) * len(index)
            correct += int((logits.argmax(1) == targets).sum())
        return loss_sum, correct


def _check_training_arrays(train_x, train_y, test_x, test_y, epochs: int, batch_size: int):
    train_x, test_x = np.asarray(train_x, np.float32), np.asarray(test_x, np.float32)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    _check_arrays("train", train_x, train_y)
    _check_arrays("test", test_x, test_y)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise TrainingDataError("train_x and test_x have different input shapes")
    if epochs < 1 or batch_size < 1:
        raise TrainingDataError("epochs and batch_size must be at least 1")
    return train_x, train_y, test_x, test_y


def train_demo_model(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    seed: int = 7,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 8,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    width: int = 16,
    head_pool: int = 4,
    max_shift: int = 8,
    augment: bool = True,
    num_threads: int | None = 2,
    progress: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train an AttentionResNet on CPU and report its AUC on the held-out split.

    AdamW with one warm-up epoch then cosine decay per step; augmentation and data order
    come from a generator seeded with `seed`. The returned model is the last epoch's
    (no selection on the test split). `progress` receives an EpochStats after each epoch.
    """
    train_x, train_y, test_x, test_y = _check_training_arrays(
        train_x, train_y, test_x, test_y, epochs, batch_size
    )
    settings = {
        "seed": seed, "epochs": epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "weight_decay": weight_decay, "width": width,
        "head_pool": head_pool,
        "max_shift": max_shift, "augment": augment, "num_threads": num_threads,
    }  # fmt: skip
    started = time.perf_counter()
    history: list[EpochStats] = []
    with deterministic_torch(seed, num_threads):
        model = AttentionResNet(
            in_channels=train_x.shape[1], num_classes=2, width=width, head_pool=head_pool
        )
        generator = torch.Generator().manual_seed(seed)
        x_all = torch.from_numpy(train_x)
        y_all = torch.from_numpy(train_y.astype(np.int64))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=learning_rate, weight_decay=weight_decay
        )
        scheduler = _cosine_schedule(
            optimizer, steps_per_epoch=math.ceil(len(x_all) / batch_size), epochs=epochs
        )
        trainer = _Trainer(model, optimizer, scheduler, generator, batch_size, augment, max_shift)
        for epoch in range(1, epochs + 1):
            loss_sum, correct = trainer.epoch(x_all, y_all)
            stats = EpochStats(
                epoch=epoch,
                epochs=epochs,
                loss=loss_sum / len(x_all),
                train_accuracy=correct / len(x_all),
                test_auc=roc_auc(test_y, predict_scores(model, test_x)),
                learning_rate=float(scheduler.get_last_lr()[0]),
                seconds=time.perf_counter() - started,
            )
            history.append(stats)
            if progress is not None:
                progress(stats)
        model.eval()
        scores = predict_scores(model, test_x)
    return TrainResult(
        model=model,
        test_auc=roc_auc(test_y, scores),
        train_seconds=time.perf_counter() - started,
        history=history,
        test_scores=scores,
        settings=settings,
    )


# --------------------------------------------------------------------------- files


def save_weights(model: nn.Module, path: Path) -> str:
    """Write the state_dict as safetensors; return the file's sha256 hex digest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return file_sha256(path)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load a safetensors state_dict (strict) into `model`; returns it in eval mode."""
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()


def export_torchscript(model: nn.Module, path: Path, *, example: torch.Tensor) -> str:
    """Trace an eval-mode copy of `model` on `example`, save it; return the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frozen = copy.deepcopy(model).eval()
    with warnings.catch_warnings(), torch.no_grad():
        # torch 2.13 marks TorchScript deprecated; it is still what the registry stores.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        traced = torch.jit.trace(frozen, example)
        traced.save(str(path))
    return file_sha256(path)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """Load a file written by export_torchscript (CPU)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        return torch.jit.load(str(path), map_location="cpu")
