"""How attribute() behaves: shapes, seeds, batches, model state and bad input."""

from __future__ import annotations

import pytest
import torch

from explain.compute.explainers import FUNCTIONS, attribute, resolve
from explain.compute.models import AttentionResNet
from tests.explain.explainer_models import (  # noqa: F401
    RegionNet,
    SmallNet,
    one_thread,
    region_image,
    with_demo_lrp_rules,
)

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {  # fewer samples keep the suite quick; the code paths are the same
    "smoothgrad": {"n_samples": 8},
    "gradient_shap": {"n_samples": 8},
    "integrated_gradients": {"n_steps": 16},
    "lime": {"n_samples": 60, "n_segments": 20},
    "kernel_shap": {"n_samples": 60, "n_segments": 20},
}


@pytest.fixture(scope="module")
def demo_net() -> AttentionResNet:
    torch.manual_seed(0)  # construction only: no computation here
    return with_demo_lrp_rules(AttentionResNet(in_channels=1, num_classes=2, width=8)).eval()


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_explainer_gives_finite_input_sized_maps_on_the_demo_net(demo_net, name):
    x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    maps = attribute(demo_net, x, torch.tensor([0, 1]), resolve(name))  # default parameters
    assert maps.shape == (2, 64, 64)
    assert maps.dtype == torch.float32
    assert torch.isfinite(maps).all()
    assert maps.abs().sum() > 0


@pytest.mark.parametrize("name", ["lime", "kernel_shap", "smoothgrad", "gradient_shap"])
def test_sampling_explainers_repeat_with_a_seed_and_change_with_another(name):
    model = SmallNet(classes=2).eval()
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    params = FAST[name]
    first = attribute(model, x, 1, resolve(name, params, seed=5))
    torch.rand(3)  # moving the global generator must not matter
    again = attribute(model, x, 1, resolve(name, params, seed=5))
    other = attribute(model, x, 1, resolve(name, params, seed=6))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_seeded_explainers_leave_the_global_generators_as_they_were():
    model = SmallNet(classes=2).eval()
    x = torch.rand(1, 1, 16, 16)
    torch.manual_seed(9)
    expected = torch.rand(2)
    torch.manual_seed(9)
    attribute(model, x, 0, resolve("smoothgrad", FAST["smoothgrad"], seed=1))
    assert torch.equal(torch.rand(2), expected)


@pytest.mark.parametrize(
    "name",
    [
        "gradcam",
        "gradcam_plus_plus",
        "integrated_gradients",
        "smoothgrad",
        "lime",
        "occlusion",
        "lrp",
    ],
)
def test_a_batch_gives_the_same_maps_as_one_image_at_a_time(name):
    model = RegionNet().eval()
    x = region_image(3, seed=4) + 0.2 * torch.rand(
        3, 1, 32, 32, generator=torch.Generator().manual_seed(8)
    )
    targets = torch.tensor([1, 0, 1])
    config = resolve(name, FAST.get(name))
    batch = attribute(model, x, targets, config)
    singles = torch.cat([attribute(model, x[i : i + 1], int(targets[i]), config) for i in range(3)])
    assert torch.allclose(batch, singles, atol=1e-5, rtol=1e-4)


def test_attribute_restores_training_mode_and_leaves_weights_and_grads_alone():
    model = SmallNet(classes=2)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("gradcam", "saliency", "lrp", "occlusion"):
        attribute(model, torch.rand(2, 1, 16, 16), 1, resolve(name))
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_attribute_uses_running_statistics_so_a_batch_does_not_mix_images():
    model = AttentionResNet(1, 2, width=4)
    model.train()
    x = torch.randn(2, 1, 32, 32)
    batch = attribute(model, x, 0, resolve("saliency"))
    alone = attribute(model, x[:1], 0, resolve("saliency"))
    assert torch.allclose(batch[:1], alone, atol=1e-6)


def test_attribute_works_when_the_caller_is_in_inference_mode():
    model = SmallNet(classes=2).eval()
    with torch.inference_mode():
        x = torch.rand(1, 1, 16, 16)
        maps = attribute(model, x, 0, resolve("saliency"))
    assert maps.shape == (1, 16, 16) and maps.abs().sum() > 0


def test_targets_select_the_class_per_image():
    model = SmallNet(classes=3).eval()
    x = torch.rand(2, 1, 16, 16)
    mixed = attribute(model, x, torch.tensor([2, 0]), resolve("saliency", {"absolute": False}))
    first = attribute(model, x[:1], 2, resolve("saliency", {"absolute": False}))
    second = attribute(model, x[1:], 0, resolve("saliency", {"absolute": False}))
    assert torch.allclose(mixed, torch.cat([first, second]), atol=1e-7)
    assert not torch.allclose(
        first, attribute(model, x[:1], 0, resolve("saliency", {"absolute": False}))
    )


