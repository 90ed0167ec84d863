"""Storing one prepared case: its files first (staged), then its rows and audit entry in
one transaction; a failure anywhere removes the files, so an import never leaves half a case."""

from __future__ import annotations

import hashlib
import io
import uuid

import numpy as np
from django.db import transaction
from PIL import Image

from core import audit
from core.audit import acting_user_or_none
from core.storage import StagedWrites, staged_writes
from library.imaging import pixel_transfer
from library.models import Case, CaseLabel, Collection, LesionMask
from library.services.case_reading import PreparedCase

THUMBNAIL_SIZE = 256


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _thumbnail_bytes(display8: np.ndarray) -> bytes:
    image = Image.fromarray(display8)
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _save_case_files(staged: StagedWrites, folder: str, prepared: PreparedCase) -> dict:
    """The case's files in storage; the row's file fields (mask: the mask file or None)."""

    def put(name: str, content: bytes) -> str:
        return staged.save(f"{folder}/{name}", content)

    # what the viewer loads: the same values as 16-bit integers + rescale, compressed
    # (None when they have no exact 16-bit form; the viewer then gets pixels.npy)
    encoded = pixel_transfer.encode(prepared.pixels)
    return {
        "source_file": put(prepared.stored_name, prepared.stored_bytes),
        "pixels_file": put("pixels.npy", _npy_bytes(prepared.pixels)),
        "pixels_encoded_file": put("pixels.xrsp", encoded) if encoded is not None else "",
        "display_file": put("display.png", _png_bytes(prepared.display8)),
        "thumbnail_file": put("thumbnail.png", _thumbnail_bytes(prepared.display8)),
        "mask": (
            put("mask.png", _png_bytes((prepared.mask * 255).astype(np.uint8)))
            if prepared.mask is not None
            else None
        ),
    }


def case_store(*, acting_user, collection: Collection, prepared: PreparedCase) -> Case:
    """Store a prepared case in `collection` with its labels and mask; audited."""
    case_uid = uuid.uuid4()
    values = prepared.pixels.astype(np.float64, copy=False)
    with staged_writes() as staged:
        files = _save_case_files(staged, f"cases/{case_uid}", prepared)
        mask_name = files.pop("mask")
        with transaction.atomic():
            case = Case.objects.create(
                uid=case_uid,
                collection=collection,
                key=prepared.key,
                source_format=prepared.source_format,
                source_sha256=prepared.source_sha256,
                stored_sha256=hashlib.sha256(prepared.stored_bytes).hexdigest(),
                rows=prepared.pixels.shape[0],
                columns=prepared.pixels.shape[1],
                value_min=float(values.min()),
                value_max=float(values.max()),
                split=prepared.split,
                clinical_history=prepared.clinical_history,
                imported_by=acting_user_or_none(acting_user),
                **files,
                **{k: v for k, v in prepared.meta.items() if v is not None},
            )
            CaseLabel.objects.bulk_create(
                [
                    CaseLabel(case=case, name=name, value=value)
                    for name, value in prepared.labels.items()
                ]
            )
            if mask_name is not None:
                LesionMask.objects.create(
                    case=case, label="", file=mask_name, pixel_count=int(prepared.mask.sum())
                )
            audit.record(
                acting_user=acting_user,
                action="case.import",
                obj=case,
                after={
                    "collection": collection.name,
                    "key": prepared.key,
                    "format": prepared.source_format,
                    "stored_sha256": case.stored_sha256,
                    "labels": prepared.labels,
                    "mask": mask_name is not None,
                    "clinical_history": prepared.clinical_history,
                },
            )
    return case
