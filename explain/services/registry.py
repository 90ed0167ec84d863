"""Writes of the model registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from core import audit
from core.errors import ServiceError
from explain.models import ClassifierModel
from library.services import _user_or_none


def model_register(
    *,
    acting_user,
    name: str,
    form: str,
    input_spec: dict,
    class_labels: list[str],
    architecture: str = "",
    init_kwargs: dict | None = None,
    weights_path: Path | None = None,
    torchscript_path: Path | None = None,
    positive_class: str | None = None,
    cam_layer: str = "",
    description: str = "",
) -> ClassifierModel:
    """Check a classifier by loading and running it once, then store it.

    The file is copied into storage under an opaque name with its sha256; the
    model's explainer support (and the reason for each unsupported explainer)
    is recorded.
    """
    from explain.compute import loading

    problems: list[str] = []
    name = (name or "").strip()
    if not name:
        problems.append("a model needs a name")
    elif ClassifierModel.objects.filter(name=name).exists():
        problems.append(f"a model named {name!r} already exists")
    if form not in ClassifierModel.Form.values:
        problems.append(f"form must be one of {', '.join(ClassifierModel.Form.values)}")
    init_kwargs = init_kwargs or {}
    if not isinstance(init_kwargs, dict):
        problems.append("constructor arguments must be a JSON object")
    try:
        spec = loading.InputSpec.from_dict(input_spec)
    except loading.ModelRejected as exc:
        problems.extend(exc.reasons)
        spec = None
    if not isinstance(class_labels, list) or not class_labels:
        problems.append("class labels must be a non-empty list")
        class_labels = []
    if positive_class is None and class_labels:
        positive_class = class_labels[-1]
    if class_labels and positive_class not in class_labels:
        problems.append(
            f"positive class {positive_class!r} is not one of the class labels {class_labels}"
        )
    file_path = Path(weights_path) if form == "eager" and weights_path else None
    if form == "torchscript":
        file_path = Path(torchscript_path) if torchscript_path else None
    if form == "eager" and not architecture:
        problems.append("an eager model needs its architecture as 'package.module:Class'")
    if form in ClassifierModel.Form.values and file_path is None:
        problems.append(
            "a weights file is required" if form == "eager" else "a TorchScript file is required"
        )
    elif file_path is not None and not file_path.is_file():
        problems.append(f"{file_path}: no such file")
    if problems:
        raise ServiceError(problems)

    try:
        if form == "eager":
            model = loading.load_eager(architecture, init_kwargs, file_path)
        else:
            model = loading.load_torchscript(file_path)
        checked = loading.check_model(
            model, spec=spec, class_labels=class_labels, cam_layer=cam_layer or None
        )
        explainers = checked.explainers
    except loading.ModelRejected as exc:
        raise ServiceError(exc.reasons) from None

    sha256 = loading.file_sha256(file_path)
    model_uid = uuid.uuid4()
    suffix = file_path.suffix.lower() or ".bin"
    stored_name = default_storage.save(
        f"models/{model_uid}/{'weights' if form == 'eager' else 'model'}{suffix}",
        ContentFile(file_path.read_bytes()),
    )
    try:
        with transaction.atomic():
            registered = ClassifierModel.objects.create(
                uid=model_uid,
                name=name,
                description=description,
                form=form,
                architecture=architecture if form == "eager" else "",
                init_kwargs=init_kwargs if form == "eager" else {},
                weights_file=stored_name if form == "eager" else "",
                torchscript_file=stored_name if form == "torchscript" else "",
                file_sha256=sha256,
                input_spec=spec.to_dict(),
                class_labels=list(class_labels),
                positive_class=positive_class,
                cam_layer=checked.cam_layer or "",
                explainers=explainers,
                registration_check=_jsonable_check(checked),
                created_by=_user_or_none(acting_user),
            )
            audit.record(
                acting_user=acting_user,
                action="model.register",
                obj=registered,
                after={
                    "name": name,
                    "form": form,
                    "architecture": architecture,
                    "sha256": sha256,
                    "class_labels": class_labels,
                    "supported_explainers": registered.supported_explainers,
                },
            )
    except IntegrityError:
        default_storage.delete(stored_name)
        raise ServiceError(f"a model named {name!r} already exists") from None
    except BaseException:
        default_storage.delete(stored_name)
        raise
    return registered


def _jsonable_check(checked) -> dict:
    raw = checked.to_dict()
    raw.pop("explainers", None)
    return json.loads(json.dumps(raw, default=str))
