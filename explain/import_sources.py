"""Enumerating the files of an import: single files, folders and zip archives.

Pure Python (no Django). Each item knows its path relative to what the user
named (that path, without its extension, becomes the case key) and reads its
bytes lazily and with a size limit, so that a zip bomb or a huge file is
refused before it fills memory.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SKIPPED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".md"}


class TooLarge(Exception):
    pass


@dataclass
class ImportItem:
    """One file to import, wherever it lives."""

    relative_path: str  # posix, relative to the folder/archive the user named
    size: int
    _path: Path | None = None
    _zip_path: Path | None = None
    _member: str | None = None
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
        if self._path is not None:
            with self._path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        else:
            with zipfile.ZipFile(self._zip_path) as archive, archive.open(self._member) as handle:
                data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TooLarge(f"file is over the limit of {max_bytes} bytes")
        return data


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _zip_items(path: Path, *, max_archive_bytes: int, max_ratio: int = 200) -> list[ImportItem]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path}: not a readable zip archive ({exc})") from None
    items: list[ImportItem] = []
    total = 0
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = PurePosixPath(info.filename)
            if member.is_absolute() or ".." in member.parts:
                raise ValueError(f"{path}: unsafe member path {info.filename!r}")
            if _hidden(member.parts) or member.name in SKIPPED_NAMES:
                continue
            total += info.file_size
            if total > max_archive_bytes:
                raise ValueError(
                    f"{path}: archive expands to more than {max_archive_bytes} bytes; refused"
                )
            if info.compress_size and info.file_size / info.compress_size > max_ratio:
                raise ValueError(
                    f"{path}: member {info.filename!r} has a compression ratio over {max_ratio}:1 "
                    "(a zip bomb?); refused"
                )
            items.append(
                ImportItem(
                    relative_path=str(member),
                    size=info.file_size,
                    _zip_path=path,
                    _member=info.filename,
                    origin=str(path),
                )
            )
    return items


def collect_items(
    paths: list[Path], *, max_archive_bytes: int
) -> tuple[list[ImportItem], list[str]]:
    """Expand files, folders and zip archives into items; return (items, problems)."""
    items: list[ImportItem] = []
    problems: list[str] = []
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
                        items.extend(_zip_items(child, max_archive_bytes=max_archive_bytes))
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
                items.extend(_zip_items(path, max_archive_bytes=max_archive_bytes))
            except ValueError as exc:
                problems.append(str(exc))
        else:
            items.append(
                ImportItem(
                    relative_path=path.name, size=path.stat().st_size, _path=path, origin=str(path)
                )
            )
    return items, problems


def is_table(item: ImportItem) -> bool:
    return PurePosixPath(item.relative_path).suffix.lower() in TABLE_SUFFIXES
