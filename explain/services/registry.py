"""Writes of the model registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.db import IntegrityError, transaction

from core import audit
from core.audit import acting_user_or_none
from core.errors import ServiceError
from core.storage import staged_writes
from explain.compute import loading
from explain.compute.model_check import ModelCheck, check_model
from explain.models import ClassifierModel
from library.services import uploaded_file_path


def model_register_upload(*, acting_user, uploaded, form: str, **fields) -> ClassifierModel:
    """`model_register` for a file uploaded through a page or the API: the eager weights or the
    TorchScript file, by the model's form."""
    with uploaded_file_path(uploaded) as path:
        return model_register(
            acting_user=acting_user,
            form=form,
            weights_path=path if form == "eager" else None,
            torchscript_path=path if form == "torchscript" else None,
            **fields,
        )


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
    name = (name or "").strip()
    init_kwargs = init_kwargs or {}
    file_path = Path(weights_path) if form == "eager" and weights_path else None
    if form == "torchscript":
        file_path = Path(torchscript_path) if torchscript_path else None
    if positive_class is None and isinstance(class_labels, list) and class_labels:
        positive_class = class_labels[-1]
    problems, spec = _request_problems(
        name, form, init_kwargs, input_spec, class_labels, positive_class, architecture, file_path
    )
    if problems:
        raise ServiceError(problems)
    checked = _checked(form, architecture, init_kwargs, file_path, spec, class_labels, cam_layer)
    fields = dict(
        name=name,
        description=description,
        form=form,
        architecture=architecture if form == "eager" else "",
        init_kwargs=init_kwargs if form == "eager" else {},
        file_sha256=loading.file_sha256(file_path),
        input_spec=spec.to_dict(),
        class_labels=list(class_labels),
        positive_class=positive_class,
        cam_layer=checked.cam_layer or "",
        explainers=checked.explainers,
        registration_check=_jsonable_check(checked),
        created_by=acting_user_or_none(acting_user),
    )
    return _stored(acting_user, file_path, fields, architecture)


def _request_problems(
    name, form, init_kwargs, input_spec, class_labels, positive_class, architecture, file_path
) -> tuple[list[str], loading.InputSpec | None]:
    """Every problem of the request, one line each, in the order of the form's fields; and
    the input spec when it is valid."""
    problems: list[str] = []
    spec = None
    if not name:
        problems.append("a model needs a name")
    elif ClassifierModel.objects.filter(name=name).exists():
        problems.append(f"a model named {name!r} already exists")
    if form not in ClassifierModel.Form.values:
        problems.append(f"form must be one of {', '.join(ClassifierModel.Form.values)}")
    if not isinstance(init_kwargs, dict):
        problems.append("constructor arguments must be a JSON object")
    try:
        spec = loading.InputSpec.from_dict(input_spec)
    except loading.ModelRejected as exc:
        problems.extend(exc.reasons)
    if not isinstance(class_labels, list) or not class_labels:
        problems.append("class labels must be a non-empty list")
    elif positive_class not in class_labels:
        problems.append(
            f"positive class {positive_class!r} is not one of the class labels {class_labels}"
        )
    if form == "eager" and not architecture:
        problems.append("an eager model needs its architecture as 'package.module:Class'")
    if form in ClassifierModel.Form.values and file_path is None:
        problems.append(
            "a weights file is required" if form == "eager" else "a TorchScript file is required"
        )
    elif file_path is not None and not file_path.is_file():
        problems.append(f"{file_path}: no such file")
    return problems, spec


def _checked(form, architecture, init_kwargs, file_path, spec, class_labels, cam_layer):
    """Load the model and run it once; its check, or ServiceError with the reasons."""
    try:
        if form == "eager":
            model = loading.load_eager(architecture, init_kwargs, file_path)
        else:
            model = loading.load_torchscript(file_path)
        return check_model(model, spec=spec, class_labels=class_labels, cam_layer=cam_layer or None)
    except loading.ModelRejected as exc:
        raise ServiceError(exc.reasons) from None


def _stored(acting_user, file_path: Path, fields: dict, architecture: str) -> ClassifierModel:
    """Copy the file into storage and create the row; the file goes again if the row fails."""
    model_uid = uuid.uuid4()
    eager = fields["form"] == "eager"
    suffix = file_path.suffix.lower() or ".bin"
    with staged_writes() as staged:
        stored_name = staged.save(
            f"models/{model_uid}/{'weights' if eager else 'model'}{suffix}", file_path.read_bytes()
        )
        try:
            with transaction.atomic():
                registered = ClassifierModel.objects.create(
                    uid=model_uid,
                    weights_file=stored_name if eager else "",
                    torchscript_file="" if eager else stored_name,
                    **fields,
                )
                audit.record(
                    acting_user=acting_user,
                    action="model.register",
                    obj=registered,
                    after={
                        "name": fields["name"],
                        "form": fields["form"],
                        "architecture": architecture,
                        "sha256": fields["file_sha256"],
                        "class_labels": fields["class_labels"],
                        "supported_explainers": registered.supported_explainers,
                    },
                )
        except IntegrityError:
            raise ServiceError(f"a model named {fields['name']!r} already exists") from None
    return registered


def _jsonable_check(checked: ModelCheck) -> dict:
    raw = checked.to_dict()
    raw.pop("explainers", None)
    return json.loads(json.dumps(raw, default=str))