def test_saliency_is_signed_when_absolute_is_off():
    model = SmallNet(classes=2).eval()
    x = torch.rand(1, 1, 16, 16)
    signed = attribute(model, x, 1, resolve("saliency", {"absolute": False}))
    magnitude = attribute(model, x, 1, resolve("saliency"))
    assert (signed < 0).any() and (magnitude >= 0).all()
    assert torch.allclose(signed.abs(), magnitude, atol=1e-7)  # one channel: |sum| = sum |.|


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (3, "out of range"),
        (-1, "out of range"),
        (torch.tensor([0, 1, 0]), r"shape \(2,\)"),
        (1.0, "int or a tensor"),
        (torch.tensor([0.0, 1.0]), "integers"),
    ],
)
def test_bad_targets_are_refused_with_a_reason(target, message):
    model = SmallNet(classes=3).eval()
    with pytest.raises(ValueError, match=message):
        attribute(model, torch.rand(2, 1, 16, 16), target, resolve("saliency"))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (torch.rand(1, 16, 16), r"\(N, C, H, W\)"),
        (torch.zeros(1, 1, 4, 4, dtype=torch.long), "floating"),
        (torch.full((1, 1, 4, 4), float("nan")), "NaN"),
        ([[1.0]], "torch.Tensor"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(inputs, message):
    with pytest.raises(ValueError, match=message):
        attribute(SmallNet().eval(), inputs, 0, resolve("saliency"))


def test_baseline_inputs_must_match_the_baseline_parameter():
    model = SmallNet(classes=2).eval()
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="set it to 'given'"):
        attribute(model, x, 0, resolve("occlusion"), baseline_inputs=torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="needs baseline_inputs"):
        attribute(model, x, 0, resolve("lime", {"baseline": "given"}))
    with pytest.raises(ValueError, match="do not match"):
        attribute(
            model,
            x,
            0,
            resolve("occlusion", {"baseline": "given"}),
            baseline_inputs=torch.zeros(1, 1, 8, 8),
        )


def test_a_given_occlusion_baseline_equal_to_the_image_gives_a_zero_map():
    model = SmallNet(classes=2).eval()
    x = torch.rand(1, 1, 16, 16)
    config = resolve("occlusion", {"baseline": "given"})
    assert attribute(model, x, 0, config, baseline_inputs=x[0]).abs().max() == 0


def test_cam_explainers_need_a_cam_layer_that_exists():
    model = SmallNet().eval()
    model.cam_layer_name = None
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="needs a CAM layer"):
        attribute(model, x, 0, resolve("gradcam"))
    with pytest.raises(ValueError, match="'nope' does not exist"):
        attribute(model, x, 0, resolve("layercam"), cam_layer="nope")
    named = attribute(model, x, 0, resolve("gradcam_plus_plus"), cam_layer="relu1")
    assert named.shape == (1, 16, 16)


def test_occlusion_window_scales_with_the_input_side():
    """A 16-pixel window at 128 is 2 pixels at 16: a pixel far from the region is untouched."""
    model = RegionNet(side=16).eval()
    x = region_image(1, side=16)
    maps = attribute(model, x, 1, resolve("occlusion"))
    # corner: every covering window lies outside the region (float rounding aside)
    assert maps[0, 0, 0].abs() < 1e-5 * maps.abs().max()
    assert maps.abs().sum() > 0


def test_smoothgrad_without_noise_is_saliency():
    model = SmallNet(classes=2).eval()
    x = torch.rand(2, 1, 16, 16)
    smooth = attribute(model, x, 1, resolve("smoothgrad", {"stdev": 0.0, "n_samples": 3}))
    assert torch.allclose(smooth, attribute(model, x, 1, resolve("saliency")), atol=1e-7)


@pytest.mark.parametrize("name", ["smoothgrad", "gradient_shap", "occlusion", "lime"])
def test_max_batch_changes_speed_not_results(name):
    model = RegionNet().eval()
    x = region_image(2, seed=3)
    config = resolve(name, FAST.get(name), seed=2)
    small = attribute(model, x, 1, config, max_batch=3)
    large = attribute(model, x, 1, config, max_batch=64)
    assert torch.allclose(small, large, atol=1e-6, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_models_run_gradient_and_perturbation_explainers_but_not_hook_ones():
    scripted = torch.jit.script(SmallNet(classes=2).eval())
    x = torch.rand(1, 1, 16, 16)
    for name in ("saliency", "occlusion"):
        assert attribute(scripted, x, 1, resolve(name)).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="TorchScript"):
        attribute(scripted, x, 1, resolve("gradcam"), cam_layer="relu2")
