import hashlib

import pytest
import torch
from safetensors.torch import save_file

from explain.compute.loading import (
    InputSpec,
    ModelRejected,
    file_sha256,
    load_eager,
    load_state_dict_file,
    load_torchscript,
    resolve_architecture,
)
from explain.compute.model_check import check_model
from tests.explain import toy_models
from tests.explain.toy_models import GoodNet, WrongOutputNet

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

GOOD = "tests.explain.toy_models:GoodNet"
SPEC = InputSpec(size=(16, 16), channels=1, mean=(0.5,), std=(0.25,))


def reasons_of(excinfo) -> str:
    return " | ".join(excinfo.value.reasons)


def saved_good_net(tmp_path, name="good.pt", **kwargs):
    torch.manual_seed(1)
    model = GoodNet(**kwargs).eval()
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    return model, path


# ------------------------------------------------------------------ InputSpec


def test_input_spec_round_trips_through_a_dict():
    spec = InputSpec.from_dict({"size": [512, 480], "channels": 3, "mean": [0.1, 0.2, 0.3],
                                "std": [1, 2, 3]})
    assert spec == InputSpec(size=(512, 480), channels=3, mean=(0.1, 0.2, 0.3),
                             std=(1.0, 2.0, 3.0))
    assert InputSpec.from_dict(spec.to_dict()) == spec


def test_input_spec_collects_every_problem_in_one_rejection():
    with pytest.raises(ModelRejected) as excinfo:
        InputSpec.from_dict({"size": [0, 10], "channels": 2, "mean": [0.5], "std": [0.0]})
    text = reasons_of(excinfo)
    assert "two positive integers" in text
    assert "channels must be 1 or 3, got 2" in text
    assert "std values must all be > 0" in text
    assert len(excinfo.value.reasons) == 3


def test_input_spec_requires_one_mean_and_std_per_channel():
    with pytest.raises(ModelRejected) as excinfo:
        InputSpec.from_dict({"size": [8, 8], "channels": 3, "mean": [0.5], "std": [1, 1, 1]})
    assert excinfo.value.reasons == ["input mean has 1 values but there are 3 channels"]


def test_input_spec_names_missing_keys_and_rejects_booleans_as_sizes():
    with pytest.raises(ModelRejected) as excinfo:
        InputSpec.from_dict({"size": [8, 8]})
    assert len(excinfo.value.reasons) == 3
    with pytest.raises(ModelRejected, match="positive integers"):
        InputSpec.from_dict({"size": [True, 8], "channels": 1, "mean": [0], "std": [1]})


# ------------------------------------------------------------------ architecture


def test_architecture_string_resolves_to_the_module_class():
    assert resolve_architecture(GOOD) is GoodNet


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("tests.explain.toy_models.GoodNet", "package.module:ClassName"),
        ("tests.explain.toy_models:", "package.module:ClassName"),
        ("a:b:c", "package.module:ClassName"),
        ("tests.explain.toy_models:Good Net", "package.module:ClassName"),
        ("no_such_package_xyz.models:Net", "cannot import module 'no_such_package_xyz.models'"),
        ("tests.explain.toy_models:Missing", "has no attribute 'Missing'"),
        ("tests.explain.toy_models:not_a_class", "not a torch.nn.Module subclass"),
        ("torch.nn:Module", "not a model architecture"),
    ],
)
def test_bad_architecture_strings_are_rejected_with_a_reason(path, fragment):
    with pytest.raises(ModelRejected) as excinfo:
        resolve_architecture(path)
    assert fragment in str(excinfo.value)


def test_classes_that_are_not_modules_are_refused_without_being_instantiated():
    toy_models.NotAModule.instantiated = False
    with pytest.raises(ModelRejected, match="not a torch.nn.Module subclass"):
        resolve_architecture("tests.explain.toy_models:NotAModule")
    assert toy_models.NotAModule.instantiated is False


# ------------------------------------------------------------------ weights files


@pytest.mark.parametrize("name", ["w.pt", "w.pth", "w.bin", "w.safetensors"])
def test_state_dicts_load_from_every_accepted_format(tmp_path, name):
    model, path = saved_good_net(tmp_path, name)
    state = load_state_dict_file(path)
    assert set(state) == set(model.state_dict())
    assert torch.equal(state["conv1.weight"], model.conv1.weight)


