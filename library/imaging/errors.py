"""The one exception the imaging layer raises for expected bad input.

Every rejection carries a short machine-readable ``code`` (one of ``REJECTION_CODES``) and a
one-line human-readable ``reason`` that can be shown to the person who uploaded the file.
"""

from __future__ import annotations

REJECTION_CODES: tuple[str, ...] = (
    "not_dicom",  # not parseable as DICOM, or no SOP Class UID (random bytes, text, PNG renamed)
    "corrupt_dicom",  # DICOM whose header cannot be parsed, or without a SOP Instance UID
    "no_pixel_data",  # a DICOM object without Pixel Data (RT Plan, SR, DICOMDIR, ...)
    "non_image_sop_class",  # has Pixel Data but is not an image for reading (RT Dose, SEG, ...)
    "undecodable_transfer_syntax",  # compressed with a syntax no installed decoder handles
    "unsupported_photometric",  # PhotometricInterpretation outside the supported set
    "too_large",  # file bytes over max_bytes, or rows*cols*frames*samples over max_pixels
    "invalid_pixel_data",  # pixel header inconsistent with the pixel data (truncated, missing)
    "unreadable_image",  # a raster (PNG/JPEG) file that cannot be decoded
)


class ImageRejected(Exception):
    """An uploaded file cannot become a case image; ``reason`` says why in one line."""

    def __init__(self, code: str, reason: str) -> None:
        if code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        self.code = code
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{code}: {self.reason}")
