"""Per-process caches a worker keeps between tasks: loaded models and their
weight-randomized copies (loading a model for every task would dominate the
cost of fast explainers)."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import torch
from django.core.files.storage import default_storage

from explain.compute import loading
from explain.compute.explainers import randomized_copy
from explain.models import ClassifierModel


def _local_path(name: str) -> tuple[Path, bool]:
    try:
        return Path(default_storage.path(name)), False
    except NotImplementedError:  # remote storage: copy to a temporary file
        suffix = Path(name).suffix
        with (
            default_storage.open(name, "rb") as source,
            tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as target,
        ):
            target.write(source.read())
        return Path(target.name), True


@lru_cache(maxsize=4)
def _load(model_id: int, sha256: str, device: str) -> torch.nn.Module:
    record = ClassifierModel.objects.get(pk=model_id)
    name = (
        record.weights_file.name
        if record.form == ClassifierModel.Form.EAGER
        else record.torchscript_file.name
    )
    path, temporary = _local_path(name)
    try:
        if record.form == ClassifierModel.Form.EAGER:
            model = loading.load_eager(record.architecture, record.init_kwargs, path, device=device)
        else:
            model = loading.load_torchscript(path, device=device)
    finally:
        if temporary:
            path.unlink(missing_ok=True)
    return model.eval()


def load_model(record: ClassifierModel, device: torch.device) -> torch.nn.Module:
    return _load(record.pk, record.file_sha256, str(device))


@lru_cache(maxsize=4)
def _randomized(model_id: int, sha256: str, device: str, seed: int) -> torch.nn.Module:
    record = ClassifierModel.objects.get(pk=model_id)
    return randomized_copy(load_model(record, torch.device(device)), seed=seed).eval()


def load_randomized_model(
    record: ClassifierModel, device: torch.device, *, seed: int
) -> torch.nn.Module:
    return _randomized(record.pk, record.file_sha256, str(device), seed)
