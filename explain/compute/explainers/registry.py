"""Explainer configurations (name, resolved parameters, seed) and the one entry point
:func:`attribute` that computes a map with any heatmap explainer.

Parameters and defaults (the canonical names are those of ``catalog.EXPLAINERS``):

* gradcam, gradcam_plus_plus, layercam, guided_gradcam, attention: none.
* saliency: ``absolute`` (True): magnitude of the input gradient.
* smoothgrad: ``n_samples`` (25) noisy copies, ``stdev`` (0.15) of Gaussian noise as a
  fraction of the image's intensity range, ``absolute`` (True).
* integrated_gradients: ``n_steps`` (32, Gauss-Legendre), ``baseline`` ("zeros").
* gradient_shap: ``n_samples`` (20), ``baselines`` ("zeros+noise": the zero image and four
  uniform-noise images spanning the image's range), ``stdev`` (0.0) of noise on the input.
* occlusion: ``window`` (16) and ``stride`` (8) in pixels of a 128-pixel side (scaled to the
  input), ``baseline`` ("zeros").
* lime: ``n_segments`` (50) superpixels (SLICO), ``compactness`` (0.1: scikit-image
  rescales intensities to [0, 1], where 0.1 plays the part of 10 for CIELAB colour images),
  ``n_samples`` (200), ``kernel_width`` (0.25), ``baseline`` ("zeros").
* kernel_shap: ``n_segments`` (50), ``compactness`` (0.1), ``n_samples`` (200),
  ``baseline`` ("zeros").
* lrp: ``rule`` ("epsilon"; or "epsilon_gamma"), ``epsilon`` (1e-6), ``gamma`` (0.25).
* similar_cases: ``k`` (4) neighbours, by cosine distance of the embeddings; computed by
  ``embeddings`` and ``nearest_cases``, not by :func:`attribute`. This spec is the one source of
  its parameters: the precompute job and the engine both read ``k`` from a resolved config.

Baselines: "zeros" is the all-zero model input (after the model's normalisation: the mean
intensity), "min" each image's own minimum (black), "given" the ``baseline_inputs`` passed
to :func:`attribute` (which are refused for any other choice, so a hash always names them).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explain.compute.catalog import EXPLAINERS
from explain.compute.explainers import attention as attention_module
from explain.compute.explainers import cam, gradient, lrp, perturbation
from explain.compute.explainers.common import (
    BASELINE_CHOICES,
    DEFAULT_MAX_BATCH,
    ExplainerFunction,
    RunContext,
    check_inputs,
    check_same_device,
    class_count,
    evaluation,
    prepare_targets,
)
from explain.compute.loading import is_torchscript

ALGORITHM_VERSION = "1"
"""Part of every parameter hash: bump it when an explainer's computation changes."""


@dataclass(frozen=True)
class Param:
    default: Any
    kind: type  # bool, int, float or str
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the value must be > low rather than >= low
    choices: tuple[str, ...] | None = None
    problem: str | None = None
    """One fixed reason given for any bad value (and for params that are not a dict), where
    the explainer's readers know the parameter by that sentence."""

    def check(self, explainer: str, name: str, value: Any) -> Any:
        try:
            return self._check(explainer, name, value)
        except ValueError:
            if self.problem is None:
                raise
            raise ValueError(f"{explainer}: {self.problem}") from None

    def _check(self, explainer: str, name: str, value: Any) -> Any:
        where = f"{explainer}: parameter {name!r}"
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{where} must be true or false, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise ValueError(
                    f"{where} must be one of {', '.join(self.choices or ())}, got {value!r}"
                )
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{where} must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{where} must be finite, got {value!r}")
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            relation = ">" if self.low_open else ">="
            raise ValueError(f"{where} must be {relation} {self.low}, got {value!r}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{where} must be <= {self.high}, got {value!r}")
        return value


def _baseline(doc: str = "reference image: zeros, min or given") -> Param:
    return Param("zeros", str, doc, choices=BASELINE_CHOICES)


