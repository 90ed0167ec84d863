"""Reads of the case library and the model registry."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Count, Q, QuerySet

from explain.models import Case, ClassifierModel, Collection


def collection_list() -> QuerySet[Collection]:
    return Collection.objects.annotate(
        case_count=Count("cases", distinct=True),
        labelled_count=Count("cases", filter=Q(cases__labels__isnull=False), distinct=True),
        mask_count=Count("cases__masks", distinct=True),
    ).order_by("name")


def collection_get(*, collection_id: int) -> Collection:
    return collection_list().get(pk=collection_id)


def case_list(*, collection: Collection) -> QuerySet[Case]:
    return (
        Case.objects.filter(collection=collection)
        .prefetch_related("labels", "masks")
        .order_by("key")
    )


def case_get(*, case_id: int) -> Case:
    return (
        Case.objects.select_related("collection")
        .prefetch_related("labels", "masks")
        .get(pk=case_id)
    )


def model_list() -> QuerySet[ClassifierModel]:
    return ClassifierModel.objects.order_by("name")


def model_get(*, model_id: int) -> ClassifierModel:
    return ClassifierModel.objects.get(pk=model_id)


def _spec_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def case_display01(*, case: Case) -> np.ndarray:
    """The windowed, [0, 1] image both the display PNG and the model input come from."""
    from explain.imaging import display
    from explain.imaging.dicom_read import read_dicom
    from explain.imaging.raster import raster_display01, read_raster

    with default_storage.open(case.source_file.name, "rb") as handle:
        data = handle.read()
    limit = max(len(data) + 1, 1024)
    if case.source_format == Case.SourceFormat.DICOM:
        image = read_dicom(
            data,
            max_bytes=limit,
            max_pixels=case.rows * case.columns * max(case.number_of_frames, 1) * 4,
        )
        return display.display01(image)
    raster = read_raster(data, max_bytes=limit, max_pixels=case.rows * case.columns * 4)
    return raster_display01(raster)


def case_model_input(*, case: Case, input_spec: dict) -> np.ndarray:
    """The model input for `case` under `input_spec`, computed once and cached in storage."""
    from explain.imaging import display

    name = f"cases/{case.uid}/input-{_spec_key(input_spec)}.npy"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            return np.load(io.BytesIO(handle.read()), allow_pickle=False)
    values01 = case_display01(case=case)
    array = display.to_model_input(
        values01,
        size=tuple(input_spec["size"]),
        channels=int(input_spec["channels"]),
        mean=input_spec["mean"],
        std=input_spec["std"],
    ).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(buffer.getvalue()))
    return array


def case_ground_truth(*, case: Case) -> dict[str, int]:
    return {label.name: label.value for label in case.labels.all()}


def case_list_all() -> QuerySet[Case]:
    return Case.objects.select_related("collection").prefetch_related("labels", "masks")


def precompute_progress(*, job) -> dict:
    """Counts per status, overall and per configuration, plus the failures' reasons."""
    from django.db.models import Count

    from explain.models import PrecomputeItem

    job.refresh_from_db(fields=["status", "finished_at"])
    statuses = [choice for choice, _ in PrecomputeItem.Status.choices]
    overall = dict.fromkeys(statuses, 0)
    per_config: dict[str, dict] = {}
    for row in job.items.values("config_key", "status").annotate(n=Count("id")):
        overall[row["status"]] += row["n"]
        per_config.setdefault(row["config_key"], dict.fromkeys(statuses, 0))[row["status"]] += row[
            "n"
        ]
    for counts in per_config.values():
        counts["total"] = sum(counts[s] for s in statuses)
    failures = [
        {"case": case_id, "config": key, "error": error}
        for case_id, key, error in job.items.filter(status=PrecomputeItem.Status.FAILED)
        .order_by("pk")
        .values_list("case_id", "config_key", "error")[:50]
    ]
    return {
        "job": job.pk,
        "status": job.status,
        "model": job.model.name,
        "collection": job.collection.name,
        "total": sum(overall.values()),
        **overall,
        "per_config": per_config,
        "failures": failures,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def job_list():
    from explain.models import PrecomputeJob

    return PrecomputeJob.objects.select_related("model", "collection").order_by("-created_at")


def explanation_metrics_summary(*, model, collection=None) -> dict[str, dict]:
    """Per explainer configuration (placebo separate): each metric summarised over cases."""
    from collections import defaultdict

    from explain.compute.metrics import summarize
    from explain.models import Explanation

    rows = Explanation.objects.filter(model=model)
    if collection is not None:
        rows = rows.filter(case__collection=collection)
    values: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    counts: dict[str, int] = defaultdict(int)
    for explainer, placebo, metrics in rows.values_list("explainer", "placebo", "metrics"):
        key = explainer + (" (placebo)" if placebo else "")
        counts[key] += 1
        for name, value in (metrics or {}).items():
            if isinstance(value, bool | int | float) or value is None:
                values[key][name].append(value)
    return {
        key: {"explanations": counts[key], "metrics": {name: summarize(v) for name, v in sorted(values[key].items())}}
        for key in sorted(counts)
    }


def explainer_config_resolve(
    *, model, explainer: str, params: dict | None = None, seed: int = 0, placebo: bool = False
) -> dict:
    """The canonical configuration {key, explainer, params, seed, placebo, param_hash} of one
    explainer for `model`, exactly as a precompute job stores it (so other apps can ask whether
    its results exist). Raises ServiceError when the model cannot run it."""
    from explain.services.precompute import _resolve_configs

    entry = {"explainer": explainer, "params": params or None, "seed": seed}
    configs = _resolve_configs(model, [] if placebo else [entry], [entry] if placebo else [])
    return configs[0]
