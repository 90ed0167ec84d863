"""Gradient explainers (captum): Saliency, SmoothGrad, Integrated Gradients, GradientSHAP.

Noise levels are fractions of each image's own intensity range (max - min over the model
input), as in the SmoothGrad paper. Sampling explainers run one image at a time, seeded by
the config's seed, so an image gets the same map alone or in a batch and on every run.
Random draws are made on the CPU (SmoothGrad noise, GradientSHAP noise baselines; captum's
GradientSHAP path points come from numpy), so CPU and GPU agree, except GradientSHAP with
``stdev`` > 0, whose input noise captum draws on the inputs' device.
"""

from __future__ import annotations

import torch
from captum.attr import GradientShap, IntegratedGradients, Saliency
from torch import nn

from explain.compute.explainers.common import (
    RunContext,
    channel_sum,
    check_baseline_choice,
    generator,
    input_range,
    named_baseline,
    per_sample,
    seeded,
)

NOISE_BASELINES = 4
"""GradientSHAP 'zeros+noise': the zero image plus this many uniform-noise images."""


def saliency(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    """Input gradient of the class score (Simonyan et al. 2014), |.| when ``absolute``."""
    grads = Saliency(model).attribute(x, target=targets, abs=bool(ctx.params["absolute"]))
    return channel_sum(grads.detach())


def smoothgrad(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    """Mean saliency over ``n_samples`` noisy copies (Smilkov et al. 2017).

    The Gaussian noise is drawn on the CPU from a generator seeded with the config's seed
    (one image at a time) and then moved to the inputs' device, so a seed gives the same map
    on CPU and GPU; captum's NoiseTunnel would draw it on the device instead.
    """
    n_samples = int(ctx.params["n_samples"])
    stdevs = input_range(x) * float(ctx.params["stdev"])
    method = Saliency(model)
    absolute = bool(ctx.params["absolute"])

    def one(i: int, xi: torch.Tensor, ti: torch.Tensor, _base: torch.Tensor | None) -> torch.Tensor:
        noise = cpu_normal((n_samples, *xi.shape[1:]), ctx.seed).to(xi.device, xi.dtype)
        total = torch.zeros_like(xi)
        for start in range(0, n_samples, ctx.max_batch):
            chunk = noise[start : start + ctx.max_batch]
            noisy = (xi.detach() + float(stdevs[i]) * chunk).requires_grad_(True)
            grads = method.attribute(noisy, target=ti.expand(len(chunk)), abs=absolute)
            total += grads.detach().sum(dim=0, keepdim=True)
        return total / n_samples

    return channel_sum(per_sample(one, x, targets))


def cpu_normal(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Standard normal samples, one (C, H, W) draw after another from a seeded CPU generator
    (so the values do not depend on how callers batch them, nor on the device)."""
    gen = generator(seed, torch.device("cpu"))
    return torch.stack([torch.randn(shape[1:], generator=gen) for _ in range(shape[0])])


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    """Path integral of gradients from a baseline (Sundararajan et al. 2017), Gauss-Legendre."""
    choice = str(ctx.params["baseline"])
    check_baseline_choice("integrated_gradients", choice, ctx.baseline_inputs)
    baselines = named_baseline(choice, x, ctx.baseline_inputs)
    steps = int(ctx.params["n_steps"])
    attribution = IntegratedGradients(model).attribute(
        x,
        baselines=baselines,
        target=targets,
        n_steps=steps,
        method="gausslegendre",
        internal_batch_size=max(ctx.max_batch, x.shape[0]),
    )
    return channel_sum(attribution.detach())


def gradient_shap_baselines(
    choice: str, xi: torch.Tensor, given: torch.Tensor | None, seed: int
) -> torch.Tensor:
    """The baseline distribution for one image (B, C, H, W)."""
    if choice != "zeros+noise":
        return named_baseline(choice, xi, given)
    low = float(xi.detach().min())
    high = float(xi.detach().max())
    noise = torch.rand(
        (NOISE_BASELINES, *xi.shape[1:]), generator=generator(seed, torch.device("cpu"))
    )
    noise = low + (high - low) * noise.to(xi.device, xi.dtype)
    return torch.cat([torch.zeros_like(xi), noise], dim=0)


def gradient_shap(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    """Expected gradients x (input - baseline) over random baselines and path points."""
    choice = str(ctx.params["baselines"])
    check_baseline_choice(
        "gradient_shap", choice if choice != "zeros+noise" else "zeros", ctx.baseline_inputs
    )
    given = None
    if ctx.baseline_inputs is not None:
        given = named_baseline("given", x, ctx.baseline_inputs)
    stdevs = input_range(x) * float(ctx.params["stdev"])
    method = GradientShap(model)

    def one(i: int, xi: torch.Tensor, ti: torch.Tensor, gi: torch.Tensor | None) -> torch.Tensor:
        baselines = gradient_shap_baselines(choice, xi, gi, ctx.seed)
        std = float(stdevs[i])
        with seeded(ctx.seed, x.device):
            attribution = method.attribute(
                xi,
                baselines=baselines,
                n_samples=int(ctx.params["n_samples"]),
                stdevs=std,
                target=ti,
            )
        return attribution.detach()

    return channel_sum(per_sample(one, x, targets, given))