_SUPERPIXELS = {
    "n_segments": Param(50, int, "approximate number of SLIC superpixels", 2, 2000),
    "compactness": Param(
        0.1, float, "SLIC compactness (intensities rescaled to 0-1)", 0.0, 1000.0, True
    ),
    "n_samples": Param(200, int, "perturbed images evaluated", 10, 20000),
}

PARAMETERS: dict[str, dict[str, Param]] = {
    "gradcam": {},
    "gradcam_plus_plus": {},
    "layercam": {},
    "saliency": {"absolute": Param(True, bool, "use the magnitude of the gradient")},
    "smoothgrad": {
        "n_samples": Param(25, int, "noisy copies averaged", 1, 1000),
        "stdev": Param(0.15, float, "noise standard deviation / image intensity range", 0.0, 1.0),
        "absolute": Param(True, bool, "average gradient magnitudes"),
    },
    "integrated_gradients": {
        "n_steps": Param(32, int, "Gauss-Legendre steps along the path", 2, 1000),
        "baseline": _baseline(),
    },
    "gradient_shap": {
        "n_samples": Param(20, int, "random (baseline, path point) samples", 1, 1000),
        "baselines": Param(
            "zeros+noise",
            str,
            "baseline distribution",
            choices=("zeros", "zeros+noise", "min", "given"),
        ),
        "stdev": Param(0.0, float, "input noise standard deviation / intensity range", 0.0, 1.0),
    },
    "guided_gradcam": {},
    "occlusion": {
        "window": Param(16, int, "square window side, pixels of a 128-pixel side", 1, 4096),
        "stride": Param(8, int, "window step, pixels of a 128-pixel side", 1, 4096),
        "baseline": _baseline("value of occluded pixels: zeros, min or given"),
    },
    "lime": {
        **_SUPERPIXELS,
        "kernel_width": Param(0.25, float, "width of LIME's similarity kernel", 0.0, 100.0, True),
        "baseline": _baseline("value of switched-off superpixels: zeros, min or given"),
    },
    "kernel_shap": {
        **_SUPERPIXELS,
        "baseline": _baseline("value of switched-off superpixels: zeros, min or given"),
    },
    "lrp": {
        "rule": Param("epsilon", str, "rule for layers without their own", choices=lrp.LRP_RULES),
        "epsilon": Param(1e-6, float, "stabiliser of the epsilon rule", 0.0, 10.0, True),
        "gamma": Param(0.25, float, "gamma of the gamma rule (epsilon_gamma only)", 0.0, 100.0),
    },
    "attention": {},
    "similar_cases": {
        "k": Param(
            4,
            int,
            "number of similar cases shown",
            1,
            100,
            problem="k must be a whole number from 1 to 100",
        ),
    },
}

FUNCTIONS: dict[str, ExplainerFunction] = {
    "gradcam": cam.gradcam,
    "gradcam_plus_plus": cam.gradcam_plus_plus,
    "layercam": cam.layercam,
    "saliency": gradient.saliency,
    "smoothgrad": gradient.smoothgrad,
    "integrated_gradients": gradient.integrated_gradients,
    "gradient_shap": gradient.gradient_shap,
    "guided_gradcam": cam.guided_gradcam,
    "occlusion": perturbation.occlusion,
    "lime": perturbation.lime,
    "kernel_shap": perturbation.kernel_shap,
    "lrp": lrp.lrp,
    "attention": attention_module.attention,
}
"""Heatmap explainers; ``similar_cases`` gives cases, not a map."""

SAMPLING = frozenset({"smoothgrad", "gradient_shap", "lime", "kernel_shap"})
"""Explainers whose result depends on the seed."""

NEEDS_HOOKS = frozenset({"gradcam", "gradcam_plus_plus", "layercam", "guided_gradcam", "lrp"})
"""Explainers that attach hooks to submodules: eager models only."""

FORWARD_ONLY = frozenset({"occlusion", "lime", "kernel_shap", "attention"})
"""Explainers that need no gradients (run under ``torch.no_grad``)."""

