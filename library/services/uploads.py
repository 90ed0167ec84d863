"""Uploaded files (Django UploadedFile) written to a temporary folder, so that the import,
which reads paths, takes uploads as it takes files on disk; problems and reports name each
file as the user uploaded it, never by its temporary path."""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings

from core.errors import ServiceError
from library.import_sources import UPLOAD_MAX_FILES, TooLarge, Unreadable, collect_items
from library.models import Collection
from library.services.case_import import ImportReport, cases_import


def _upload_name(uploaded, index: int) -> str:
    """The uploaded file's base name, usable as a file name in a temporary folder."""
    name = PurePosixPath((uploaded.name or "").replace("\\", "/")).name
    if name in ("", ".", ".."):
        return f"upload-{index}"
    if len(name.encode()) > 255:
        raise ServiceError(f"{name[:60]}…: the file name is longer than 255 bytes")
    return name


def _write_upload(uploaded, target: Path) -> None:
    with target.open("wb") as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)


def uploaded_files_to_folder(files, *, folder: Path) -> list[Path]:
    """Write uploaded files into a temporary folder, each in a numbered subfolder."""
    paths = []
    for index, uploaded in enumerate(files):
        target = folder / f"{index:04d}" / _upload_name(uploaded, index)
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_upload(uploaded, target)
        paths.append(target)
    return paths


class TemporaryFolder:
    """A temporary folder removed on exit, for uploads."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="xrs-upload-"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@contextmanager
def uploaded_file_path(uploaded) -> Iterator[Path]:
    """One uploaded file as a path on disk, for the block (a model's weights, say)."""
    with TemporaryFolder() as folder:
        yield uploaded_files_to_folder([uploaded], folder=folder)[0]


def _expand_mask_archive(uploaded, name: str, folder: Path) -> None:
    archive_path = folder.parent / f"masks-{uuid.uuid4().hex}.zip"
    _write_upload(uploaded, archive_path)
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


def masks_to_folder(files, *, folder: Path) -> None:
    """Uploaded masks: plain files keep their names; zip archives are expanded safely."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, uploaded in enumerate(files):
        name = _upload_name(uploaded, index)
        if name.lower().endswith(".zip"):
            _expand_mask_archive(uploaded, name, folder)
        else:
            _write_upload(uploaded, folder / name)


def cases_import_uploads(
    *, acting_user, collection: Collection, files, labels=None, masks=None
) -> ImportReport:
    """`cases_import` for uploaded files (pages and API): written to a temporary
    folder, imported, and reported under the names the user uploaded."""
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
                acting_user=acting_user,
                collection=collection,
                paths=paths,
                labels_path=labels_path,
                masks_dir=masks_dir,
                max_files=UPLOAD_MAX_FILES,
            )
        except ServiceError as exc:  # name files as uploaded, never by their temporary paths
            raise ServiceError([prefix.sub("", problem) for problem in exc.problems]) from None
    report.rejected = [
        (prefix.sub("", name), code, reason) for name, code, reason in report.rejected
    ]
    report.skipped = [prefix.sub("", line) for line in report.skipped]
    return report
