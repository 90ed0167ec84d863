"""The placebo model: a copy with every weight re-initialised (Adebayo et al. 2018).

"Cascading randomisation to the full model": an explainer whose maps barely change when all
weights are random is not explaining what the model learned. The placebo condition of a
study shows maps computed on such a copy.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from explain.compute.explainers.common import seeded


def _device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def randomized_copy(model: nn.Module, *, seed: int) -> nn.Module:
    """Deep copy with all parameters re-initialised, norm-layer running statistics reset.

    Modules with ``reset_parameters`` use their own default initialisation (this also resets
    BatchNorm running statistics); any parameter left over is drawn from N(0, 1/fan_in).
    The same seed gives the same copy; the original model is not touched.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError("a TorchScript model cannot be re-initialised; register it in eager form")
    clone = copy.deepcopy(model)
    done: set[int] = set()
    with seeded(seed, _device(clone)), torch.no_grad():
        for module in clone.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                done.update(id(p) for p in module.parameters(recurse=False))
            reset_stats = getattr(module, "reset_running_stats", None)
            if callable(reset_stats):
                reset_stats()
        for parameter in clone.parameters():
            if id(parameter) in done:
                continue
            fan_in = parameter[0].numel() if parameter.dim() > 1 else parameter.numel()
            parameter.normal_(0.0, 1.0 / math.sqrt(max(1, fan_in)))
    return clone
