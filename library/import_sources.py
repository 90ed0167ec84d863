"""Enumerating the files of an import: single files, folders and zip archives.

Pure Python (no Django). Each item knows its path relative to what the user
named (that path, without its extension, becomes the case key) and reads its
bytes lazily and with a size limit, so that a zip bomb or a huge file is
refused before it fills memory.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SKIPPED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".md"}
UPLOAD_MAX_FILES = 20_000
"""The most files one upload may expand to (zip members included); the command has no limit."""
_MAX_DIRECTORY_BYTES_PER_FILE = 1024  # central directory bytes per allowed member, names included
_DRIVE = re.compile(r"^[A-Za-z]:")


class TooLarge(Exception):
    pass


class Unreadable(Exception):
    """A file or zip member whose bytes cannot be read (corrupt, encrypted, unknown compression)."""


class _Archive:
    """A zip archive opened once and shared by its members: re-opening it for every member
    would parse the whole central directory each time (quadratic in the number of members)."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None

    def open(self, member: str):
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip.open(member)


@dataclass
class ImportItem:
    """One file to import, wherever it lives."""

    relative_path: str  # posix, relative to the folder/archive the user named
    size: int
    _path: Path | None = None
    _zip_path: Path | None = None
    _member: str | None = None
    _archive: _Archive | None = None
    origin: str = ""  # what the user named, for messages
    notes: list[str] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        if self._member is not None:
            return f"{self.origin}:{self._member}"
        return str(self._path) if self._path is not None else self.relative_path

    def read(self, *, max_bytes: int) -> bytes:
        if self.size > max_bytes:
            raise TooLarge(f"file is {self.size} bytes, over the limit of {max_bytes}")
        try:
            if self._path is not None:
                with self._path.open("rb") as handle:
                    data = handle.read(max_bytes + 1)
            else:
                archive = self._archive or _Archive(self._zip_path)
                with archive.open(self._member) as handle:
                    data = handle.read(max_bytes + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise Unreadable(f"cannot be read: {_one_line(exc)}") from None
        except (RuntimeError, NotImplementedError) as exc:  # encrypted, unknown compression
            raise Unreadable(f"cannot be read from the archive: {_one_line(exc)}") from None
        if len(data) > max_bytes:
            raise TooLarge(f"file is over the limit of {max_bytes} bytes")
        return data


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


def _declared_size(path: Path) -> tuple[int, int] | None:
    """(members, central directory bytes) as the end record declares them, read without
    parsing the central directory; None when there is no end record (zipfile then refuses)."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        start = max(0, size - _END_RECORD.size - 0xFFFF)
        handle.seek(start)
        tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _END_RECORD.size > len(tail):
        return None
    fields = _END_RECORD.unpack_from(tail, at)
    members, directory_bytes = fields[4], fields[5]
    locator = at - _ZIP64_LOCATOR.size
    record = locator - _ZIP64_END_RECORD.size
    if (
        record >= 0
        and tail[locator : locator + 4] == b"PK\x06\x07"
        and tail[record : record + 4] == b"PK\x06\x06"
    ):
        fields = _ZIP64_END_RECORD.unpack_from(tail, record)
        members, directory_bytes = fields[7], fields[8]
    return members, directory_bytes


def _unsafe(name: str) -> bool:
    """An absolute path, a drive letter, a '..' part (with '\\' read as a separator too), or
    control characters (a newline in a name would split the one-line problem reports)."""
    posix = name.replace("\\", "/")
    return (
        posix.startswith("/")
        or bool(_DRIVE.match(posix))
        or ".." in posix.split("/")
        or not name.isprintable()
    )


def _zip_items(
    path: Path,
    *,
    max_archive_bytes: int,
    max_ratio: int = 200,
    max_members: int | None = None,
) -> list[ImportItem]:
    shown = str(path)
    if max_members is not None:
        try:
            declared = _declared_size(path)
        except OSError as exc:
            raise ValueError(f"{shown}: not a readable zip archive ({_one_line(exc)})") from None
        if declared is not None and (
            declared[0] > max_members or declared[1] > max_members * _MAX_DIRECTORY_BYTES_PER_FILE
        ):
            raise ValueError(
                f"{shown}: the archive lists more than {max_members:,} files; "
                "split it into smaller archives"
            )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ValueError(f"{shown}: not a readable zip archive ({_one_line(exc)})") from None
    if max_members is not None and len(archive.infolist()) > max_members:
        archive.close()
        raise ValueError(
            f"{shown}: the archive holds more than {max_members:,} files; "
            "split it into smaller archives"
        )
    shared = _Archive(path)
    items: list[ImportItem] = []
    total = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if _unsafe(info.filename):
                raise ValueError(f"{shown}: unsafe member path {info.filename!r}")
            member = PurePosixPath(info.filename.replace("\\", "/"))
            if _hidden(member.parts) or member.name in SKIPPED_NAMES:
                continue
            total += info.file_size
            if total > max_archive_bytes:
                raise ValueError(
                    f"{shown}: archive expands to more than {max_archive_bytes} bytes; refused"
                )
            if info.compress_size and info.file_size / info.compress_size > max_ratio:
                raise ValueError(
                    f"{shown}: member {info.filename!r} has a compression ratio over {max_ratio}:1 "
                    "(a zip bomb?); refused"
                )
            items.append(
                ImportItem(
                    relative_path=str(member),
                    size=info.file_size,
                    _zip_path=path,
                    _member=info.filename,
                    _archive=shared,
                    origin=shown,
                )
            )
    return items


def collect_items(
    paths: list[Path], *, max_archive_bytes: int, max_files: int | None = None
) -> tuple[list[ImportItem], list[str]]:
    """Expand files, folders and zip archives into items; return (items, problems).

    With ``max_files`` (uploads), an archive listing more files than that is refused from its
    end record, before its central directory is parsed, and so is the whole request when the
    files add up to more.
    """
    items: list[ImportItem] = []
    problems: list[str] = []
    zip_options = {"max_archive_bytes": max_archive_bytes, "max_members": max_files}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if not child.is_file():
                    continue
                rel = child.relative_to(path)
                if _hidden(rel.parts) or child.name in SKIPPED_NAMES:
                    continue
                if child.suffix.lower() == ".zip":
                    try:
                        items.extend(_zip_items(child, **zip_options))
                    except ValueError as exc:
                        problems.append(str(exc))
                    continue
                items.append(
                    ImportItem(
                        relative_path=rel.as_posix(),
                        size=child.stat().st_size,
                        _path=child,
                        origin=str(path),
                    )
                )
        elif path.suffix.lower() == ".zip":
            try:
                items.extend(_zip_items(path, **zip_options))
            except ValueError as exc:
                problems.append(str(exc))
        else:
            items.append(
                ImportItem(
                    relative_path=path.name, size=path.stat().st_size, _path=path, origin=str(path)
                )
            )
    if max_files is not None and len(items) > max_files and not problems:
        problems.append(f"{len(items):,} files in one import; the limit is {max_files:,}")
    return items, problems


def is_table(item: ImportItem) -> bool:
    return PurePosixPath(item.relative_path).suffix.lower() in TABLE_SUFFIXES
