"""Layer-wise Relevance Propagation (Bach et al. 2015) through captum.

Rules: a module's own ``rule`` attribute (set by the model author, e.g. on custom ``Add`` or
``Multiply`` modules) is always kept. Every other layer that captum knows (Conv2d, Linear,
BatchNorm2d, pooling) gets, for the run only,

* ``rule="epsilon"`` (default): LRP-epsilon with ``epsilon`` (default 1e-6: close to plain
  LRP-0, so relevance is conserved: the input relevance sums to the target logit, minus what
  biases absorb);
* ``rule="epsilon_gamma"``: LRP-gamma (``gamma``, default 0.25) on convolutions and
  LRP-epsilon elsewhere, a composite that favours positive evidence (Montavon et al. 2019).

ReLU, Dropout and Tanh pass relevance unchanged (captum's non-linear layers). The result is
the relevance summed over channels; its sum over pixels is the logit (up to absorption).

:class:`GateRule` is the rule for a gating product ``features * gate`` (an attention map):
all relevance goes to the features and none to the gate ("signal-take-all", Arras et al.
2017), which keeps relevance conserved. (captum's IdentityRule on such a product copies the
relevance to both factors and doubles it.)
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from captum.attr import LRP
from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES
from captum.attr._utils.lrp_rules import EpsilonRule, GammaRule
from torch import nn

from explain.compute.catalog import keep_lrp_rules
from explain.compute.explainers.common import RunContext, channel_sum

LRP_RULES = ("epsilon", "epsilon_gamma")


class GateRule(EpsilonRule):
    """For ``Multiply(features, gate)``: all relevance to the first input, none to the others."""

    def forward_hook(self, module: nn.Module, inputs: Any, outputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        self._has_single_input = False
        self._handle_input_hooks = []
        for position, tensor in enumerate(inputs):
            if tensor.requires_grad and not hasattr(tensor, "hook_registered"):
                hook = self._input_hook(tensor.data, keep=position == 0)
                self._handle_input_hooks.append(tensor.register_hook(hook))
                tensor.hook_registered = True
        self._handle_output_hook = outputs.register_hook(
            self._create_backward_hook_output(outputs.data)
        )
        return outputs.clone()

    def _input_hook(self, data: torch.Tensor, *, keep: bool):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            relevance = grad * data if keep else torch.zeros_like(grad)
            grad.replace_out = relevance  # read by captum's hook on a following activation
            return relevance

        return hook


def _layer_rule(module: nn.Module, rule: str, epsilon: float, gamma: float):
    if rule == "epsilon_gamma" and isinstance(module, nn.Conv2d):
        return GammaRule(gamma=gamma)
    return EpsilonRule(epsilon=epsilon)


def lrp(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    rule = str(ctx.params["rule"])
    epsilon = float(ctx.params["epsilon"])
    gamma = float(ctx.params["gamma"])
    with keep_lrp_rules(model):
        for module in model.modules():
            if "rule" not in vars(module) and type(module) in SUPPORTED_LAYERS_WITH_RULES:
                module.rule = _layer_rule(module, rule, epsilon, gamma)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                relevance = LRP(model).attribute(x, target=targets)
        except (TypeError, RuntimeError) as exc:
            raise ValueError(f"LRP cannot run on this model: {exc}") from exc
    return channel_sum(relevance.detach())
