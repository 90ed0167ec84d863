import warnings

import pytest
import torch
from captum.attr import LRP, GuidedGradCam, IntegratedGradients, LayerGradCam, Occlusion, Saliency
from captum.attr._utils.lrp_rules import IdentityRule
from torch import nn

from explain.compute.catalog import EXPLAINERS, explainer_support, keep_lrp_rules
from explain.compute.loading import InputSpec, ModelRejected
from explain.compute.model_check import check_model
from tests.explain.toy_models import (
    DetachedNet,
    GoodNet,
    InplaceReluNet,
    PlainNet,
    ReusedReluNet,
    UnsupportedLayerNet,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

SPEC = InputSpec(size=(16, 16), channels=1, mean=(0.5,), std=(0.25,))
ALL = set(EXPLAINERS)
INPUT_ONLY = {
    "saliency", "smoothgrad", "integrated_gradients", "gradient_shap",
    "occlusion", "lime", "kernel_shap",
}
CAM = {"gradcam", "gradcam_plus_plus", "layercam"}


def support(model, cam_layer="conv2", form="eager"):
    return explainer_support(model, form=form, cam_layer=cam_layer, spec=SPEC)


def supported(result):
    return {name for name, info in result.items() if info["supported"]}


def test_the_catalog_lists_the_fourteen_explainers_in_order_with_families():
    assert list(EXPLAINERS) == [
        "gradcam", "gradcam_plus_plus", "layercam", "saliency", "smoothgrad",
        "integrated_gradients", "gradient_shap", "guided_gradcam", "occlusion", "lime",
        "kernel_shap", "lrp", "attention", "similar_cases",
    ]
    families = {name: info.family for name, info in EXPLAINERS.items()}
    assert {n for n, f in families.items() if f == "cam"} == CAM
    assert {n for n, f in families.items() if f in ("gradient", "perturbation")} == INPUT_ONLY
    assert families["guided_gradcam"] == "hybrid"
    assert all(info.label and info.name == name for name, info in EXPLAINERS.items())
    assert "cam_layer" in EXPLAINERS["guided_gradcam"].needs
    assert "hooks" not in EXPLAINERS["occlusion"].needs


def test_a_well_built_model_supports_every_explainer():
    result = support(GoodNet())
    assert supported(result) == ALL
    assert all(info["reason"] == "" for info in result.values())


def test_a_reused_relu_rules_out_guided_gradcam_and_lrp_and_names_the_module():
    result = support(ReusedReluNet())
    assert supported(result) == ALL - {"guided_gradcam", "lrp"}
    expected = "module 'relu1' (ReLU) is applied 2 times per forward"
    assert result["guided_gradcam"]["reason"].startswith(expected)
    assert "guided backpropagation needs a distinct ReLU module per use" in (
        result["guided_gradcam"]["reason"]
    )
    assert result["lrp"]["reason"].startswith(expected)


def test_an_in_place_relu_rules_out_guided_gradcam_and_lrp():
    result = support(InplaceReluNet())
    assert supported(result) == ALL - {"guided_gradcam", "lrp"}
    for name in ("guided_gradcam", "lrp"):
        assert "module 'relu2' (ReLU) works in place (inplace=True)" in result[name]["reason"]


def test_a_layer_without_an_lrp_rule_rules_out_only_lrp():
    result = support(UnsupportedLayerNet())
    assert supported(result) == ALL - {"lrp"}
    assert result["lrp"]["reason"].startswith("module 'relu2' (SiLU) has no LRP rule")


def test_a_rule_attribute_makes_an_unknown_layer_acceptable_and_survives_the_check():
    model = UnsupportedLayerNet()
    rule = IdentityRule()
    model.relu2.rule = rule
    assert supported(support(model)) == ALL
    assert model.relu2.rule is rule  # captum's LRP deletes rules; the check restores them


def test_keep_lrp_rules_restores_what_captum_deletes():
    model = UnsupportedLayerNet().eval()
    x = torch.randn(1, 1, 16, 16)
    model.relu2.rule = IdentityRule()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LRP(model).attribute(x, target=0)
        assert not hasattr(model.relu2, "rule")  # the captum behaviour being worked around
        model.relu2.rule = IdentityRule()
        with keep_lrp_rules(model):
            LRP(model).attribute(x, target=0)
    assert isinstance(model.relu2.rule, IdentityRule)
    assert not hasattr(model.conv1, "rule")  # default rules captum attached are not kept


def test_a_graph_cut_rules_out_every_gradient_based_explainer():
    result = support(DetachedNet())
    assert supported(result) == {"occlusion", "lime", "kernel_shap", "attention",
                                 "similar_cases"}
    assert "the output does not depend on the input" in result["saliency"]["reason"]
    assert "no gradient reaches layer 'conv2'" in result["gradcam"]["reason"]


def test_missing_attention_embedding_and_flatten_rule_are_each_explained():
    result = support(PlainNet(), cam_layer="features.0")
    assert supported(result) == ALL - {"lrp", "attention", "similar_cases"}
    assert result["lrp"]["reason"].startswith("module 'head.0' (Flatten) has no LRP rule")
    assert "no module has a `last_map` attribute" in result["attention"]["reason"]
    assert "the model has no `embedding` method" in result["similar_cases"]["reason"]


def test_without_a_cam_layer_the_cam_family_is_unavailable():
    result = support(PlainNet(), cam_layer=None)
    assert supported(result) == INPUT_ONLY
    assert result["gradcam"]["reason"].startswith("no CAM layer was named")
    assert result["guided_gradcam"]["reason"].startswith("no CAM layer was named")


def test_without_a_named_cam_layer_the_models_own_cam_layer_name_is_used():
    assert supported(support(GoodNet(), cam_layer=None)) == ALL


def test_a_cam_layer_without_a_feature_map_is_explained_with_its_shape():
    result = support(GoodNet(), cam_layer="fc")
    assert "layer 'fc' (Linear) gives output of shape (1, 2)" in result["layercam"]["reason"]
    assert not result["guided_gradcam"]["supported"]


def test_a_cam_layer_used_twice_is_refused():
    result = support(ReusedReluNet(), cam_layer="relu1")
    assert "layer 'relu1' (ReLU) is applied 2 times per forward" in result["gradcam"]["reason"]


def test_an_attention_map_of_the_wrong_shape_is_explained():
    class FlatAttention(GoodNet):
        def forward(self, x):
            out = super().forward(x)
            self.attention.last_map = torch.zeros(1, 4, 8, 8)
            return out

    result = support(FlatAttention())
    assert supported(result) == ALL - {"attention"}
    assert "module 'attention' (SpatialAttention) stores `last_map` of shape (1, 4, 8, 8)" in (
        result["attention"]["reason"]
    )


def test_torchscript_supports_exactly_the_input_only_explainers():
    scripted = torch.jit.trace(GoodNet().eval(), torch.zeros(1, 1, 16, 16))
    result = support(scripted, cam_layer=None, form="torchscript")
    assert supported(result) == INPUT_ONLY
    assert result["gradcam"]["reason"] == "TorchScript modules accept no forward hooks"
    assert result["lrp"]["reason"] == "TorchScript modules accept no forward hooks"
    assert "TorchScript does not expose" in result["similar_cases"]["reason"]


def test_the_form_must_match_the_model():
    with pytest.raises(ValueError, match="form 'torchscript' given for a model that is eager"):
        support(GoodNet(), form="torchscript")
    with pytest.raises(ValueError, match="form must be one of"):
        support(GoodNet(), form="onnx")


def test_a_failing_forward_is_a_rejection_and_training_mode_is_restored():
    model = GoodNet().train()
    bad = InputSpec(size=(16, 16), channels=3, mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ModelRejected, match="forward pass failed: RuntimeError"):
        explainer_support(model, form="eager", cam_layer="conv2", spec=bad)
    assert model.training
    support(model)
    assert model.training


def test_explainers_marked_supported_really_run_through_captum():
    model = GoodNet().eval()
    assert supported(support(model)) == ALL
    x = torch.rand(1, 1, 16, 16)
    runs = {
        "gradcam": lambda: LayerGradCam(model, model.conv2).attribute(x, target=1),
        "saliency": lambda: Saliency(model).attribute(x, target=1),
        "integrated_gradients": lambda: IntegratedGradients(model).attribute(
            x, target=1, n_steps=8),
        "guided_gradcam": lambda: GuidedGradCam(model, model.conv2).attribute(x, target=1),
        "lrp": lambda: LRP(model).attribute(x, target=1),
        "occlusion": lambda: Occlusion(model).attribute(
            x, target=1, sliding_window_shapes=(1, 4, 4), strides=(1, 4, 4)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, run in runs.items():
            attribution = run()
            assert torch.isfinite(attribution).all(), name
    with torch.no_grad():
        model(x)
    assert model.attention.last_map.shape == (1, 1, 8, 8)
    assert model.embedding(x).shape == (1, 4)


def test_layers_marked_without_lrp_rule_really_fail_in_captum():
    model = UnsupportedLayerNet().eval()
    with pytest.raises(TypeError, match="no rule"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LRP(model).attribute(torch.rand(1, 1, 16, 16), target=0)


def test_a_broadcasting_module_with_a_rule_is_caught_by_the_trial_lrp_run():
    class Gate(nn.Module):
        def forward(self, x, m):
            return x * m

    class BroadcastNet(GoodNet):
        def __init__(self):
            super().__init__()
            self.gate = Gate()
            self.gate.rule = IdentityRule()  # passes relevance on unchanged: output-shaped
            self.squeeze = nn.Conv2d(4, 1, 1)

        def forward(self, x):
            x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
            x = self.gate(x, self.squeeze(x))  # (1, 4, h, w) * (1, 1, h, w)
            return self.fc(torch.flatten(self.pool(x), 1))

    result = support(BroadcastNet())
    assert not result["lrp"]["supported"]
    assert result["lrp"]["reason"].startswith("a trial LRP run failed (RuntimeError")


def test_the_demo_attention_resnet_supports_every_explainer():
    from explain.compute.models import DEMO_INPUT_SPEC, AttentionResNet

    model = AttentionResNet(in_channels=1, num_classes=2, width=8)
    spec = InputSpec.from_dict(DEMO_INPUT_SPEC)
    check = check_model(model, spec=spec, class_labels=["normal", "nodule"], cam_layer=None)
    unsupported = {n: i["reason"] for n, i in check.explainers.items() if not i["supported"]}
    assert unsupported == {}
    assert check.cam_layer == AttentionResNet.cam_layer_name
