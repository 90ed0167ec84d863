"""The demo network: a small ResNet with a spatial attention gate.

Written so that hook-based explainers work on it: every ReLU is its own module used once
per forward, nothing is in-place, residual additions and the attention product are explicit
modules (`Add`, `Multiply`), and flattening uses `torch.flatten`. Those custom modules carry
their LRP rules (`rule` attributes, read by captum's LRP): epsilon for the residual sum, and
for the attention product all relevance to the features (the gate only scales them), so
relevance is conserved through the gate.
"""

from __future__ import annotations

import torch
from torch import nn

from explain.compute.explainers.lrp import GateRule

DEMO_INPUT_SPEC: dict = {"size": [128, 128], "channels": 1, "mean": [0.5], "std": [0.25]}
DEMO_CLASS_LABELS: list[str] = ["normal", "nodule"]


class Add(nn.Module):
    """Residual addition as a module, so explainers can hook or give it a rule."""

    def __init__(self) -> None:
        super().__init__()
        from captum.attr._utils.lrp_rules import EpsilonRule

        self.rule = EpsilonRule()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Multiply(nn.Module):
    """Elementwise product (features times a broadcast attention map)."""

    def __init__(self) -> None:
        super().__init__()
        self.rule = GateRule()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a (projected when needed) identity shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Projection shortcut only where the shape changes; otherwise x itself (no
        # nn.Identity, one module type fewer for explainers to handle).
        self.shortcut: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.add = Add()
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu2(self.add(out, identity))


class AttentionGate(nn.Module):
    """Spatial attention: a 1x1 conv + sigmoid map that scales every feature channel.

    `last_map` keeps the (N, 1, h, w) map of the latest forward (detached) so the
    "model's own attention" explainer can read it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)
        self.sigmoid = nn.Sigmoid()
        from captum.attr._utils.lrp_rules import IdentityRule

        self.sigmoid.rule = IdentityRule()
        self.multiply = Multiply()
        self.last_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.sigmoid(self.conv(x))
        self.last_map = attention.detach()
        return self.multiply(x, attention)


class AttentionResNet(nn.Module):
    """Stem -> three residual stages -> spatial attention -> pooling -> linear.

    Downsampling is by max pooling between stages (stem, layer1, layer2: /2 each) rather
    than strided convolutions, and the head max-pools 4x4 regions before the global
    average: a small lesion's response is then not diluted over the whole image, so a
    small network trained from scratch on ~180 images finds lesions within a few hundred
    steps. At 128x128 input the last stage (`cam_layer_name`, "layer3") is 16x16.
    Inputs should be at least 32x32.
    """

    cam_layer_name: str = "layer3"

    def __init__(
        self, in_channels: int = 1, num_classes: int = 2, width: int = 16, head_pool: int = 4
    ) -> None:
        super().__init__()
        if min(in_channels, num_classes, width, head_pool) < 1:
            raise ValueError(
                "in_channels, num_classes, width and head_pool must be positive integers"
            )
        self.stem_conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        self.stem_relu = nn.ReLU(inplace=False)
        self.stem_pool = nn.MaxPool2d(2)
        self.layer1 = BasicBlock(width, width)
        self.pool1 = nn.MaxPool2d(2)
        self.layer2 = BasicBlock(width, 2 * width)
        self.pool2 = nn.MaxPool2d(2)
        self.layer3 = BasicBlock(2 * width, 4 * width)
        self.attention = AttentionGate(4 * width)
        self.head_pool = nn.MaxPool2d(head_pool, ceil_mode=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)
        self.embedding_dim = 4 * width
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # The attention conv has no BatchNorm after it: start it at zero so the gate opens
        # at 0.5 everywhere instead of saturating the sigmoid (kaiming fan_out would).
        nn.init.zeros_(self.attention.conv.weight)
        nn.init.zeros_(self.attention.conv.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional stage after the attention gate, (N, 4*width, h, w)."""
        x = self.stem_pool(self.stem_relu(self.stem_bn(self.stem_conv(x))))
        x = self.pool1(self.layer1(x))
        x = self.pool2(self.layer2(x))
        x = self.layer3(x)
        return self.attention(x)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer vector (N, 4*width), for similar-case retrieval."""
        return torch.flatten(self.pool(self.head_pool(self.features(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(x))
