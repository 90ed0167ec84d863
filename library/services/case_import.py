"""Importing files, folders and zip archives into a collection.

The request as a whole is checked first (`_plan_import`): a problem there (a missing path, an
unreadable archive, a labels CSV with errors or rows matching no file) refuses it before
anything is stored. Then each file is read and stored on its own (`_import_one`): a file that
fails is rejected with one reason and the others go on, each in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError

from core.errors import ServiceError
from library import labels as labels_lib
from library.imaging.errors import ImageRejected
from library.import_sources import ImportItem, TooLarge, Unreadable, collect_items, is_table
from library.models import Case, Collection
from library.services.case_reading import CaseProblem, prepare_case
from library.services.case_storing import case_store
from library.services.collection import collection_get_or_create
from library.services.mask_sources import find_mask, inside, mask_source, ref_matches


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
class _ImportPlan:
    """A checked request: each case key's file, its labels row, and where masks come from."""

    items_by_key: dict[str, ImportItem]
    rows_by_key: dict[str, labels_lib.LabelRow]
    labels_format: str | None
    labels_path: Path | None
    masks_dir: Path | None
    mask_items: dict[str, ImportItem]


def _read_labels(labels_path: Path) -> tuple[str, list[labels_lib.LabelRow]]:
    if not labels_path.is_file():
        raise ServiceError(f"{labels_path}: no such labels file")
    if labels_path.stat().st_size > settings.XRS_IMPORT_MAX_BYTES:
        raise ServiceError(
            f"{labels_path.name}: the labels file is over the limit of "
            f"{settings.XRS_IMPORT_MAX_BYTES:,} bytes"
        )
    try:
        return labels_lib.parse_labels_csv(labels_path)
    except labels_lib.LabelsError as exc:
        raise ServiceError([f"{labels_path.name}: {p}" for p in exc.problems]) from None


def _is_image_candidate(item: ImportItem, labels_path, masks_dir, mask_items) -> bool:
    """Not a table, a mask, the labels file itself or a file in the masks folder."""
    if is_table(item) or item.relative_path in mask_items:
        return False
    if item._path is None:
        return True
    if labels_path is not None and item._path.resolve() == labels_path.resolve():
        return False
    return not (masks_dir is not None and inside(item._path, masks_dir))


def _items_by_key(candidates: list[ImportItem]) -> dict[str, ImportItem]:
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
    return keys


def _match_labels(rows, keys, labels_path: Path, masks_dir, mask_items) -> dict:
    try:
        rows_by_key = labels_lib.match_rows_to_files(rows, keys)
    except labels_lib.LabelsError as exc:
        raise ServiceError([f"{labels_path.name}: {p}" for p in exc.problems]) from None
    missing_masks = [
        f"{labels_path.name}: row {row.row}: mask file {row.mask[:200]!r} not found"
        for row in rows_by_key.values()
        if row.mask and find_mask(row.mask, labels_path, masks_dir, mask_items) is None
    ]
    if missing_masks:
        raise ServiceError(missing_masks)
    return rows_by_key


def _plan_import(paths, labels_path, masks_dir, max_files) -> _ImportPlan:
    items, problems = collect_items(
        [Path(p) for p in paths],
        max_archive_bytes=settings.XRS_IMPORT_MAX_ARCHIVE_BYTES,
        max_files=max_files,
    )
    if problems:
        raise ServiceError(problems)
    labels_format, rows, mask_items = None, [], {}
    if labels_path is not None:
        labels_path = Path(labels_path)
        labels_format, rows = _read_labels(labels_path)
        mask_refs = {row.mask for row in rows if row.mask}
        mask_items = {
            item.relative_path: item
            for item in items
            if any(ref_matches(item.relative_path, ref) for ref in mask_refs)
        }
    candidates = [
        item for item in items if _is_image_candidate(item, labels_path, masks_dir, mask_items)
    ]
    if not candidates:
        raise ServiceError("no image files found in " + ", ".join(str(p) for p in paths))
    keys = _items_by_key(candidates)
    rows_by_key = (
        _match_labels(rows, keys.keys(), labels_path, masks_dir, mask_items)
        if labels_path is not None
        else {}
    )
    return _ImportPlan(keys, rows_by_key, labels_format, labels_path, masks_dir, mask_items)


def _import_one(*, acting_user, collection, plan: _ImportPlan, key, item, report) -> None:
    """Import one file into the report: imported, skipped (already there) or rejected."""
    row = plan.rows_by_key.get(key)
    try:
        prepared = prepare_case(
            item=item,
            key=key,
            row=row,
            mask_source=mask_source(row, key, plan.labels_path, plan.masks_dir, plan.mask_items),
            labels_name=plan.labels_path.name if plan.labels_path else "labels",
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
            case_store(acting_user=acting_user, collection=collection, prepared=prepared)
            report.imported.append(key)
    except (ImageRejected, CaseProblem) as exc:
        report.rejected.append((item.display_name, exc.code, exc.reason))
    except TooLarge as exc:
        report.rejected.append((item.display_name, "too_large", str(exc)))
    except Unreadable as exc:
        report.rejected.append((item.display_name, "unreadable_file", str(exc)))
    except IntegrityError:
        report.skipped.append(f"{item.display_name}: imported concurrently by another request")


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
    plan = _plan_import(paths, labels_path, masks_dir, max_files)
    if isinstance(collection, str):
        collection = collection_get_or_create(acting_user=acting_user, name=collection)
    report = ImportReport(collection=collection.name, labels_format=plan.labels_format)
    total = len(plan.items_by_key)
    for index, (key, item) in enumerate(sorted(plan.items_by_key.items()), start=1):
        _import_one(
            acting_user=acting_user,
            collection=collection,
            plan=plan,
            key=key,
            item=item,
            report=report,
        )
        if progress is not None:
            progress(index, total, item.display_name)
    return report
