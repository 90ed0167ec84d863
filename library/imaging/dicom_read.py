"""Read one DICOM file into display-ready modality values, or reject it with a reason.

Decisions taken here (each rejection is an ``ImageRejected`` with a distinct code):

* **Size first.** The byte size is checked against ``max_bytes`` before anything is parsed
  (``os.stat`` for a path, ``len`` for bytes) and ``Rows*Columns*NumberOfFrames*SamplesPerPixel``
  against ``max_pixels`` from the header before any pixel is decoded (``too_large``).
* **What counts as DICOM.** A file with the Part 10 preamble and ``DICM`` prefix is parsed
  normally. A file without it is re-read with ``force=True`` and kept only if the result has a
  SOP Class UID (so random bytes, text or a renamed PNG are ``not_dicom``); it then passes the same
  checks as any other file, so e.g. a meta-less RT Structure Set is ``no_pixel_data``. A header
  that starts as DICOM but cannot be parsed, or an object without a SOP Instance UID (needed to
  de-identify and store it), is ``corrupt_dicom``.
* **Which SOP classes are images.** A SOP class known to pydicom is an image class when its
  name contains "Image Storage" (CT, MR, CR, DX, MG, US, secondary capture, NM, PET, XA, RT Image,
  VL, enhanced and legacy-converted variants, ...) or is "Enhanced US Volume Storage". Every other
  known class (RT Dose, Segmentation, Parametric Map, SR, waveforms, presentation states, DICOMDIR)
  is rejected: ``no_pixel_data`` when it has no Pixel Data, else ``non_image_sop_class``. A SOP
  class UID pydicom does not know (private or newer than pydicom) is treated as an image when it
  carries Pixel Data with a supported photometric interpretation; the pixel checks then decide.
  The modality itself is not filtered: DX, CR, MG, CT, MR, US, OT/SC and any other modality with
  an image SOP class are accepted (a missing Modality is recorded as "OT").
* **Multi-frame.** The MIDDLE frame, index ``NumberOfFrames // 2``, is the one read, and only
  that frame is decoded. For enhanced multi-frame objects the rescale
  (Pixel Value Transformation Sequence) and window (Frame VOI LUT Sequence) of that frame are
  taken from the Per-Frame Functional Groups, falling back to the Shared Functional Groups.
* **Photometric interpretation.** MONOCHROME1/MONOCHROME2 go through the Modality LUT
  (``pydicom.pixels.apply_modality_lut``: rescale slope/intercept or Modality LUT Sequence) into
  float32. RGB, YBR_FULL and YBR_FULL_422 become RGB (pydicom's decoders convert YBR, including
  for JPEG), PALETTE COLOR is expanded with ``apply_color_lut``; YBR_RCT/YBR_ICT (JPEG 2000 colour
  transforms, converted by the decoder) are accepted too. Colour values with more than 8 bits
  (BitsStored > 8, or 16-bit palettes) are scaled linearly to uint8. Anything else is
  ``unsupported_photometric``.
* Reading never writes anything and never modifies the file.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from library.imaging.dicom_header import (
    COLOR_PHOTOMETRICS,
    MONOCHROME,
    SUPPORTED_PHOTOMETRICS,
    check_deflated_size,
    check_photometric,
    check_sop_class,
    is_image_sop_class,
    load_bytes,
    modality_of,
    parse,
    sop_class_name,
)
from library.imaging.dicom_pixels import (
    check_decoded_shape,
    check_pixel_header,
    decode_frame,
    modality_values,
    rgb_values,
)
from library.imaging.dicom_voi import VOI_FUNCTIONS, VoiLut, VoiPreset, voi_of, voi_presets_from
from library.imaging.errors import ImageRejected

__all__ = [
    "COLOR_PHOTOMETRICS",
    "MONOCHROME",
    "SUPPORTED_PHOTOMETRICS",
    "VOI_FUNCTIONS",
    "DicomImage",
    "VoiLut",
    "VoiPreset",
    "classify_files",
    "is_image_sop_class",
    "read_dicom",
    "sop_class_name",
    "voi_presets_from",
]


@dataclass
class DicomImage:
    dataset: Dataset  # parsed, NOT de-identified; PixelData still present
    modality_values: np.ndarray  # float32 (H, W) after the Modality LUT, or uint8 (H, W, 3) RGB
    photometric: str  # original PhotometricInterpretation
    is_color: bool
    modality: str
    voi_presets: list[VoiPreset] = field(default_factory=list)
    voi_lut: VoiLut | None = None
    frame_index: int = 0
    number_of_frames: int = 1
    bits_stored: int = 8


def read_dicom(source: bytes | str | Path, *, max_bytes: int, max_pixels: int) -> DicomImage:
    """Parse, validate and decode one DICOM file (the middle frame of a multi-frame object)."""
    data = load_bytes(source, max_bytes)
    check_deflated_size(data, max_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = parse(data)
        sop_name = check_sop_class(ds)
        photometric = check_photometric(ds)
        header = check_pixel_header(ds, photometric, max_pixels)
        frames = header["frames"]
        frame_index = frames // 2
        arr, decoded_photometric = decode_frame(ds, header, frame_index)
        if photometric in MONOCHROME:
            values = modality_values(arr, ds, frame_index)
            is_color = False
        else:
            values = rgb_values(arr, ds, photometric, decoded_photometric, header["bits_stored"])
            is_color = True
        check_decoded_shape(values, header, is_color, sop_name)
        presets, voi_lut = ([], None) if is_color else voi_of(ds, frame_index)
    return DicomImage(
        dataset=ds,
        modality_values=values,
        photometric=photometric,
        is_color=is_color,
        modality=modality_of(ds),
        voi_presets=presets,
        voi_lut=voi_lut,
        frame_index=frame_index,
        number_of_frames=frames,
        bits_stored=header["bits_stored"],
    )


def classify_files(
    paths: Iterable[Path], *, max_bytes: int = 256 * 2**20, max_pixels: int = 2**28
) -> Counter[str]:
    """Count how many files import ("imported") and how many are rejected, by rejection code."""
    tally: Counter[str] = Counter()
    for path in paths:
        try:
            read_dicom(path, max_bytes=max_bytes, max_pixels=max_pixels)
        except ImageRejected as exc:
            tally[exc.code] += 1
        else:
            tally["imported"] += 1
    return tally


def main(argv: list[str]) -> int:
    """``python -m library.imaging.dicom_read [DIR]``: tally a directory (pydicom's test files)."""
    root = Path(argv[0]) if argv else Path(pydicom.data.__file__).parent / "test_files"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    tally = classify_files(files)
    print(f"{len(files)} files under {root}")
    for code, count in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{count:5d}  {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
