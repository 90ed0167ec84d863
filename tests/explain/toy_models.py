"""Tiny architectures for registry tests (importable as "tests.explain.toy_models:Name").

`GoodNet` supports every explainer; each other net breaks exactly one requirement.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialAttention(nn.Module):
    """1x1 conv -> sigmoid map; keeps the latest map in `last_map` (no leaf without a rule)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)
        self.last_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = torch.sigmoid(self.conv(x))
        self.last_map = attention.detach()
        return x * attention


class GoodNet(nn.Module):
    """conv-relu-conv-relu -> attention -> pool -> linear, with `embedding(x)`."""

    cam_layer_name = "conv2"

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.attention = SpatialAttention(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def second_activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(x)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.second_activation(self.conv2(x))
        return torch.flatten(self.pool(self.attention(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(x))


class ReusedReluNet(GoodNet):
    """Applies `relu1` twice (relu2 stays unused)."""

    def second_activation(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu1(x)


class InplaceReluNet(GoodNet):
    """`relu2` works in place."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 4) -> None:
        super().__init__(in_channels, num_classes, width)
        self.relu2 = nn.ReLU(inplace=True)


class UnsupportedLayerNet(GoodNet):
    """The second activation is a SiLU, a layer type captum's LRP has no rule for."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 4) -> None:
        super().__init__(in_channels, num_classes, width)
        self.relu2 = nn.SiLU()


class WrongOutputNet(GoodNet):
    """Returns three scores, whatever `num_classes` says."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 4) -> None:
        super().__init__(in_channels, num_classes, width)
        self.fc = nn.Linear(width, 3)


class DetachedNet(GoodNet):
    """Cuts the graph after the features: no gradient reaches the input or the CAM layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(x).detach())


class PlainNet(nn.Module):
    """Sequential net without attention or embedding; the final Flatten has no LRP rule."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class NotAModule:
    """A class that is not an nn.Module (must never be instantiated by the registry)."""

    instantiated = False

    def __init__(self) -> None:
        NotAModule.instantiated = True


def not_a_class() -> nn.Module:
    """A factory function: a callable the registry must refuse rather than call."""
    raise AssertionError("resolve_architecture called a factory function")
