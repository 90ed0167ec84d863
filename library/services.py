"""Writes of the case library.

Every service takes `acting_user` and records an audit row in the same
transaction as its write. Files are written to storage first and removed again
if the database transaction fails, so an import never leaves half a case.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image

from core import audit
from core.errors import ServiceError
from library import labels as labels_lib
from library.imaging import deidentify as deid
from library.imaging import display, pixel_transfer
from library.imaging.dicom_read import read_dicom
from library.imaging.errors import ImageRejected
from library.imaging.raster import raster_display01, raster_to_png_bytes, read_raster
from library.import_sources import (
    UPLOAD_MAX_FILES,
    ImportItem,
    TooLarge,
    Unreadable,
    collect_items,
    is_table,
)
from library.models import Case, CaseLabel, Collection, LesionMask

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


# --------------------------------------------------------------------------- collections


def collection_create(*, acting_user, name: str, description: str = "") -> Collection:
    name = (name or "").strip()
    if not name:
        raise ServiceError("a collection needs a name")
    if len(name) > 100:
        raise ServiceError("a collection name has at most 100 characters")
    with transaction.atomic():
        if Collection.objects.filter(name=name).exists():
            raise ServiceError(f"a collection named {name!r} already exists")
        collection = Collection.objects.create(
            name=name, description=description, created_by=_user_or_none(acting_user)
        )
        audit.record(
            acting_user=acting_user,
            action="collection.create",
            obj=collection,
            after={"name": name, "description": description},
        )
    return collection


def collection_get_or_create(*, acting_user, name: str) -> Collection:
    existing = Collection.objects.filter(name=name.strip()).first()
    return existing or collection_create(acting_user=acting_user, name=name)


# --------------------------------------------------------------------------- case import


@dataclass
class ImportReport:
    collection: str
    labels_format: str | None = None
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (file, code, reason)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def to_dict(self) -> dict:
        return {
            "collection": self.collection,
            "labels_format": self.labels_format,
            "imported": len(self.imported),
            "skipped": len(self.skipped),
            "rejected": [
                {"file": name, "code": code, "reason": reason}
                for name, code, reason in self.rejected
            ],
            "imported_keys": self.imported,
            "skipped_files": self.skipped,
        }


@dataclass
class _Prepared:
    """Everything one case needs, computed before anything is stored."""

    key: str
    source_format: str
    source_sha256: str
    stored_bytes: bytes
    stored_name: str
    pixels: np.ndarray
    display8: np.ndarray
    meta: dict
    labels: dict[str, int]
    split: str
    mask: np.ndarray | None


def cases_import(
    *,
    acting_user,
    collection: Collection | str,
    paths: list[Path],
    labels_path: Path | None = None,
    masks_dir: Path | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    max_files: int | None = None,
) -> ImportReport:
    """Import files, folders and zip archives into `collection` (an instance, or a
    name: then it is created once the request has passed its checks).

    Problems with the request as a whole (a missing path, an unreadable
    archive, a labels CSV with errors or rows matching no file) raise
    ServiceError before anything is stored. Individual files that fail
    validation are rejected with one reason each; the others are imported,
    each in its own transaction.
    """
    items, problems = collect_items(
        [Path(p) for p in paths],
        max_archive_bytes=settings.XRS_IMPORT_MAX_ARCHIVE_BYTES,
        max_files=max_files,
    )
    if problems:
        raise ServiceError(problems)

    rows_by_key: dict[str, labels_lib.LabelRow] = {}
    labels_format = None
    mask_items: dict[str, ImportItem] = {}
    if labels_path is not None:
        labels_path = Path(labels_path)
        if not labels_path.is_file():
            raise ServiceError(f"{labels_path}: no such labels file")
        if labels_path.stat().st_size > settings.XRS_IMPORT_MAX_BYTES:
            raise ServiceError(
                f"{labels_path.name}: the labels file is over the limit of "
                f"{settings.XRS_IMPORT_MAX_BYTES:,} bytes"
            )
        try:
            labels_format, rows = labels_lib.parse_labels_csv(labels_path)
        except labels_lib.LabelsError as exc:
            raise ServiceError([f"{labels_path.name}: {p}" for p in exc.problems]) from None
        mask_refs = {row.mask for row in rows if row.mask}
        mask_items = {
            item.relative_path: item
            for item in items
            if any(_ref_matches(item.relative_path, ref) for ref in mask_refs)
        }
    candidates = [
        item
        for item in items
        if not is_table(item)
        and item.relative_path not in mask_items
        and not (
            labels_path is not None
            and item._path is not None
            and item._path.resolve() == labels_path.resolve()
        )
        and not (
            masks_dir is not None and item._path is not None and _inside(item._path, masks_dir)
        )
    ]
    if not candidates:
        raise ServiceError("no image files found in " + ", ".join(str(p) for p in paths))
    keys: dict[str, ImportItem] = {}
    duplicate_keys: list[str] = []
    for item in candidates:
        key = labels_lib.file_key(item.relative_path)
        if key in keys:
            duplicate_keys.append(
                f"{item.display_name}: case key {key!r} also belongs to {keys[key].display_name}"
            )
        keys[key] = item
    if duplicate_keys:
        raise ServiceError(duplicate_keys)
    if labels_path is not None:
        try:
            rows_by_key = labels_lib.match_rows_to_files(rows, keys.keys())
        except labels_lib.LabelsError as exc:
            raise ServiceError([f"{labels_path.name}: {p}" for p in exc.problems]) from None
        missing_masks = []
        for row in rows_by_key.values():
            if row.mask and _find_mask(row.mask, labels_path, masks_dir, mask_items) is None:
                missing_masks.append(
                    f"{labels_path.name}: row {row.row}: mask file {row.mask[:200]!r} not found"
                )
        if missing_masks:
            raise ServiceError(missing_masks)

    if isinstance(collection, str):
        collection = collection_get_or_create(acting_user=acting_user, name=collection)
    report = ImportReport(collection=collection.name, labels_format=labels_format)
    total = len(keys)
    for index, (key, item) in enumerate(sorted(keys.items()), start=1):
        row = rows_by_key.get(key)
        try:
            prepared = _prepare_case(
                item=item,
                key=key,
                row=row,
                mask_source=_mask_source(row, key, labels_path, masks_dir, mask_items),
                labels_name=labels_path.name if labels_path else "labels",
            )
            existing = Case.objects.filter(
                collection=collection, source_sha256=prepared.source_sha256
            ).first()
            if existing is not None:
                report.skipped.append(
                    f"{item.display_name}: already in the collection as case {existing.key!r}"
                )
            elif Case.objects.filter(collection=collection, key=key).exists():
                report.rejected.append(
                    (
                        item.display_name,
                        "duplicate_key",
                        f"a different file with case key {key!r} is already in the collection",
                    )
                )
            else:
                _store_case(acting_user=acting_user, collection=collection, prepared=prepared)
                report.imported.append(key)
        except ImageRejected as exc:
            report.rejected.append((item.display_name, exc.code, exc.reason))
        except TooLarge as exc:
            report.rejected.append((item.display_name, "too_large", str(exc)))
        except Unreadable as exc:
            report.rejected.append((item.display_name, "unreadable_file", str(exc)))
        except _CaseProblem as exc:
            report.rejected.append((item.display_name, exc.code, exc.reason))
        except IntegrityError:
            report.skipped.append(f"{item.display_name}: imported concurrently by another request")
        if progress is not None:
            progress(index, total, item.display_name)
    return report


class _CaseProblem(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(Path(folder).resolve())
        return True
    except (ValueError, OSError):
        return False


def _is_file(path: Path) -> bool:
    """Path.is_file, False for names the file system refuses (too long, NUL bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _ref_matches(relative_path: str, ref: str) -> bool:
    ref = ref.replace("\\", "/").lstrip("./")
    return relative_path == ref or relative_path.endswith("/" + ref)


def _find_mask(ref: str, labels_path: Path | None, masks_dir: Path | None, mask_items: dict):
    """A mask named in the labels CSV: a file beside the CSV or in --masks, or an import item.

    A reference never leaves its folder: '../x.png' or '/etc/x.png' finds nothing there."""
    candidates = []
    if masks_dir is not None:
        candidates += [
            (Path(masks_dir), Path(masks_dir) / ref),
            (Path(masks_dir), Path(masks_dir) / PurePosixPath(ref).name),
        ]
    if labels_path is not None:
        candidates.append((labels_path.parent, labels_path.parent / ref))
    for folder, candidate in candidates:
        if _inside(candidate, folder) and _is_file(candidate):
            return candidate
    for rel, item in mask_items.items():
        if _ref_matches(rel, ref):
            return item
    return None


def _mask_source(row, key, labels_path, masks_dir, mask_items):
    if row is not None and row.mask:
        return _find_mask(row.mask, labels_path, masks_dir, mask_items), row.row
    if masks_dir is not None:
        stem = PurePosixPath(key)
        for suffix in (".png", ".npy"):
            for candidate in (
                Path(masks_dir) / f"{key}{suffix}",
                Path(masks_dir) / f"{stem.name}{suffix}",
            ):
                if _is_file(candidate):
                    return candidate, row.row if row is not None else None
    return None, None


def _sniff(data: bytes, relative_path: str) -> str:
    suffix = PurePosixPath(relative_path).suffix.lower()
    for kind, signature in (("png", PNG_SIGNATURE), ("jpeg", JPEG_SIGNATURE)):
        if data.startswith(signature):
            if suffix in DICOM_SUFFIXES:
                raise ImageRejected(
                    "not_dicom", f"named like a DICOM file ({suffix}) but is a {kind.upper()} image"
                )
            return kind
    if suffix in RASTER_SUFFIXES and data[128:132] != b"DICM":
        raise ImageRejected("unreadable_image", "named like a PNG/JPEG image but is not one")
    return "dicom"


def _prepare_case(*, item: ImportItem, key: str, row, mask_source, labels_name: str) -> _Prepared:
    max_bytes = settings.XRS_IMPORT_MAX_BYTES
    max_pixels = settings.XRS_IMPORT_MAX_PIXELS
    if len(key) > labels_lib.MAX_KEY_CHARS:
        raise _CaseProblem(
            "key_too_long",
            f"the case key (the path without its extension) has {len(key)} characters, "
            f"the limit is {labels_lib.MAX_KEY_CHARS}",
        )
    data = item.read(max_bytes=max_bytes)
    source_sha256 = hashlib.sha256(data).hexdigest()
    kind = _sniff(data, item.relative_path)
    if kind == "dicom":
        image = read_dicom(data, max_bytes=max_bytes, max_pixels=max_pixels)
        clean = deid.deidentify(image.dataset, secret=settings.XRS_DEID_SECRET.encode())
        stored = deid.dataset_to_bytes(clean)
        values01 = display.display01(image)
        pixels = image.modality_values
        presets = [
            {"center": p.center, "width": p.width, "name": p.name, "function": p.function}
            for p in image.voi_presets
        ]
        meta = {
            "modality": image.modality,
            "sop_class_uid": str(clean.get("SOPClassUID", "")),
            "patient_pseudonym": str(clean.get("PatientID", "")),
            "study_uid": str(clean.get("StudyInstanceUID", "")),
            "series_uid": str(clean.get("SeriesInstanceUID", "")),
            "sop_instance_uid": str(clean.get("SOPInstanceUID", "")),
            "is_color": image.is_color,
            "photometric": image.photometric,
            "bits_stored": image.bits_stored,
            "frame_index": image.frame_index,
            "number_of_frames": image.number_of_frames,
            "window_presets": presets,
        }
        stored_name = "source.dcm"
    else:
        raster = read_raster(data, max_bytes=max_bytes, max_pixels=max_pixels)
        stored = raster_to_png_bytes(raster.values, raster.bits)
        values01 = raster_display01(raster)
        pixels = raster.values
        meta = {
            "modality": "",
            "is_color": raster.is_color,
            "photometric": "RGB" if raster.is_color else "MONOCHROME2",
            "bits_stored": raster.bits,
            "window_presets": [],
        }
        stored_name = "source.png"
    display8 = np.clip(np.rint(values01 * 255.0), 0, 255).astype(np.uint8)
    mask = None
    mask_path, mask_row = mask_source
    if mask_path is not None:
        mask_bytes = (
            mask_path.read(max_bytes=max_bytes) if isinstance(mask_path, ImportItem) else None
        )
        try:
            mask_name = (
                mask_path.relative_path if isinstance(mask_path, ImportItem) else str(mask_path)
            )
            source = mask_bytes if mask_bytes is not None else Path(mask_path)
            if mask_bytes is not None and mask_name.lower().endswith(".npy"):
                source = mask_bytes
            mask = labels_lib.load_mask(source, shape=pixels.shape[:2])
        except labels_lib.LabelsError as exc:
            where = f"{labels_name} row {mask_row}: " if mask_row else ""
            raise _CaseProblem("bad_mask", f"{where}{'; '.join(exc.problems)}") from None
    return _Prepared(
        key=key,
        source_format=kind,
        source_sha256=source_sha256,
        stored_bytes=stored,
        stored_name=stored_name,
        pixels=pixels,
        display8=display8,
        meta=meta,
        labels=dict(row.labels) if row is not None else {},
        split=(row.split or "") if row is not None else "",
        mask=mask,
    )


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


def _store_case(*, acting_user, collection: Collection, prepared: _Prepared) -> Case:
    case_uid = uuid.uuid4()
    folder = f"cases/{case_uid}"
    written: list[str] = []

    def put(name: str, content: bytes) -> str:
        stored = default_storage.save(f"{folder}/{name}", ContentFile(content))
        written.append(stored)
        return stored

    try:
        source_name = put(prepared.stored_name, prepared.stored_bytes)
        pixels_name = put("pixels.npy", _npy_bytes(prepared.pixels))
        # what the viewer loads: the same values as 16-bit integers + rescale, compressed
        # (None when they have no exact 16-bit form; the viewer then gets pixels.npy)
        encoded = pixel_transfer.encode(prepared.pixels)
        encoded_name = put("pixels.xrsp", encoded) if encoded is not None else ""
        display_name = put("display.png", _png_bytes(prepared.display8))
        thumb_name = put("thumbnail.png", _thumbnail_bytes(prepared.display8))
        mask_name = (
            put("mask.png", _png_bytes((prepared.mask * 255).astype(np.uint8)))
            if prepared.mask is not None
            else None
        )
        values = prepared.pixels.astype(np.float64, copy=False)
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
                source_file=source_name,
                pixels_file=pixels_name,
                pixels_encoded_file=encoded_name,
                display_file=display_name,
                thumbnail_file=thumb_name,
                imported_by=_user_or_none(acting_user),
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
                },
            )
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return case