if set(PARAMETERS) != set(EXPLAINERS):  # pragma: no cover - guards catalog/registry drift
    raise RuntimeError("explainer registry and catalog.EXPLAINERS list different names")


@dataclass(frozen=True)
class ExplainerConfig:
    """A fully resolved explainer run: build it with :func:`resolve`."""

    name: str
    params: dict
    seed: int

    def canonical_json(self) -> str:
        document = {
            "algorithm_version": ALGORITHM_VERSION,
            "name": self.name,
            "params": self.params,
            "seed": self.seed,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)

    def param_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of name, params, seed and ALGORITHM_VERSION."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def __hash__(self) -> int:
        return hash(self.param_hash())


def _known(name: Any) -> str:
    if not isinstance(name, str) or name not in PARAMETERS:
        raise ValueError(f"unknown explainer {name!r}; known: {', '.join(PARAMETERS)}")
    return name


def default_params(name: str) -> dict:
    """The documented default parameters of an explainer (a new dict)."""
    return {key: spec.default for key, spec in PARAMETERS[_known(name)].items()}


def resolve(name: str, params: dict | None = None, seed: int = 0) -> ExplainerConfig:
    """Defaults filled in, every value checked; unknown names or values raise ValueError."""
    specs = PARAMETERS[_known(name)]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        fixed = [spec.problem for spec in specs.values() if spec.problem]
        raise ValueError(
            f"{name}: "
            + (fixed[0] if fixed else f"params must be a dict, got {type(params).__name__}")
        )
    unknown = sorted(str(key) for key in params if key not in specs)
    if unknown:
        known = ", ".join(specs) or "none"
        raise ValueError(f"{name}: unknown parameter {unknown[0]!r} (known: {known})")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    resolved = {
        key: spec.check(name, key, params.get(key, spec.default)) for key, spec in specs.items()
    }
    return ExplainerConfig(name=name, params=resolved, seed=seed)


def attribute(
    model: nn.Module,
    inputs: torch.Tensor,
    target: int | torch.Tensor,
    config: ExplainerConfig,
    *,
    cam_layer: str | None = None,
    baseline_inputs: torch.Tensor | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> torch.Tensor:
    """(N, H, W) float32 attribution of the target class at input resolution, raw values.

    Runs on the inputs' device (the model must be there too) with the model in eval mode
    (its training flags are restored after). ``max_batch`` bounds the model evaluations per
    forward of the sampling explainers; it changes speed, not results.
    """
    if not isinstance(config, ExplainerConfig):
        raise ValueError(f"config must be an ExplainerConfig, got {type(config).__name__}")
    checked = resolve(config.name, config.params, config.seed)
    if checked.canonical_json() != config.canonical_json():
        raise ValueError(f"{config.name}: config params are not fully resolved; use resolve()")
    function = FUNCTIONS.get(config.name)
    if function is None:
        raise ValueError(
            f"{config.name} gives similar cases, not a map: use embeddings() and nearest_cases()"
        )
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
    check_inputs(inputs)
    check_same_device(model, inputs)
    if config.name in NEEDS_HOOKS and is_torchscript(model):
        raise ValueError(
            f"{config.name} needs module hooks, which TorchScript models do not accept"
        )
    context = RunContext(
        params=dict(checked.params),
        seed=checked.seed,
        cam_layer=cam_layer,
        baseline_inputs=baseline_inputs,
        max_batch=max_batch,
    )
    gradients = config.name not in FORWARD_ONLY
    with torch.inference_mode(False), torch.set_grad_enabled(gradients), evaluation(model):
        x = inputs.detach().clone().requires_grad_(gradients)
        targets = prepare_targets(target, x.shape[0], class_count(model, x), x.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*backward hooks on ReLU.*")
            result = function(model, x, targets, context)
    expected = (x.shape[0], x.shape[2], x.shape[3])
    if tuple(result.shape) != expected:  # pragma: no cover - a bug in an explainer
        raise RuntimeError(f"{config.name} returned {tuple(result.shape)}, expected {expected}")
    return result.detach().float()
