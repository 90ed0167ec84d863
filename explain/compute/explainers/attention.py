"""The model's own spatial attention map, read from the module that stores it in ``last_map``."""

from __future__ import annotations

import torch
from torch import nn

from explain.compute.explainers.common import (
    RunContext,
    check_inputs,
    check_same_device,
    evaluation,
    upsample,
)


def attention_map(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """(N, H, W) float32: the first module whose ``last_map`` the forward refreshed, upsampled.

    The stored map must be (N, h, w) or (N, 1, h, w); it is resized bilinearly to the input.
    """
    check_inputs(inputs)
    check_same_device(model, inputs)
    holders = [(name, m) for name, m in model.named_modules() if hasattr(m, "last_map")]
    if not holders:
        raise ValueError("the model has no module with a `last_map` attribute")
    before = {name: id(m.last_map) for name, m in holders}
    with evaluation(model), torch.inference_mode(False), torch.no_grad():
        model(inputs.clone())
    n = inputs.shape[0]
    for name, module in holders:
        value = module.last_map
        if not isinstance(value, torch.Tensor) or id(value) == before[name]:
            continue
        if value.dim() == 4 and value.shape[1] == 1:
            value = value[:, 0]
        if value.dim() != 3 or value.shape[0] != n:
            raise ValueError(
                f"module {name!r} stores `last_map` of shape {tuple(value.shape)}; "
                f"expected ({n}, h, w) or ({n}, 1, h, w)"
            )
        size = (int(inputs.shape[2]), int(inputs.shape[3]))
        return upsample(value.detach().float(), size).float()
    names = ", ".join(repr(name) for name, _ in holders)
    raise ValueError(f"no module refreshed `last_map` during the forward (holders: {names})")


def attention(
    model: nn.Module, x: torch.Tensor, _targets: torch.Tensor, _ctx: RunContext
) -> torch.Tensor:
    """The attention explainer: class-independent, the target is not used."""
    return attention_map(model, x)
