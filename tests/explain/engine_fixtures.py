"""A small imported collection and a registered demo-architecture model for engine tests."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from django.core.management import call_command
from safetensors.torch import save_file

from explain import services
from explain.models import ClassifierModel
from library.models import Collection

SPEC = {"size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.25]}


def import_demo_collection(demo_dataset: Path, name: str = "engine") -> Collection:
    call_command(
        "import_cases",
        str(demo_dataset / "images"),
        collection=name,
        labels=str(demo_dataset / "labels.csv"),
        no_progress=True,
        stdout=io.StringIO(),
    )
    return Collection.objects.get(name=name)


def register_demo_architecture(tmp_path: Path, name: str = "engine-net") -> ClassifierModel:
    from explain.compute.models import AttentionResNet

    torch.manual_seed(0)
    weights = tmp_path / f"{name}.safetensors"
    save_file(AttentionResNet(in_channels=1, num_classes=2, width=8).state_dict(), str(weights))
    return services.model_register(
        acting_user=None,
        name=name,
        form="eager",
        architecture="explain.compute.models:AttentionResNet",
        init_kwargs={"in_channels": 1, "num_classes": 2, "width": 8},
        weights_path=weights,
        input_spec=SPEC,
        class_labels=["normal", "nodule"],
        cam_layer="layer3",
    )
