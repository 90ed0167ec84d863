"""Helpers shared by the explainers: input and target checks, seeding, resizing, baselines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explain.compute.loading import resolve_cam_layer

DEFAULT_MAX_BATCH = 32
"""Most model evaluations per forward pass in the sampling explainers (speed only)."""


@dataclass(frozen=True)
class RunContext:
    """Everything an explainer function needs besides the model, inputs and targets."""

    params: dict[str, Any]
    seed: int
    cam_layer: str | None = None
    baseline_inputs: torch.Tensor | None = None
    max_batch: int = DEFAULT_MAX_BATCH


ExplainerFunction = Callable[[nn.Module, torch.Tensor, torch.Tensor, RunContext], torch.Tensor]


def check_inputs(inputs: Any) -> None:
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dim() != 4 or inputs.shape[0] < 1:
        raise ValueError(
            f"inputs must have shape (N, C, H, W) with N >= 1, got {tuple(inputs.shape)}"
        )
    if not inputs.dtype.is_floating_point:
        raise ValueError(f"inputs must be a floating-point tensor, got {inputs.dtype}")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs hold NaN or infinite values")


def model_device(model: nn.Module) -> torch.device | None:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


def check_same_device(model: nn.Module, inputs: torch.Tensor) -> None:
    device = model_device(model)
    if device is not None and device != inputs.device:
        raise ValueError(f"the model is on {device} but the inputs are on {inputs.device}")


def class_count(model: nn.Module, inputs: torch.Tensor) -> int:
    """One forward of the first input: checks the output is (1, classes) and counts classes."""
    with torch.no_grad():
        output = model(inputs[:1])
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != 1:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"the model returned {shape} for one input; expected (1, classes)")
    return int(output.shape[1])


def prepare_targets(target: Any, n: int, classes: int, device: torch.device) -> torch.Tensor:
    """A class index or an (N,) tensor of indices -> (N,) long tensor on ``device``."""
    if isinstance(target, bool):
        raise ValueError("target must be a class index or an (N,) tensor, not a bool")
    if isinstance(target, int):
        targets = torch.full((n,), target, dtype=torch.long)
    elif isinstance(target, torch.Tensor):
        if target.dtype.is_floating_point or target.dtype == torch.bool:
            raise ValueError(f"target tensor must hold integers, got {target.dtype}")
        if target.dim() == 0:
            targets = torch.full((n,), int(target), dtype=torch.long)
        elif target.shape == (n,):
            targets = target.detach().to("cpu", torch.long)
        else:
            raise ValueError(
                f"target tensor must have shape ({n},) for {n} inputs, got {tuple(target.shape)}"
            )
    else:
        raise ValueError(f"target must be an int or a tensor, got {type(target).__name__}")
    bad = [int(t) for t in targets if not 0 <= int(t) < classes]
    if bad:
        raise ValueError(
            f"target class {bad[0]} is out of range for a model with {classes} classes"
        )
    return targets.to(device)


@contextmanager
def evaluation(model: nn.Module) -> Iterator[None]:
    """Eval mode inside (BatchNorm uses running stats), every module's own flag restored after."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's and numpy's global generators inside (captum samples from both), restore
    them after."""
    devices = [device.index if device.index is not None else 0] if device.type == "cuda" else []
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        np.random.set_state(numpy_state)


def generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) or (N, 1, h, w) -> (N, H, W), bilinear with half-pixel centres."""
    if maps.dim() == 3:
        maps = maps.unsqueeze(1)
    if maps.dim() != 4 or maps.shape[1] != 1:
        raise ValueError(f"expected maps of shape (N, 1, h, w), got {tuple(maps.shape)}")
    if tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False)
    return maps[:, 0]


def input_range(x: torch.Tensor) -> torch.Tensor:
    """Per-sample max - min over all channels and pixels, (N,)."""
    flat = x.detach().flatten(1)
    return flat.max(dim=1).values - flat.min(dim=1).values


BASELINE_CHOICES = ("zeros", "min", "given")
"""zeros: all-zero model input; min: each image's own minimum everywhere; given: baseline_inputs."""


def check_baseline_choice(
    name: str, choice: str | None, baseline_inputs: torch.Tensor | None
) -> None:
    if choice is None:
        return
    if choice == "given" and baseline_inputs is None:
        raise ValueError(f"{name}: baseline 'given' needs baseline_inputs")
    if choice != "given" and baseline_inputs is not None:
        raise ValueError(
            f"{name}: baseline_inputs were passed but the baseline parameter is {choice!r}; "
            "set it to 'given' to use them"
        )


def named_baseline(choice: str, x: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
    """The baseline images (same shape as ``x``) named by a baseline parameter."""
    if choice == "zeros":
        return torch.zeros_like(x)
    if choice == "min":
        low = x.detach().flatten(1).min(dim=1).values
        return low.view(-1, 1, 1, 1).expand_as(x).clone()
    if choice == "given":
        if given is None:
            raise ValueError("baseline 'given' needs baseline_inputs")
        return broadcast_baseline(given, x)
    raise ValueError(f"unknown baseline {choice!r}; expected one of {', '.join(BASELINE_CHOICES)}")


def broadcast_baseline(given: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """baseline_inputs of shape (C, H, W), (1, C, H, W) or (N, C, H, W), as (N, C, H, W)."""
    if not isinstance(given, torch.Tensor):
        raise ValueError(f"baseline_inputs must be a tensor, got {type(given).__name__}")
    if given.dim() == 3:
        given = given.unsqueeze(0)
    if given.dim() != 4 or given.shape[1:] != x.shape[1:] or given.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"baseline_inputs of shape {tuple(given.shape)} do not match inputs {tuple(x.shape)}"
        )
    if not torch.isfinite(given).all():
        raise ValueError("baseline_inputs hold NaN or infinite values")
    return given.detach().to(device=x.device, dtype=x.dtype).expand_as(x).clone()


def per_sample(
    function: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    x: torch.Tensor,
    targets: torch.Tensor,
    baselines: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run ``function(i, x_i, target_i, baseline_i)`` per sample (each (1, ...)) and stack."""
    results = []
    for i in range(x.shape[0]):
        base = baselines[i : i + 1] if baselines is not None else None
        results.append(function(i, x[i : i + 1], targets[i : i + 1], base))
    return torch.cat(results, dim=0)


def resolve_layer(model: nn.Module, cam_layer: str | None, explainer: str) -> tuple[str, nn.Module]:
    """The CAM layer named by ``cam_layer``, else by the model's ``cam_layer_name``."""
    name = resolve_cam_layer(model, cam_layer)
    if name is None:
        raise ValueError(
            f"{explainer} needs a CAM layer: pass cam_layer or give the model a cam_layer_name"
        )
    module = dict(model.named_modules()).get(name)
    if module is None:
        raise ValueError(f"{explainer}: layer {name!r} does not exist in the model")
    return name, module


def channel_sum(attribution: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W)."""
    return attribution.sum(dim=1)
