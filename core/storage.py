"""Staged writes to the default storage: files written before a database row names them,
removed again when the work fails, so a failure never leaves half a result behind.

Every producer of stored files (the case import, the explanation engine's result files, the
model registry's weight file, the reports, the health probe) writes through here::

    from core.storage import staged_writes

    with staged_writes() as staged:
        source = staged.save(f"cases/{uid}/source.dcm", data)  # bytes or a django File
        with transaction.atomic():
            Case.objects.create(..., source_file=source)
    # the block raised: every file `staged` wrote is deleted, then the exception goes on

Put the database transaction INSIDE the block: a failed commit then raises in the block and
the files go. A rollback of an enclosing transaction after the block has ended (Django has no
rollback hook) leaves the files in place, unnamed by any row.

- `save(name, content)` is `default_storage.save`: a free name is chosen when `name` is
  taken; the name actually stored is returned.
- `replace(name, content)` writes at exactly `name`, replacing what is there; on a local file
  system the file appears whole or not at all (a temporary file, then a rename). With
  `discard_on_failure=False` a failure keeps the file (an existing row's file replaced in
  place must not vanish).
- `discard()` deletes what was staged (the context manager calls it); writers running in other
  threads must have ended first. `staged_writes(keep=False)` discards on success as well (a
  probe or scratch file).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

logger = logging.getLogger(__name__)


def _as_file(content: bytes | File) -> File:
    return content if isinstance(content, File) else ContentFile(content)


def storage_replace(name: str, content: bytes) -> str:
    """Write `content` at exactly `name` in the default storage, replacing what is there.

    On a local file system the file appears whole or not at all (a temporary file beside it,
    then a rename); elsewhere (S3) the old object is deleted and the new one saved."""
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:  # a storage without local paths
        if default_storage.exists(name):
            default_storage.delete(name)
        return default_storage.save(name, ContentFile(content))
    path.parent.mkdir(parents=True, exist_ok=True)
    directory_mode = getattr(default_storage, "directory_permissions_mode", None)
    if directory_mode is not None:
        os.chmod(path.parent, directory_mode)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
        file_mode = getattr(default_storage, "file_permissions_mode", None)
        if file_mode is not None:
            os.chmod(temporary, file_mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return name


class StagedWrites:
    """The files written for one piece of work; `discard` deletes them. Thread-safe: pool
    threads may save and replace concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: list[str] = []

    @property
    def written(self) -> list[str]:
        """Names staged so far (to be deleted by `discard`), in the order written."""
        with self._lock:
            return list(self._written)

    def _track(self, name: str) -> str:
        with self._lock:
            self._written.append(name)
        return name

    def save(self, name: str, content: bytes | File) -> str:
        """`default_storage.save`; returns the name stored (a free one if `name` is taken)."""
        return self._track(default_storage.save(name, _as_file(content)))

    def replace(self, name: str, content: bytes, *, discard_on_failure: bool = True) -> str:
        """`storage_replace`; deleted on failure unless `discard_on_failure` is False."""
        stored = storage_replace(name, content)
        return self._track(stored) if discard_on_failure else stored

    def discard(self) -> None:
        """Delete every staged file. A file that cannot be deleted is logged, not raised: the
        failure that led here is the one worth reporting."""
        with self._lock:
            names, self._written = self._written, []
        for name in names:
            try:
                default_storage.delete(name)
            except Exception:  # a storage error of any kind must not hide the original failure
                logger.warning("could not remove %s", name, exc_info=True)


@contextmanager
def staged_writes(*, keep: bool = True) -> Iterator[StagedWrites]:
    """Files saved in the block are deleted if it raises (and when it ends, with keep=False)."""
    staged = StagedWrites()
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    if not keep:
        staged.discard()
