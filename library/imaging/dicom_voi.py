"""The VOI (windowing) a DICOM file carries: its window presets and its VOI LUT, for a frame
(the Frame VOI LUT functional group of an enhanced multi-frame object, else the dataset)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from library.imaging.dicom_header import functional_item, text

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class VoiPreset:
    """One window: centre/width in modality units plus the VOI LUT function to apply."""

    center: float
    width: float
    name: str
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID


@dataclass(frozen=True, eq=False)
class VoiLut:
    """The first item of a VOI LUT Sequence.

    ``descriptor`` is (number of entries, first stored value mapped, bits per entry) with the
    "0 means 65536 entries" rule already applied; ``data`` holds the entries as uint16.
    """

    descriptor: tuple[int, int, int]
    data: np.ndarray
    explanation: str = ""

    @property
    def first_mapped(self) -> int:
        return self.descriptor[1]

    @property
    def bits(self) -> int:
        return self.descriptor[2]


def _as_floats(value: Any) -> list[float]:
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | MultiValue):
        return [text(v) for v in value]
    return [text(value)]


def voi_of(ds: Dataset, frame_index: int) -> tuple[list[VoiPreset], VoiLut | None]:
    source = functional_item(ds, frame_index, "FrameVOILUTSequence") or ds
    return voi_presets_from(source), _voi_lut_from(source, ds) or _voi_lut_from(ds, ds)


def voi_presets_from(source: Dataset) -> list[VoiPreset]:
    """Every usable (centre, width) pair of a dataset or Frame VOI LUT item, in file order."""
    centers = _as_floats(source.get("WindowCenter"))
    widths = _as_floats(source.get("WindowWidth"))
    names = _as_strings(source.get("WindowCenterWidthExplanation"))
    function = text(source.get("VOILUTFunction")).upper() or "LINEAR"
    if function not in VOI_FUNCTIONS:
        function = "LINEAR"
    presets = []
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        minimum = 1.0 if function == "LINEAR" else 0.0
        if not (math.isfinite(center) and math.isfinite(width)) or width <= 0 or width < minimum:
            continue
        name = names[i].replace("\x00", "")[:64] if i < len(names) else ""
        name = name or f"Preset {i + 1}"
        presets.append(VoiPreset(center=center, width=width, name=name, function=function))
    return presets


def _voi_lut_from(source: Dataset, ds: Dataset) -> VoiLut | None:
    sequence = source.get("VOILUTSequence")
    if not sequence:
        return None
    item = sequence[0]
    try:
        descriptor = [int(v) for v in item.LUTDescriptor]
        entries = descriptor[0] or 65536
        data = _lut_array(item.LUTData, entries, ds)
    except Exception:
        return None  # a malformed VOI LUT is ignored; the window presets or min-max still work
    if len(data) < entries or entries < 1:
        return None
    return VoiLut(
        descriptor=(entries, descriptor[1], descriptor[2]),
        data=data[:entries],
        explanation=text(item.get("LUTExplanation")),
    )


def _lut_array(value: Any, entries: int, ds: Dataset) -> np.ndarray:
    if isinstance(value, bytes | bytearray):
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        if len(value) in (entries, entries + 1) and len(value) < 2 * entries:
            return np.frombuffer(value[:entries], dtype=np.uint8).astype(np.uint16)
        return np.frombuffer(value[: 2 * entries], dtype="<u2" if little else ">u2").astype(
            np.uint16
        )
    return np.asarray(_as_floats(value), dtype=np.float64).astype(np.uint16)
