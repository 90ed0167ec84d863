"""Known answers: maps computed by hand or constrained by theory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from captum.attr._utils.lrp_rules import EpsilonRule
from torch import nn

from explain.compute.explainers import FUNCTIONS, GateRule, attribute, resolve
from explain.compute.explainers.cam import gradcam_plus_plus_weights
from explain.compute.models import AttentionResNet
from tests.explain.explainer_models import (  # noqa: F401
    REGION,
    RegionNet,
    SmallNet,
    bias_free,
    one_thread,
    region_image,
    with_demo_lrp_rules,
)

pytestmark = pytest.mark.usefixtures("one_thread")

# Occlusion's default 16-pixel window (4 pixels at this 32-pixel input) smears a 16-pixel
# region by 3 pixels on each side; a 2-pixel window shows where the model looks.
REGION_PARAMS = {"occlusion": {"window": 8, "stride": 4}}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_explainer_puts_most_absolute_mass_inside_the_only_region_the_model_sees(name):
    """RegionNet's class-1 score depends on the 16x16 REGION only (plus the conv's one-pixel
    reach); the image has a brighter distractor outside it. Share of |map| inside > 0.8."""
    model = RegionNet().eval()
    x = region_image(2)
    maps = attribute(model, x, 1, resolve(name, REGION_PARAMS.get(name)))
    assert maps.shape == (2, 32, 32)
    magnitude = maps.abs()
    inside = magnitude[:, REGION[0], REGION[1]].sum(dim=(1, 2))
    share = inside / magnitude.sum(dim=(1, 2))
    assert (share > 0.8).all(), f"{name}: share inside {share.tolist()}"


def _hand_cam(model: SmallNet, x: torch.Tensor, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations A of the CAM layer (relu2) and gradients dS/dA, by explicit autograd."""
    activations = model.features(x)
    score = model.fc(torch.flatten(model.pool(activations), 1))[:, target].sum()
    (gradients,) = torch.autograd.grad(score, activations)
    return activations.detach(), gradients


