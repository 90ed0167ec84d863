"""Perturbation explainers (captum): Occlusion, LIME and Kernel SHAP.

* Occlusion (Zeiler & Fergus 2014): a window (all channels) slides over the image and is
  replaced by the baseline; a pixel gets the mean drop of the class score over the windows
  that cover it. Window and stride are given for a 128-pixel side and scaled to the input.
* LIME (Ribeiro et al. 2016) and Kernel SHAP (Lundberg & Lee 2017) switch SLIC superpixels
  (scikit-image) on and off, replacing "off" superpixels by the baseline, and fit a weighted
  linear model to the class scores; a pixel gets the coefficient of its superpixel.
  LIME: weighted ridge (alpha 1, intercept), weights sqrt(exp(-d^2 / width^2)) with d the
  cosine distance of the on/off vector to all-on (the defaults of the ``lime`` package).
  Kernel SHAP: unregularised weighted least squares with captum's Shapley-kernel sampling.
  The linear models are solved in closed form here (captum's defaults need scikit-learn).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from captum._utils.models.model import Model
from captum.attr import KernelShap, Lime, Occlusion
from skimage.segmentation import slic
from torch import nn
from torch.utils.data import DataLoader

from explain.compute.explainers.common import (
    RunContext,
    channel_sum,
    check_baseline_choice,
    named_baseline,
    per_sample,
    seeded,
)

REFERENCE_SIDE = 128
"""Occlusion window and stride are given in pixels of a side of this length."""

LIME_RIDGE_ALPHA = 1.0


def scaled_window(value: int, side: int) -> int:
    return max(1, min(side, round(value * side / REFERENCE_SIDE)))


def occlusion(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    choice = str(ctx.params["baseline"])
    check_baseline_choice("occlusion", choice, ctx.baseline_inputs)
    baselines = named_baseline(choice, x, ctx.baseline_inputs)
    channels, height, width = (int(s) for s in x.shape[1:])
    window = (
        channels,
        scaled_window(int(ctx.params["window"]), height),
        scaled_window(int(ctx.params["window"]), width),
    )
    strides = (
        channels,
        scaled_window(int(ctx.params["stride"]), height),
        scaled_window(int(ctx.params["stride"]), width),
    )
    attribution = Occlusion(model).attribute(
        x,
        sliding_window_shapes=window,
        strides=strides,
        baselines=baselines,
        target=targets,
        perturbations_per_eval=max(1, ctx.max_batch // x.shape[0]),
    )
    return channel_sum(attribution.detach())


def superpixels(image: torch.Tensor, n_segments: int, compactness: float) -> np.ndarray:
    """Superpixel labels 0..M-1 (H, W) for one image (C, H, W): SLIC in its zero-parameter
    form (SLICO), which adapts the colour scale per superpixel and so gives about
    ``n_segments`` superpixels on noisy and on smooth images alike.

    scikit-image rescales intensities to [0, 1] first (no CIELAB conversion here), so
    ``compactness`` does not depend on the model's input normalisation. An image that SLIC
    leaves in one piece (e.g. constant) falls back to a regular grid of about n_segments.
    """
    array = image.detach().to("cpu", torch.float64).numpy()
    channels_last = np.moveaxis(array, 0, -1)
    labels = slic(
        channels_last,
        n_segments=n_segments,
        compactness=compactness,
        channel_axis=-1,
        convert2lab=False,
        start_label=0,
        enforce_connectivity=True,
        slic_zero=True,
    )
    if len(np.unique(labels)) < 2:
        labels = grid_segments(labels.shape, n_segments)
    _, contiguous = np.unique(labels, return_inverse=True)
    return contiguous.reshape(labels.shape).astype(np.int64)


def grid_segments(shape: tuple[int, ...], n_segments: int) -> np.ndarray:
    """Regular grid labels with about ``n_segments`` cells."""
    height, width = shape
    cells = max(1, math.ceil(math.sqrt(n_segments)))
    rows = np.arange(height) * min(cells, height) // height
    columns = np.arange(width) * min(cells, width) // width
    return rows[:, None] * cells + columns[None, :]


class WeightedLinearModel(Model):
    """Weighted least squares with intercept (ridge when ``alpha`` > 0), solved in float64."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.coefficients: torch.Tensor | None = None
        self.intercept = 0.0

    def fit(self, train_data: DataLoader, **kwargs: object) -> dict[str, Any]:
        xs, ys, ws = [], [], []
        for batch in train_data:
            x, y = batch[0], batch[1]
            w = batch[2] if len(batch) > 2 else torch.ones(len(x))
            xs.append(x.detach().cpu().double().reshape(len(x), -1))
            ys.append(y.detach().cpu().double().reshape(-1))
            ws.append(w.detach().cpu().double().reshape(-1))
        x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
        w = w / w.max() if float(w.max()) > 0 else torch.ones_like(w)
        x_mean = (w[:, None] * x).sum(0) / w.sum()
        y_mean = (w * y).sum() / w.sum()
        root = w.sqrt()
        a = (x - x_mean) * root[:, None]
        b = (y - y_mean) * root
        if self.alpha > 0:
            gram = a.T @ a + self.alpha * torch.eye(a.shape[1], dtype=a.dtype)
            coefficients = torch.linalg.solve(gram, a.T @ b)
        else:
            coefficients = torch.linalg.lstsq(a, b[:, None], driver="gelsd").solution[:, 0]
        self.coefficients = coefficients
        self.intercept = float(y_mean - x_mean @ coefficients)
        return {"samples": int(len(y))}

    def representation(self) -> torch.Tensor:
        if self.coefficients is None:
            raise RuntimeError("the linear model has not been fitted")
        return self.coefficients.float().reshape(1, -1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.double() @ self.representation().double().T + self.intercept


def lime_kernel(width: float):
    """LIME's similarity of a sampled on/off vector to the original (all on)."""

    def similarity(_original: Any, _perturbed: Any, interpretable: torch.Tensor, **_: Any) -> float:
        vector = interpretable.detach().double().flatten()
        norm = float(vector.norm())
        distance = 1.0 - (float(vector.sum()) / (norm * math.sqrt(vector.numel())) if norm else 0.0)
        return math.sqrt(math.exp(-(distance**2) / width**2))

    return similarity


def _superpixel_attribution(
    kind: str, model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    choice = str(ctx.params["baseline"])
    check_baseline_choice(kind, choice, ctx.baseline_inputs)
    baselines = named_baseline(choice, x, ctx.baseline_inputs)
    if kind == "lime":
        method: Lime = Lime(
            model,
            interpretable_model=WeightedLinearModel(LIME_RIDGE_ALPHA),
            similarity_func=lime_kernel(float(ctx.params["kernel_width"])),
        )
    else:
        method = KernelShap(model)
        method.interpretable_model = WeightedLinearModel(0.0)

    def one(_i: int, xi: torch.Tensor, ti: torch.Tensor, bi: torch.Tensor | None) -> torch.Tensor:
        labels = superpixels(xi[0], int(ctx.params["n_segments"]), float(ctx.params["compactness"]))
        mask = torch.from_numpy(labels).to(xi.device).view(1, 1, *labels.shape)
        with seeded(ctx.seed, xi.device):
            attribution = method.attribute(
                xi,
                baselines=bi,
                target=ti,
                feature_mask=mask,
                n_samples=int(ctx.params["n_samples"]),
                perturbations_per_eval=ctx.max_batch,
            )
        # captum repeats the superpixel's coefficient in every channel: keep one copy.
        return attribution.detach()[:, :1]

    return channel_sum(per_sample(one, x, targets, baselines))


def lime(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    return _superpixel_attribution("lime", model, x, targets, ctx)


def kernel_shap(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    return _superpixel_attribution("kernel_shap", model, x, targets, ctx)
