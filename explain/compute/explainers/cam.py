"""Class activation maps: Grad-CAM and Guided Grad-CAM (captum), Grad-CAM++ and LayerCAM.

All of them read the activations ``A`` (N, K, h, w) of one layer (the model's CAM layer) and
the gradients ``g = dS/dA`` of the target score ``S``; the map is ReLU(sum_k w_k A_k) with

* Grad-CAM (Selvaraju et al. 2017): w_k = spatial mean of g_k;
* Grad-CAM++ (Chattopadhay et al. 2018): w_k = sum_ij alpha_kij ReLU(g_kij) with
  alpha = g^2 / (2 g^2 + sum_ij(A_k) g^3) (the closed form for an exponential score, as in
  the paper and common implementations);
* LayerCAM (Jiang et al. 2021): per-location weights ReLU(g_kij) instead of one per channel.

Maps are upsampled bilinearly (half-pixel centres) from (h, w) to the input size.
"""

from __future__ import annotations

import torch
from captum.attr import GuidedGradCam, LayerGradCam
from torch import nn

from explain.compute.explainers.common import RunContext, channel_sum, resolve_layer, upsample


def layer_activations_and_gradients(
    model: nn.Module, layer: nn.Module, name: str, x: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations of ``layer`` and gradients of the target scores w.r.t. them (both detached)."""
    captured: list[object] = []
    handle = layer.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        output = model(x)
    finally:
        handle.remove()
    if len(captured) != 1:
        raise ValueError(
            f"CAM layer {name!r} ran {len(captured)} times in one forward; it must run once"
        )
    activations = captured[0]
    if not isinstance(activations, torch.Tensor) or activations.dim() != 4:
        shape = (
            tuple(activations.shape)
            if isinstance(activations, torch.Tensor)
            else type(activations).__name__
        )
        raise ValueError(f"CAM layer {name!r} gives {shape}, not a feature map (N, C, h, w)")
    score = output.gather(1, targets.view(-1, 1)).sum()
    (gradients,) = torch.autograd.grad(score, activations, allow_unused=True)
    if gradients is None:
        raise ValueError(f"no gradient reaches CAM layer {name!r} from the class score")
    return activations.detach(), gradients.detach()


def _size(x: torch.Tensor) -> tuple[int, int]:
    return int(x.shape[2]), int(x.shape[3])


def gradcam(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    _name, layer = resolve_layer(model, ctx.cam_layer, "gradcam")
    cam = LayerGradCam(model, layer).attribute(x, target=targets, relu_attributions=True)
    return upsample(cam.detach(), _size(x))


def gradcam_plus_plus_weights(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights (N, K) from activations and gradients (N, K, h, w)."""
    g2 = gradients.pow(2)
    g3 = gradients.pow(3)
    sum_a = activations.sum(dim=(2, 3), keepdim=True)
    denominator = 2 * g2 + sum_a * g3
    denominator = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    alpha = g2 / denominator
    return (alpha * torch.relu(gradients)).sum(dim=(2, 3))


def gradcam_plus_plus(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    name, layer = resolve_layer(model, ctx.cam_layer, "gradcam_plus_plus")
    activations, gradients = layer_activations_and_gradients(model, layer, name, x, targets)
    weights = gradcam_plus_plus_weights(activations, gradients)
    cam = torch.relu((weights[:, :, None, None] * activations).sum(dim=1))
    return upsample(cam, _size(x))


def layercam(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    name, layer = resolve_layer(model, ctx.cam_layer, "layercam")
    activations, gradients = layer_activations_and_gradients(model, layer, name, x, targets)
    cam = torch.relu((torch.relu(gradients) * activations).sum(dim=1))
    return upsample(cam, _size(x))


def guided_gradcam(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext
) -> torch.Tensor:
    """Guided backpropagation times the bilinearly upsampled Grad-CAM, summed over channels."""
    _name, layer = resolve_layer(model, ctx.cam_layer, "guided_gradcam")
    attribution = GuidedGradCam(model, layer).attribute(
        x, target=targets, interpolate_mode="bilinear"
    )
    return channel_sum(attribution.detach())