def _user_or_none(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _upload_name(uploaded, index: int) -> str:
    """The uploaded file's base name, usable as a file name in a temporary folder."""
    name = PurePosixPath((uploaded.name or "").replace("\\", "/")).name
    if name in ("", ".", ".."):
        return f"upload-{index}"
    if len(name.encode()) > 255:
        raise ServiceError(f"{name[:60]}…: the file name is longer than 255 bytes")
    return name


def uploaded_files_to_folder(files, *, folder: Path) -> list[Path]:
    """Write uploaded files (Django UploadedFile) into a temporary folder."""
    paths = []
    for index, uploaded in enumerate(files):
        name = _upload_name(uploaded, index)
        target = folder / f"{index:04d}" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            for chunk in uploaded.chunks():
                handle.write(chunk)
        paths.append(target)
    return paths


class TemporaryFolder:
    """A temporary folder removed on exit, for uploads."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="xrs-upload-"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def masks_to_folder(files, *, folder: Path) -> None:
    """Uploaded masks: plain files keep their names; zip archives are expanded safely."""

    folder.mkdir(parents=True, exist_ok=True)
    for index, uploaded in enumerate(files):
        name = _upload_name(uploaded, index)
        if name.lower().endswith(".zip"):
            archive_path = folder.parent / f"masks-{uuid.uuid4().hex}.zip"
            with archive_path.open("wb") as handle:
                for chunk in uploaded.chunks():
                    handle.write(chunk)
            items, problems = collect_items(
                [archive_path],
                max_archive_bytes=settings.XRS_IMPORT_MAX_ARCHIVE_BYTES,
                max_files=UPLOAD_MAX_FILES,
            )
            problems = [p.replace(str(archive_path), name) for p in problems]
            if problems:
                raise ServiceError(problems)
            for item in items:
                target = folder / item.relative_path
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    target.write_bytes(item.read(max_bytes=settings.XRS_IMPORT_MAX_BYTES))
                except (TooLarge, Unreadable) as exc:
                    raise ServiceError(f"{name}:{item.relative_path}: {exc}") from None
        else:
            with (folder / name).open("wb") as handle:
                for chunk in uploaded.chunks():
                    handle.write(chunk)


def cases_import_uploads(*, acting_user, collection: Collection, files, labels=None, masks=None) -> ImportReport:
    """`cases_import` for uploaded files (pages and API): written to a temporary
    folder, imported, and reported under the names the user uploaded."""
    import re

    with TemporaryFolder() as folder:
        prefix = re.compile(re.escape(str(folder)) + r"/(?:files|labels)/\d{4}/")
        try:
            paths = uploaded_files_to_folder(files, folder=folder / "files")
            labels_path = (
                uploaded_files_to_folder([labels], folder=folder / "labels")[0] if labels else None
            )
            masks_dir = None
            if masks:
                masks_dir = folder / "masks"
                masks_to_folder(masks, folder=masks_dir)
            report = cases_import(
                acting_user=acting_user, collection=collection, paths=paths, labels_path=labels_path,
                masks_dir=masks_dir, max_files=UPLOAD_MAX_FILES,
            )
        except ServiceError as exc:  # name files as uploaded, never by their temporary paths
            raise ServiceError([prefix.sub("", problem) for problem in exc.problems]) from None
    report.rejected = [(prefix.sub("", name), code, reason) for name, code, reason in report.rejected]
    report.skipped = [prefix.sub("", line) for line in report.skipped]
    return report
