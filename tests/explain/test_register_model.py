"""Model registration through the service and the command."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import torch
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from safetensors.torch import save_file

from core.models import AuditEntry
from explain import services
from explain.models import ClassifierModel
from tests.explain.toy_models import GoodNet

pytestmark = pytest.mark.django_db

SPEC = {"size": [16, 16], "channels": 1, "mean": [0.5], "std": [0.25]}
ARCH = "tests.explain.toy_models:GoodNet"


@pytest.fixture
def good_weights(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "weights.safetensors"
    save_file(GoodNet().state_dict(), str(path))
    return path


def _register(coordinator, **overrides):
    arguments = dict(
        acting_user=coordinator,
        name="toy",
        form="eager",
        architecture=ARCH,
        input_spec=SPEC,
        class_labels=["normal", "nodule"],
        cam_layer="conv2",
    )
    arguments.update(overrides)
    return services.model_register(**arguments)


def test_an_eager_model_is_checked_stored_with_its_checksum_and_audited(coordinator, good_weights):
    model = _register(coordinator, weights_path=good_weights)
    import hashlib

    assert model.file_sha256 == hashlib.sha256(good_weights.read_bytes()).hexdigest()
    assert default_storage.open(model.weights_file.name).read() == good_weights.read_bytes()
    assert model.positive_class == "nodule"
    assert model.registration_check["output_shape"] == [1, 2]
    assert set(model.supported_explainers) >= {
        "gradcam",
        "integrated_gradients",
        "occlusion",
        "similar_cases",
    }
    entry = AuditEntry.objects.get(action="model.register")
    assert entry.actor == coordinator and entry.after["sha256"] == model.file_sha256


def test_a_torchscript_model_supports_only_input_output_explainers(coordinator, tmp_path):
    path = tmp_path / "toy.pt"
    torch.jit.trace(GoodNet().eval(), torch.zeros(1, 1, 16, 16)).save(str(path))
    model = _register(
        coordinator, form="torchscript", architecture="", torchscript_path=path, cam_layer=""
    )
    assert set(model.supported_explainers) == {
        "saliency",
        "smoothgrad",
        "integrated_gradients",
        "gradient_shap",
        "occlusion",
        "lime",
        "kernel_shap",
    }
    assert "TorchScript" in model.explainers["gradcam"]["reason"]


def test_a_wrong_number_of_classes_is_rejected_and_nothing_is_stored(coordinator, good_weights):
    with pytest.raises(services.ServiceError, match="3 class labels"):
        _register(coordinator, weights_path=good_weights, class_labels=["a", "b", "c"])
    assert not ClassifierModel.objects.exists()
    assert not any(Path(default_storage.location).rglob("*.safetensors"))


def test_an_arbitrary_pickle_is_never_loaded(coordinator, tmp_path):
    path = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    path.write_bytes(pickle.dumps({"weight": Boom()}))
    with pytest.raises(services.ServiceError) as excinfo:
        _register(coordinator, weights_path=path)
    assert "state_dict" in str(excinfo.value) or "pickle" in str(excinfo.value)


def test_a_missing_class_in_the_architecture_path_is_a_clear_error(coordinator, good_weights):
    with pytest.raises(services.ServiceError, match="NoSuchNet"):
        _register(
            coordinator,
            weights_path=good_weights,
            architecture="tests.explain.toy_models:NoSuchNet",
        )


def test_a_duplicate_name_is_refused(coordinator, good_weights):
    _register(coordinator, weights_path=good_weights)
    with pytest.raises(services.ServiceError, match="already exists"):
        _register(coordinator, weights_path=good_weights)


def test_the_command_registers_and_lists_explainer_support(good_weights):
    out = io.StringIO()
    call_command(
        "register_model",
        name="cli-toy",
        architecture=ARCH,
        weights=str(good_weights),
        classes="normal,nodule",
        input_size=[16, 16],
        cam_layer="conv2",
        stdout=out,
    )
    text = out.getvalue()
    assert "registered cli-toy" in text
    assert "gradcam" in text and "supported" in text


def test_the_command_prints_one_line_per_problem_and_exits_1(tmp_path):
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "register_model",
            name="",
            architecture="nonsense",
            weights=str(tmp_path / "missing.safetensors"),
            classes="a",
            input_size=[16, 16],
            init_kwargs="{not json",
            stderr=err,
            stdout=io.StringIO(),
        )
    assert excinfo.value.returncode == 1
    assert "--init-kwargs is not valid JSON" in err.getvalue()
