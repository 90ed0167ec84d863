"""Explanation-quality metrics: faithfulness curves, localisation, similarity and robustness.

Pure numpy/torch (plus captum for max-sensitivity); no Django. Every function takes explicit
arrays so it can be tested with hand-built maps and tiny models.

Conventions
-----------
* An *attribution* is an ``(H, W)`` array of finite floats; higher means "more relevant".
* A *mask* is an ``(H, W)`` boolean (or 0/1) array marking the annotated region.
* Rankings are by attribution, descending, ties broken by flat (row-major) index, so every
  metric is deterministic for a given map.
* Localisation metrics return ``None`` when the mask is empty (the metric is undefined for that
  case and :func:`summarize` skips it).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage, stats
from torch import nn

BLUR_SIGMA: float = 5.0
"""Default sigma (pixels) of the "blur" baseline; RISE (Petsiuk et al. 2018) used sigma 5."""

METRIC_DESCRIPTIONS: dict[str, str] = {
    "deletion_auc": (
        "Area under the target-class probability curve as the most relevant pixels are "
        "progressively replaced by the baseline (Petsiuk et al. 2018); lower is better."
    ),
    "insertion_auc": (
        "Area under the target-class probability curve as the most relevant pixels are "
        "progressively revealed on top of the baseline (Petsiuk et al. 2018); higher is better."
    ),
    "pointing_game": (
        "Whether the attribution's maximum falls inside the annotated region (within a pixel "
        "tolerance); mean over cases is the hit rate; higher is better."
    ),
    "relevance_mass": (
        "Share of the positive attribution that lies inside the annotated region "
        "(relevance mass accuracy, Arras et al. 2022), 0 to 1; higher is better."
    ),
    "topk_iou": (
        "Intersection over union of the top-k% attributed pixels and the annotated region, "
        "0 to 1; higher is better."
    ),
    "rank_correlation": (
        "Spearman rank correlation between two attribution maps, -1 to 1; in the model "
        "randomisation sanity check (trained vs randomised model) lower is better."
    ),
    "max_sensitivity": (
        "Largest relative change of the attribution under small uniform input perturbations "
        "(Yeh et al. 2019, captum sensitivity_max); lower is better."
    ),
}


class MetricError(ValueError):
    """Bad input to a metric (wrong shape, non-finite values, unknown option)."""


@dataclass(frozen=True)
class CurveResult:
    """A deletion or insertion curve and its area.

    ``fractions[k]`` is the fraction of pixels deleted/inserted at step ``k`` (0 to 1) and
    ``scores[k]`` the model's target score on that image; ``baseline`` describes the fill,
    e.g. ``"zeros"``, ``"mean"`` or ``"blur(sigma=5)"``.
    """

    auc: float
    fractions: np.ndarray
    scores: np.ndarray
    steps: int
    baseline: str


# Validation helpers ---------------------------------------------------------------------------


def _as_map(values: object, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 2:
        raise MetricError(f"{name} must be a 2-D (H, W) map, got shape {array.shape}")
    if array.size == 0:
        raise MetricError(f"{name} is empty")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise MetricError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise MetricError(f"{name} contains NaN or infinite values")
    return array


def _as_mask(mask: object, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    array = np.asarray(mask)
    if array.shape != shape:
        raise MetricError(f"mask shape {array.shape} does not match attribution shape {shape}")
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isin(array, (0, 1))):
        raise MetricError("mask must be boolean or contain only 0 and 1")
    return array.astype(bool)


def _ranked_indices(attribution: np.ndarray) -> np.ndarray:
    """Flat indices by attribution, descending; a stable sort keeps ties in index order."""
    return np.argsort(-attribution.ravel(), kind="stable")


# Deletion / insertion -------------------------------------------------------------------------


def _parse_baseline(baseline: str) -> tuple[str, float | None]:
    """``"zeros"``, ``"mean"``, ``"blur"`` or ``"blur(sigma=S)"`` -> (kind, sigma)."""
    text = baseline.strip().lower() if isinstance(baseline, str) else ""
    if text in ("zeros", "mean"):
        return text, None
    if text == "blur":
        return "blur", BLUR_SIGMA
    match = re.fullmatch(r"blur\(\s*sigma\s*=\s*([0-9]*\.?[0-9]+)\s*\)", text)
    if match and float(match.group(1)) > 0:
        return "blur", float(match.group(1))
    raise MetricError(
        f"unknown baseline {baseline!r}; use 'zeros', 'mean', 'blur' or 'blur(sigma=S)'"
    )


def _baseline_image(x: torch.Tensor, kind: str, sigma: float | None) -> torch.Tensor:
    """The fill image for ``x`` of shape (C, H, W)."""
    if kind == "zeros":
        return torch.zeros_like(x)
    if kind == "mean":
        return x.mean(dim=(1, 2), keepdim=True).expand_as(x).clone()
    # Gaussian blur per channel, reflected at the borders (scipy handles any image size).
    blurred = ndimage.gaussian_filter(
        x.detach().cpu().double().numpy(), sigma=(0, sigma, sigma), mode="reflect"
    )
    return torch.from_numpy(blurred).to(device=x.device, dtype=x.dtype)


def _describe_baseline(kind: str, sigma: float | None) -> str:
    return kind if sigma is None else f"blur(sigma={sigma:g})"


def _model_device_dtype(model: nn.Module, x: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return x.device, dtype


class _EvalMode:
    """Puts every submodule in eval mode and restores each one's own flag afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.flags: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> None:
        self.flags = [(module, module.training) for module in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for module, flag in self.flags:
            module.training = flag


def _step_counts(n_pixels: int, steps: int) -> np.ndarray:
    """Pixels changed at step k = round(k * n_pixels / steps), half up, in exact integers."""
    k = np.arange(steps + 1, dtype=np.int64)
    return (2 * k * n_pixels + steps) // (2 * steps)


def _curve(
    model: nn.Module,
    x: torch.Tensor,
    attribution: np.ndarray,
    target: int,
    *,
    steps: int,
    baseline: str,
    batch_size: int,
    softmax: bool,
    insert: bool,
) -> CurveResult:
    if not isinstance(x, torch.Tensor):
        raise MetricError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise MetricError(f"x must hold one image, got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim != 3:
        raise MetricError(f"x must be (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}")
    attr = _as_map(attribution, "attribution")
    height, width = x.shape[1:]
    if attr.shape != (height, width):
        raise MetricError(
            f"attribution shape {attr.shape} does not match the image size {(height, width)}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise MetricError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MetricError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(target, bool) or not isinstance(target, int | np.integer) or target < 0:
        raise MetricError(f"target must be a non-negative class index, got {target!r}")
    kind, sigma = _parse_baseline(baseline)

    device, dtype = _model_device_dtype(model, x)
    image = x.detach().to(device=device, dtype=dtype)
    fill = _baseline_image(image, kind, sigma)
    n_pixels = height * width

    # rank[p] = position of pixel p in the ranking; step k changes the pixels with rank < n_k.
    rank = np.empty(n_pixels, dtype=np.int64)
    rank[_ranked_indices(attr)] = np.arange(n_pixels)
    rank_t = torch.from_numpy(rank.reshape(height, width)).to(device)
    counts = _step_counts(n_pixels, steps)
    counts_t = torch.from_numpy(counts).to(device)
    # Deletion: changed pixels show the fill; insertion: changed pixels show the image.
    changed_src, unchanged_src = (image, fill) if insert else (fill, image)

    scores: list[np.ndarray] = []
    with _EvalMode(model), torch.no_grad():
        for start in range(0, steps + 1, batch_size):
            chunk = counts_t[start : start + batch_size]
            changed = (rank_t[None] < chunk[:, None, None])[:, None]  # (B, 1, H, W)
            batch = torch.where(changed, changed_src[None], unchanged_src[None])
            output = model(batch)
            if not isinstance(output, torch.Tensor) or output.ndim != 2:
                raise MetricError("the model must return a (N, classes) tensor of class scores")
            if target >= output.shape[1]:
                raise MetricError(
                    f"target {target} is out of range for a model with {output.shape[1]} classes"
                )
            values = torch.softmax(output.double(), dim=1) if softmax else output.double()
            scores.append(values[:, target].cpu().numpy())

    score_array = np.concatenate(scores)
    fractions = counts / n_pixels
    auc = float(np.trapezoid(score_array, fractions))
    return CurveResult(
        auc=auc,
        fractions=fractions,
        scores=score_array,
        steps=steps,
        baseline=_describe_baseline(kind, sigma),
    )


def deletion_curve(
    model: nn.Module,
    x: torch.Tensor,
    attribution: np.ndarray,
    target: int,
    *,
    steps: int = 20,
    baseline: str = "zeros",
    batch_size: int = 16,
    softmax: bool = True,
) -> CurveResult:
    """Deletion curve (Petsiuk et al. 2018): replace the most relevant pixels by the baseline.

    At step ``k = 0..steps`` the top ``round(k * H * W / steps)`` pixels of the ranking (all
    channels) are replaced by the baseline and the model's target score is recorded: the
    softmax probability, or the raw logit when ``softmax=False``. The AUC uses the trapezoidal
    rule over the actual fractions of pixels changed (0 to 1). A faithful map makes the score
    fall fast, so a lower AUC is better.

    Baselines: ``"zeros"``; ``"mean"`` (per-channel mean of ``x``); ``"blur"`` (Gaussian blur of
    ``x`` with sigma :data:`BLUR_SIGMA` = 5 px, reflected borders) or ``"blur(sigma=S)"``.
    The ``steps + 1`` images are evaluated ``batch_size`` at a time, one forward per batch, on
    the model's device, in eval mode (each module's training flag is restored afterwards).
    """
    return _curve(
        model,
        x,
        attribution,
        target,
        steps=steps,
        baseline=baseline,
        batch_size=batch_size,
        softmax=softmax,
        insert=False,
    )


def insertion_curve(
    model: nn.Module,
    x: torch.Tensor,
    attribution: np.ndarray,
    target: int,
    *,
    steps: int = 20,
    baseline: str = "zeros",
    batch_size: int = 16,
    softmax: bool = True,
) -> CurveResult:
    """Insertion curve (Petsiuk et al. 2018): start from the baseline and reveal the image.

    Same steps, baselines, scores and batching as :func:`deletion_curve`, but at step ``k`` the
    top ``round(k * H * W / steps)`` pixels show the original image and the rest the baseline.
    A faithful map makes the score rise fast, so a higher AUC is better.
    """
    return _curve(
        model,
        x,
        attribution,
        target,
        steps=steps,
        baseline=baseline,
        batch_size=batch_size,
        softmax=softmax,
        insert=True,
    )


# Localisation ---------------------------------------------------------------------------------


def pointing_game(attribution: np.ndarray, mask: np.ndarray, *, tolerance: int = 0) -> bool | None:
    """Whether the attribution's maximum lies in the mask (Zhang et al. 2018).

    The maximum is the first one in row-major order when several pixels tie. With
    ``tolerance = t`` a hit also counts when a mask pixel lies within Euclidean distance ``t``
    (pixels) of the maximum, i.e. the mask is dilated by a disk of radius ``t``.
    Returns ``None`` when the mask is empty.
    """
    attr = _as_map(attribution, "attribution")
    region = _as_mask(mask, attr.shape)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise MetricError(f"tolerance must be a non-negative integer, got {tolerance!r}")
    if not region.any():
        return None
    row, col = np.unravel_index(int(np.argmax(attr)), attr.shape)
    if region[row, col]:
        return True
    if tolerance == 0:
        return False
    rows, cols = np.nonzero(region)
    nearest_sq = int(np.min((rows - row) ** 2 + (cols - col) ** 2))
    return nearest_sq <= tolerance * tolerance


def relevance_mass(attribution: np.ndarray, mask: np.ndarray) -> float | None:
    """Positive attribution inside the mask over all positive attribution (Arras et al. 2022).

    Negative values are ignored (clipped to 0). A map with no positive value gives ``0.0``;
    an empty mask gives ``None``.
    """
    attr = _as_map(attribution, "attribution")
    region = _as_mask(mask, attr.shape)
    if not region.any():
        return None
    positive = np.clip(attr, 0.0, None)
    total = float(positive.sum())
    if total == 0.0:
        return 0.0
    return float(positive[region].sum()) / total


def topk_iou(attribution: np.ndarray, mask: np.ndarray, *, fraction: float = 0.05) -> float | None:
    """IoU of the top ``k`` attributed pixels and the mask, ``k = round(fraction * H * W)``.

    ``k`` is at least 1; ties in the ranking are broken by flat index. ``None`` for an empty
    mask.
    """
    attr = _as_map(attribution, "attribution")
    region = _as_mask(mask, attr.shape)
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not (0.0 < fraction <= 1.0)
    ):
        raise MetricError(f"fraction must be in (0, 1], got {fraction!r}")
    if not region.any():
        return None
    k = max(1, int(math.floor(fraction * attr.size + 0.5)))
    top = np.zeros(attr.size, dtype=bool)
    top[_ranked_indices(attr)[:k]] = True
    flat = region.ravel()
    intersection = int(np.count_nonzero(top & flat))
    union = int(np.count_nonzero(top | flat))
    return intersection / union


# Similarity and robustness --------------------------------------------------------------------


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rho of the two flattened maps (``scipy.stats.spearmanr``, average ranks for ties).

    Constant maps, where rho is undefined: if *both* maps are constant their rankings are the
    same (all tied), so the result is ``1.0`` (an explainer that ignores the model fails the
    randomisation sanity check, as it should); if exactly *one* is constant the maps share no
    ranking information and the result is ``0.0``.
    """
    first = _as_map(a, "first map")
    second = _as_map(b, "second map")
    if first.shape != second.shape:
        raise MetricError(f"map shapes differ: {first.shape} vs {second.shape}")
    first_constant = bool(np.all(first == first.flat[0]))
    second_constant = bool(np.all(second == second.flat[0]))
    if first_constant and second_constant:
        return 1.0
    if first_constant or second_constant:
        return 0.0
    rho = stats.spearmanr(first.ravel(), second.ravel()).statistic
    return float(rho)


def max_sensitivity(
    explain_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    radius: float = 0.02,
    n_perturb: int = 10,
    seed: int = 0,
    batch_size: int | None = None,
) -> float:
    """Max-sensitivity (Yeh et al. 2019) via ``captum.metrics.sensitivity_max``, seeded.

    ``explain_fn`` maps an ``(N, C, H, W)`` batch to ``N`` attributions (any trailing shape,
    tensor or array). ``n_perturb`` perturbed copies ``x + d`` are drawn with ``d`` uniform in
    the L-infinity ball of radius ``radius * (x.max() - x.min())`` (so ``radius`` is relative to
    the input's value range; a constant input uses range 1), from a generator seeded with
    ``seed``. The result is ``max_d ||E(x + d) - E(x)||_F / ||E(x)||_F`` (the denominator is
    replaced by 1 when ``E(x)`` is all zeros). Gradients are enabled inside ``explain_fn`` even
    though captum runs the metric under ``no_grad``. ``batch_size`` caps how many perturbed
    copies are explained at once (default: all).
    """
    from captum.metrics import sensitivity_max

    if not isinstance(x, torch.Tensor):
        raise MetricError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise MetricError(f"x must be (C, H, W) or (1, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise MetricError("x must be a floating-point tensor")
    if not (isinstance(radius, numbers.Real) and radius > 0 and math.isfinite(radius)):
        raise MetricError(f"radius must be a positive number, got {radius!r}")
    if isinstance(n_perturb, bool) or not isinstance(n_perturb, int) or n_perturb < 1:
        raise MetricError(f"n_perturb must be a positive integer, got {n_perturb!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise MetricError(f"batch_size must be a positive integer, got {batch_size!r}")

    x = x.detach()
    value_range = float(x.max() - x.min())
    absolute_radius = radius * (value_range if value_range > 0 else 1.0)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))

    def perturb(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        tensors = inputs if isinstance(inputs, tuple) else (inputs,)
        perturbed = []
        for tensor in tensors:
            noise = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            noise = (2.0 * noise - 1.0) * absolute_radius
            perturbed.append(tensor + noise.to(device=tensor.device, dtype=tensor.dtype))
        return tuple(perturbed)

    def explain(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        batch = inputs[0] if isinstance(inputs, tuple) else inputs
        with torch.enable_grad():
            result = explain_fn(batch.detach().clone())
        result = torch.as_tensor(result).detach().to(device=batch.device)
        if result.ndim == 0 or result.shape[0] != batch.shape[0]:
            raise MetricError(
                f"explain_fn returned shape {tuple(result.shape)} for a batch of "
                f"{batch.shape[0]} inputs"
            )
        # captum iterates over the explanation as a tuple; a bare tensor would be split by row.
        return (result.double(),)

    per_batch = n_perturb if batch_size is None else min(batch_size, n_perturb)
    sensitivity = sensitivity_max(
        explain,
        x,
        perturb_func=perturb,
        n_perturb_samples=n_perturb,
        max_examples_per_batch=per_batch,
    )
    return float(sensitivity.reshape(-1)[0])
