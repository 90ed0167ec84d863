"""REST endpoints of the model registry."""

from __future__ import annotations

import pytest
import torch
from rest_framework.test import APIClient
from safetensors.torch import save_file

from explain.models import ClassifierModel
from tests.explain.toy_models import GoodNet

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(coordinator) -> APIClient:
    client = APIClient()
    client.force_authenticate(coordinator)
    return client


def test_a_model_is_registered_through_the_api(api, tmp_path):
    path = tmp_path / "w.safetensors"
    save_file(GoodNet().state_dict(), str(path))
    with path.open("rb") as handle:
        response = api.post(
            "/api/v1/models/",
            {
                "name": "api-toy",
                "form": "eager",
                "architecture": "tests.explain.toy_models:GoodNet",
                "file": handle,
                "input_spec": '{"size": [16, 16], "channels": 1, "mean": [0.5], "std": [0.25]}',
                "class_labels": '["normal", "nodule"]',
                "cam_layer": "conv2",
            },
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["positive_class"] == "nodule" and "gradcam" in body["supported_explainers"]
    assert api.get(f"/api/v1/models/{body['id']}/").json()["file_sha256"] == body["file_sha256"]


def test_a_bad_model_upload_answers_400_with_every_reason(api, tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"nonsense": torch.zeros(2)}, str(path))
    with path.open("rb") as handle:
        response = api.post(
            "/api/v1/models/",
            {
                "name": "broken",
                "form": "eager",
                "architecture": "tests.explain.toy_models:GoodNet",
                "file": handle,
                "input_spec": '{"size": [16, 16], "channels": 1, "mean": [0.5], "std": [0.25]}',
                "class_labels": '["normal", "nodule"]',
            },
            format="multipart",
        )
    assert response.status_code == 400
    assert response.json()["problems"]
    assert not ClassifierModel.objects.exists()
