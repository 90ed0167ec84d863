"""Check that a model can be served and explained: one probe forward, then the catalog's
requirements. Apart from :mod:`explain.compute.loading` (which only loads) so that the catalog,
which needs the loader's input spec, and this check, which needs the catalog, form no cycle."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from explain.compute.catalog import probe_input, support_from_trace, trace_forward
from explain.compute.loading import InputSpec, ModelRejected, is_torchscript, resolve_cam_layer


@dataclass
class ModelCheck:
    """Outcome of :func:`check_model`; ``explainers`` maps name -> {"supported", "reason"}."""

    output_shape: tuple[int, ...]
    cam_layer: str | None
    cam_layer_shape: tuple[int, int] | None
    seconds: float
    explainers: dict[str, dict] = field(default_factory=dict)

    @property
    def supported_explainers(self) -> list[str]:
        return [name for name, info in self.explainers.items() if info["supported"]]

    def to_dict(self) -> dict:
        return {
            "output_shape": list(self.output_shape),
            "cam_layer": self.cam_layer,
            "cam_layer_shape": list(self.cam_layer_shape) if self.cam_layer_shape else None,
            "seconds": self.seconds,
            "explainers": self.explainers,
        }


def class_label_problems(class_labels: Any) -> list[str]:
    if not isinstance(class_labels, list | tuple) or not class_labels:
        return ["class labels must be a non-empty list of names"]
    problems = []
    seen: dict[str, int] = {}
    for i, label in enumerate(class_labels, start=1):
        if not isinstance(label, str) or not label.strip():
            problems.append(f"class label {i} is blank or not a string: {label!r}")
            continue
        key = label.strip().casefold()
        if key in seen:
            problems.append(f"class label {i} ({label!r}) repeats class label {seen[key]}")
        else:
            seen[key] = i
    return problems


def check_model(
    model: nn.Module, *, spec: InputSpec, class_labels: list[str], cam_layer: str | None
) -> ModelCheck:
    """Run ``model`` once on a probe input and verify it can be served and explained.

    When ``cam_layer`` is None the model's ``cam_layer_name`` attribute (if any) is used; the
    layer actually used is recorded in the result. The model is put in eval mode.
    """
    reasons = class_label_problems(class_labels)
    if reasons:
        raise ModelRejected(reasons)
    scripted = is_torchscript(model)
    cam_layer = resolve_cam_layer(model, cam_layer)
    if cam_layer is not None and scripted:
        raise ModelRejected(
            "a CAM layer can only be named for eager models (TorchScript accepts no hooks)"
        )

    model.eval()
    x = probe_input(spec, model)
    try:
        with torch.no_grad():
            start = time.perf_counter()
            output = model(x)
            seconds = time.perf_counter() - start
    except Exception as exc:
        raise ModelRejected(f"forward pass failed: {type(exc).__name__}: {exc}") from exc

    n = len(class_labels)
    if not isinstance(output, torch.Tensor):
        raise ModelRejected(
            f"model output is a {type(output).__name__}, not a tensor of shape (1, {n})"
        )
    if tuple(output.shape) != (1, n):
        raise ModelRejected(
            f"model output has shape {tuple(output.shape)} but {n} class labels were given"
        )
    if not torch.isfinite(output).all():
        raise ModelRejected("model output holds NaN or infinite values")

    trace = trace_forward(model, spec=spec, cam_layer=cam_layer)
    if cam_layer is not None and trace.cam_problem is not None:
        raise ModelRejected(f"CAM layer: {trace.cam_problem}")
    explainers = support_from_trace(trace)
    return ModelCheck(
        output_shape=tuple(output.shape),
        cam_layer=cam_layer,
        cam_layer_shape=trace.cam_shape,
        seconds=seconds,
        explainers=explainers,
    )