def test_a_checkpoint_wrapping_the_state_dict_is_unwrapped(tmp_path):
    model = GoodNet()
    torch.save({"state_dict": model.state_dict(), "epoch": 7}, tmp_path / "ckpt.pt")
    state = load_state_dict_file(tmp_path / "ckpt.pt")
    assert torch.equal(state["fc.bias"], model.fc.bias)


def test_a_pickled_whole_module_is_never_unpickled(tmp_path):
    torch.save(GoodNet(), tmp_path / "whole.pt")
    with pytest.raises(ModelRejected) as excinfo:
        load_state_dict_file(tmp_path / "whole.pt")
    assert str(excinfo.value) == (
        "'whole.pt' is not a plain state_dict (arbitrary pickles are never loaded)"
    )


def test_non_tensor_values_are_rejected_and_named(tmp_path):
    torch.save({"weight": torch.zeros(2), "epoch": 3}, tmp_path / "mixed.pt")
    with pytest.raises(ModelRejected, match=r"non-tensor values for 'epoch' \(int\)"):
        load_state_dict_file(tmp_path / "mixed.pt")


def test_unknown_extensions_garbage_and_missing_files_are_rejected(tmp_path):
    (tmp_path / "w.ckpt").write_bytes(b"x")
    with pytest.raises(ModelRejected, match="must end in .safetensors, .pt, .pth or .bin"):
        load_state_dict_file(tmp_path / "w.ckpt")
    (tmp_path / "garbage.pt").write_bytes(b"this is not a torch file at all")
    with pytest.raises(ModelRejected, match="not a readable PyTorch weights file"):
        load_state_dict_file(tmp_path / "garbage.pt")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00\x01nonsense")
    with pytest.raises(ModelRejected, match="not a readable safetensors file"):
        load_state_dict_file(tmp_path / "garbage.safetensors")
    with pytest.raises(ModelRejected, match="does not exist"):
        load_state_dict_file(tmp_path / "absent.pt")


def test_a_torchscript_archive_given_as_weights_is_pointed_to_the_other_form(tmp_path):
    torch.jit.save(torch.jit.trace(GoodNet().eval(), torch.zeros(1, 1, 16, 16)),
                   str(tmp_path / "scripted.pt"))
    with pytest.raises(ModelRejected, match="register it as a TorchScript model"):
        load_state_dict_file(tmp_path / "scripted.pt")


# ------------------------------------------------------------------ eager models


def test_an_eager_model_loads_with_its_weights_in_eval_mode(tmp_path):
    model, path = saved_good_net(tmp_path, "w.safetensors", width=6)
    loaded = load_eager(GOOD, {"width": 6}, path)
    assert isinstance(loaded, GoodNet) and not loaded.training
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))


def test_missing_and_unexpected_weights_are_listed(tmp_path):
    torch.save(toy_models.PlainNet().state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ModelRejected) as excinfo:
        load_eager(GOOD, {}, tmp_path / "plain.pt")
    reasons = excinfo.value.reasons
    # GoodNet has 4 parameterised layers x (weight, bias) = 8 tensors, PlainNet has 4.
    assert reasons[0].startswith("8 weights missing from the file: 'conv1.weight'")
    assert reasons[0].endswith("and 3 more")
    assert reasons[1].startswith("4 unexpected weights in the file: 'features.0.weight'")


def test_shape_mismatches_name_the_key_and_both_shapes(tmp_path):
    _, path = saved_good_net(tmp_path, width=8)
    with pytest.raises(ModelRejected) as excinfo:
        load_eager(GOOD, {"width": 4}, path)
    text = str(excinfo.value)
    assert "'conv1.weight' is (8, 1, 3, 3) in the file but (4, 1, 3, 3) in the model" in text


def test_constructor_type_errors_become_a_reason(tmp_path):
    _, path = saved_good_net(tmp_path)
    with pytest.raises(ModelRejected) as excinfo:
        load_eager(GOOD, {"depth": 3}, path)
    assert str(excinfo.value).startswith("constructor rejected the arguments: ")
    assert "depth" in str(excinfo.value)


def test_unknown_devices_are_rejected(tmp_path):
    _, path = saved_good_net(tmp_path)
    with pytest.raises(ModelRejected, match="unknown device"):
        load_eager(GOOD, {}, path, device="quantum")


# ------------------------------------------------------------------ TorchScript


def test_a_torchscript_archive_loads_and_matches_the_eager_outputs(tmp_path):
    model = GoodNet().eval()
    x = torch.randn(1, 1, 16, 16)
    torch.jit.save(torch.jit.trace(model, x), str(tmp_path / "m.pt"))
    loaded = load_torchscript(tmp_path / "m.pt")
    assert isinstance(loaded, torch.jit.ScriptModule)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))


