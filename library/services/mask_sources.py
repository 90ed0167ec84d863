"""Where an imported case's lesion mask comes from: a file named in the labels CSV (beside
the CSV, in the masks folder, or among the imported files), or a file in the masks folder
named after the case. A reference never leaves its folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from library.import_sources import ImportItem

MASK_SUFFIXES = (".png", ".npy")


def inside(path: Path, folder: Path) -> bool:
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


def ref_matches(relative_path: str, ref: str) -> bool:
    ref = ref.replace("\\", "/").lstrip("./")
    return relative_path == ref or relative_path.endswith("/" + ref)


def find_mask(
    ref: str, labels_path: Path | None, masks_dir: Path | None, mask_items: dict[str, ImportItem]
) -> Path | ImportItem | None:
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
        if inside(candidate, folder) and _is_file(candidate):
            return candidate
    for rel, item in mask_items.items():
        if ref_matches(rel, ref):
            return item
    return None


def mask_source(row, key: str, labels_path, masks_dir, mask_items):
    """(the case's mask file or item, or None; the labels row that named it, or None)."""
    if row is not None and row.mask:
        return find_mask(row.mask, labels_path, masks_dir, mask_items), row.row
    if masks_dir is not None:
        stem = PurePosixPath(key)
        for suffix in MASK_SUFFIXES:
            for candidate in (
                Path(masks_dir) / f"{key}{suffix}",
                Path(masks_dir) / f"{stem.name}{suffix}",
            ):
                if _is_file(candidate):
                    return candidate, row.row if row is not None else None
    return None, None
