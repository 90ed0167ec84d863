"""Tiny models and helpers for the explainer tests (built explicitly, no training unless said)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from captum.attr._utils.lrp_rules import EpsilonRule, IdentityRule
from torch import nn

from explain.compute.explainers import GateRule
from explain.compute.models import Add, AttentionResNet, Multiply

SIDE = 32
REGION = (slice(8, 24), slice(8, 24))  # rows, columns the RegionNet looks at (16 x 16)


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread: the test machine's two cores are shared, and oversubscribed
    threads make small convolutions many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


def region_mask(side: int = SIDE) -> torch.Tensor:
    mask = torch.zeros(1, 1, side, side)
    mask[0, 0, REGION[0], REGION[1]] = 1.0
    return mask


class RegionGate(nn.Module):
    """Multiplies by a fixed 0/1 mask; exposes it as `last_map` (the model's "attention")."""

    def __init__(self, side: int = SIDE) -> None:
        super().__init__()
        self.register_buffer("mask", region_mask(side))
        self.rule = EpsilonRule(1e-9)  # a product with a constant: plain LRP-0 passes it on
        self.last_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last_map = self.mask.expand(x.shape[0], 1, -1, -1).detach()
        return x * self.mask


class RegionNet(nn.Module):
    """Class-1 score = positive mix of ReLU(conv(x)) averaged inside REGION only.

    Bias-free with positive weights, so every input pixel outside the region (beyond the
    conv's one-pixel reach) has exactly no effect on the output.
    """

    cam_layer_name = "pool1"

    def __init__(self, side: int = SIDE) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.relu1 = nn.ReLU()
        self.gate = RegionGate(side)
        self.pool1 = nn.AvgPool2d(2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(0.2 + torch.rand(self.conv1.weight.shape, generator=generator))
            self.fc.weight.copy_(torch.tensor([[-1.0, -0.5, -0.8, -1.2], [1.0, 0.5, 0.8, 1.2]]))

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.gate(self.relu1(self.conv1(x))))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(x))


def region_image(n: int = 1, side: int = SIDE, seed: int = 0) -> torch.Tensor:
    """Background 0.3 with a bright distractor blob outside REGION, and a mid-grey REGION."""
    generator = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.02 * torch.rand((n, 1, side, side), generator=generator)
    x[:, :, 1:7, 25:31] = 0.95  # distractor: brighter than anything the model looks at
    x[:, :, REGION[0], REGION[1]] += 0.35
    return x


class SmallNet(nn.Module):
    """conv-relu-pool-conv-relu -> average pool -> linear; `conv2` is the CAM layer."""

    cam_layer_name = "relu2"

    def __init__(
        self, channels: int = 1, classes: int = 3, width: int = 4, bias: bool = True
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1, bias=bias)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=bias)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes, bias=bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.conv2(self.pool1(self.relu1(self.conv1(x)))))

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(x))


def with_demo_lrp_rules(model: AttentionResNet) -> AttentionResNet:
    """Give the demo net's custom modules LRP rules where the model file sets none yet:
    Add -> epsilon, Sigmoid -> identity, Multiply (attention gate) -> GateRule."""
    for module in model.modules():
        if "rule" in vars(module):
            continue
        if isinstance(module, Add):
            module.rule = EpsilonRule(1e-9)
        elif isinstance(module, nn.Sigmoid):
            module.rule = IdentityRule()
        elif isinstance(module, Multiply):
            module.rule = GateRule(1e-9)
    return model


def bias_free(model: nn.Module) -> nn.Module:
    """Zero every bias and BatchNorm shift so that LRP-0 must conserve relevance exactly."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.zero_()
                module.bias.zero_()
                module.running_var.copy_(
                    0.5 + torch.rand(module.running_var.shape, generator=generator)
                )
            elif isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
                module.bias.zero_()
    return model