def test_a_state_dict_file_is_not_accepted_as_torchscript(tmp_path):
    _, path = saved_good_net(tmp_path)
    with pytest.raises(ModelRejected, match="is not a TorchScript archive"):
        load_torchscript(path)


# ------------------------------------------------------------------ check_model


def test_check_model_records_output_and_cam_layer_shapes():
    check = check_model(GoodNet(), spec=SPEC, class_labels=["normal", "nodule"],
                        cam_layer="conv2")
    assert check.output_shape == (1, 2)
    # conv2: kernel 3, stride 2, padding 1 on 16 px -> floor((16 + 2 - 3) / 2) + 1 = 8
    assert check.cam_layer_shape == (8, 8)
    assert check.seconds > 0
    assert check.supported_explainers == list(check.explainers)
    assert check.to_dict()["cam_layer_shape"] == [8, 8]


def test_check_model_falls_back_to_the_models_cam_layer_name():
    check = check_model(GoodNet(), spec=SPEC, class_labels=["a", "b"], cam_layer=None)
    assert check.cam_layer == GoodNet.cam_layer_name
    assert check.cam_layer_shape == (8, 8)


def test_an_output_with_the_wrong_number_of_classes_is_rejected():
    with pytest.raises(ModelRejected) as excinfo:
        check_model(WrongOutputNet(), spec=SPEC, class_labels=["a", "b"], cam_layer=None)
    assert str(excinfo.value) == "model output has shape (1, 3) but 2 class labels were given"


def test_non_finite_outputs_are_rejected():
    model = GoodNet()
    with torch.no_grad():
        model.fc.bias.fill_(float("nan"))
    with pytest.raises(ModelRejected, match="NaN or infinite"):
        check_model(model, spec=SPEC, class_labels=["a", "b"], cam_layer=None)


def test_class_labels_must_be_unique_and_non_blank():
    with pytest.raises(ModelRejected) as excinfo:
        check_model(GoodNet(), spec=SPEC, class_labels=["Edema", " ", "edema"], cam_layer=None)
    assert excinfo.value.reasons == [
        "class label 2 is blank or not a string: ' '",
        "class label 3 ('edema') repeats class label 1",
    ]
    with pytest.raises(ModelRejected, match="non-empty list"):
        check_model(GoodNet(), spec=SPEC, class_labels=[], cam_layer=None)


def test_forward_failures_become_reasons():
    three_channels = InputSpec(size=(16, 16), channels=3, mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ModelRejected) as excinfo:
        check_model(GoodNet(), spec=three_channels, class_labels=["a", "b"], cam_layer=None)
    assert str(excinfo.value).startswith("forward pass failed: RuntimeError: ")


@pytest.mark.parametrize(
    "layer, fragment",
    [
        ("decoder", "layer 'decoder' does not exist"),
        ("fc", "layer 'fc' (Linear) gives output of shape (1, 2), not a 4-D feature map"),
    ],
)
def test_a_named_cam_layer_must_exist_and_give_a_feature_map(layer, fragment):
    with pytest.raises(ModelRejected) as excinfo:
        check_model(GoodNet(), spec=SPEC, class_labels=["a", "b"], cam_layer=layer)
    assert fragment in str(excinfo.value)


def test_a_cam_layer_cannot_be_named_for_torchscript():
    scripted = torch.jit.trace(GoodNet().eval(), torch.zeros(1, 1, 16, 16))
    with pytest.raises(ModelRejected, match="only be named for eager models"):
        check_model(scripted, spec=SPEC, class_labels=["a", "b"], cam_layer="conv2")
    check = check_model(scripted, spec=SPEC, class_labels=["a", "b"], cam_layer=None)
    assert check.cam_layer is None and check.cam_layer_shape is None


def test_file_sha256_matches_hashlib_and_the_published_abc_digest(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert file_sha256(tmp_path / "abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    blob = bytes(range(256)) * 5000  # spans several read chunks
    (tmp_path / "blob").write_bytes(blob)
    assert file_sha256(tmp_path / "blob") == hashlib.sha256(blob).hexdigest()


def test_model_rejected_joins_its_reasons():
    exc = ModelRejected(["one", "two"])
    assert str(exc) == "one; two" and exc.reasons == ["one", "two"]