def _upsampled(cam: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(cam[:, None], size=(size, size), mode="bilinear", align_corners=False)[
        :, 0
    ]


def test_gradcam_matches_the_hand_computation_of_mean_gradient_weights():
    torch.manual_seed(1)
    model = SmallNet(classes=3).eval()
    x = torch.rand(2, 1, 16, 16)
    activations, gradients = _hand_cam(model, x, target=2)
    weights = gradients.mean(dim=(2, 3))
    cam = torch.relu((weights[:, :, None, None] * activations).sum(dim=1))
    ours = attribute(model, x, 2, resolve("gradcam"))
    assert cam.shape == (2, 8, 8)
    assert torch.allclose(ours, _upsampled(cam, 16), atol=1e-6)
    assert cam.abs().sum() > 0  # the comparison is not between two zero maps


def test_layercam_matches_the_hand_computation_of_positive_gradient_weights():
    torch.manual_seed(2)
    model = SmallNet(classes=3).eval()
    x = torch.rand(1, 1, 16, 16)
    activations, gradients = _hand_cam(model, x, target=0)
    cam = torch.relu((torch.relu(gradients) * activations).sum(dim=1))
    ours = attribute(model, x, 0, resolve("layercam"))
    assert torch.allclose(ours, _upsampled(cam, 16), atol=1e-6)


def test_gradcam_plus_plus_weights_follow_the_closed_form_on_a_hand_example():
    # One channel, 2x2 map of ones, gradient 1 everywhere: alpha = 1 / (2 + 4) at each of
    # the four positions, weight = 4 * alpha * ReLU(1) = 2/3.
    activations = torch.ones(1, 1, 2, 2)
    gradients = torch.ones(1, 1, 2, 2)
    assert torch.allclose(
        gradcam_plus_plus_weights(activations, gradients), torch.tensor([[2 / 3]])
    )
    # A negative gradient gives no weight; a zero gradient no division by zero.
    assert gradcam_plus_plus_weights(activations, -gradients).item() == 0.0
    assert gradcam_plus_plus_weights(activations, torch.zeros(1, 1, 2, 2)).item() == 0.0


def test_integrated_gradients_is_complete_sum_equals_score_difference_to_the_baseline():
    torch.manual_seed(3)
    model = AttentionResNet(in_channels=1, num_classes=2, width=8).eval()
    x = torch.randn(2, 1, 32, 32)
    maps = attribute(model, x, 1, resolve("integrated_gradients", {"n_steps": 64}))
    with torch.no_grad():
        difference = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    assert torch.allclose(maps.sum(dim=(1, 2)), difference, rtol=1e-2, atol=1e-4)


def test_integrated_gradients_is_complete_from_a_given_baseline():
    torch.manual_seed(7)
    model = SmallNet(classes=2).eval()
    x = torch.rand(2, 1, 16, 16)
    baseline = torch.full((1, 1, 16, 16), 0.25)
    config = resolve("integrated_gradients", {"n_steps": 64, "baseline": "given"})
    maps = attribute(model, x, 0, config, baseline_inputs=baseline)
    with torch.no_grad():
        difference = model(x)[:, 0] - model(baseline.expand_as(x))[:, 0]
    assert torch.allclose(maps.sum(dim=(1, 2)), difference, rtol=1e-2, atol=1e-5)
    assert difference.abs().min() > 1e-3  # a real difference, not two zeros


def test_lrp_conserves_relevance_on_a_bias_free_conv_net():
    """Input relevance sums to the target logit; LRP-epsilon with epsilon 1e-6 loses < 0.1%."""
    torch.manual_seed(4)
    model = SmallNet(classes=3, width=6, bias=False).eval()
    x = torch.randn(3, 1, 16, 16)
    maps = attribute(model, x, torch.tensor([0, 1, 2]), resolve("lrp"))
    with torch.no_grad():
        logits = model(x)[torch.arange(3), torch.tensor([0, 1, 2])]
    assert torch.allclose(maps.sum(dim=(1, 2)), logits, rtol=1e-3, atol=1e-6)


def test_lrp_conserves_relevance_on_the_bias_free_demo_attention_resnet():
    """The demo net with its custom modules' rules (set on the instance where the model file
    has none: Add epsilon, Sigmoid identity, Multiply GateRule) and zeroed biases/BN shifts."""
    torch.manual_seed(5)
    model = bias_free(with_demo_lrp_rules(AttentionResNet(1, 2, width=8))).eval()
    x = torch.randn(2, 1, 64, 64)
    maps = attribute(model, x, 1, resolve("lrp"))
    with torch.no_grad():
        logits = model(x)[:, 1]
    assert torch.allclose(maps.sum(dim=(1, 2)), logits, rtol=1e-3, atol=1e-6)


class _Gated(nn.Module):
    """y = sum(x * sigmoid(v)) for a fixed v: relevance must all go to x."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.multiply = _Multiply()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.fc.weight.copy_(torch.tensor([[1.0], [2.0]]))
        self.register_buffer("gate", torch.linspace(0.1, 0.9, 16).view(1, 1, 4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x)
        gated = self.multiply(features, self.gate.expand_as(features))
        return self.fc(torch.flatten(self.pool(gated), 1))


class _Multiply(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rule = GateRule(1e-9)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


def test_gate_rule_gives_each_pixel_its_gated_share_of_the_logit():
    # For positive x, LRP-0 relevance of pixel p is 2 * x_p * gate_p / 16 (class 1): the
    # product's output relevance, all passed to the feature input, none to the gate.
    model = _Gated().eval()
    x = torch.rand(1, 1, 4, 4) + 0.5
    maps = attribute(model, x, 1, resolve("lrp"))
    expected = 2 * x[:, 0] * model.gate[:, 0] / 16
    assert torch.allclose(maps, expected, rtol=1e-5)
    assert model.multiply.rule.__class__ is GateRule  # the author's rule survived the run


def test_lrp_epsilon_gamma_composite_runs_and_differs_from_plain_epsilon():
    torch.manual_seed(6)
    model = SmallNet(classes=2, bias=False).eval()
    x = torch.randn(1, 1, 16, 16)
    plain = attribute(model, x, 0, resolve("lrp"))
    composite = attribute(model, x, 0, resolve("lrp", {"rule": "epsilon_gamma", "gamma": 0.5}))
    assert torch.isfinite(composite).all()
    assert not torch.allclose(plain, composite)
    assert not any(hasattr(m, "rule") for m in model.modules())  # temporary rules removed


def test_lrp_keeps_rules_that_the_model_author_set():
    model = RegionNet().eval()
    rule = model.gate.rule
    attribute(model, region_image(1), 1, resolve("lrp"))
    attribute(model, region_image(1), 1, resolve("lrp"))  # a second run still finds it
    assert model.gate.rule is rule
    assert isinstance(rule, EpsilonRule)
