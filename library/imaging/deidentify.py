"""De-identification of DICOM datasets: PS3.15 Annex E Basic Application Level Confidentiality
Profile with the Retain Longitudinal Temporal Information with Modified Dates Option.

Where the table comes from: the attribute list and each attribute's basic-profile action
(D, Z, X, U and the compound X/Z, X/D, Z/D, X/Z/D, X/Z/U*) are PS3.15 Table E.1-1 as transcribed by
the ``dicom-anonymizer`` package (KitwareMedical), module ``dicomfields_2026c``. Only the table is
reused; every action is implemented here so that UIDs, pseudonyms and date shifts are keyed and
reproducible across files and imports (the library's own actions use random UIDs).

How each action is carried out:

* ``X`` removes the element; ``Z`` empties it; ``D`` replaces it with a dummy value of its VR
  (``ANONYMIZED``, ``0``, empty bytes); ``U`` maps every UID through ``new_uid``.
  Compound actions resolve to the strictest form that keeps the object valid:
  ``Z/D`` -> D, ``X/Z`` -> Z, ``X/D`` -> D, ``X/Z/D`` -> Z, and any of them removes a sequence;
  ``X/Z/U*`` (Referenced/Source Image Sequence) keeps the sequence with its UIDs mapped.
  A ``D`` or ``Z`` sequence becomes an empty sequence. Other sequences are processed
  recursively with the same table.
* Modified dates option: every DA value and the date part of every DT value in the dataset (listed
  in the table or not) is shifted by the same whole number of days for one patient,
  ``date_shift_days`` = HMAC-SHA256(secret, original PatientID) mapped into [-3650, -365]; times
  (TM, and the time part of DT) are kept. Patient's Birth Date/Time are not covered by the option
  and are emptied/removed as the basic profile says. A DT without a full date, or a date that does
  not parse, is emptied.
* UIDs: each table ``U`` attribute, plus any other UI attribute whose value is not a well-known
  registered UID (SOP class, transfer syntax, ...) and whose keyword does not name a class, syntax
  or coding scheme, is replaced by ``2.25.<uuid>`` where the UUID is derived from
  HMAC-SHA256(secret, original UID): the same original always gives the same new UID.
* PatientID becomes ``pseudonym(PatientID, kind="patient")``; PatientName becomes the same token.
  A dataset without a PatientID is keyed by its Study Instance UID instead.
* Removed beyond the table (stricter than the profile): all private elements, whole curve groups
  (50xx) and whole overlay groups (60xx, the profile removes Overlay Data/Comments; the rest of an
  overlay without its data is meaningless), group length elements, command (0000) and file meta
  (0002) elements that strayed into the dataset body.
* Added: PatientIdentityRemoved = YES, DeidentificationMethod = ``DEIDENTIFICATION_METHOD``,
  DeidentificationMethodCodeSequence (DCM 113100 and 113107), LongitudinalTemporalInformation
  Modified = MODIFIED, a fresh file meta (MediaStorageSOPInstanceUID = new SOPInstanceUID) and a
  zeroed preamble.

Not covered: text burned into the pixels (Clean Pixel Data Option) is not detected.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable
from importlib import metadata
from io import BytesIO
from typing import Any

import pydicom
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as _annex_e
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

SHIFT_MIN_DAYS = -3650
SHIFT_MAX_DAYS = -365
MIN_SECRET_BYTES = 16


def _package_version() -> str:
    try:
        return metadata.version("xai-reader-study")
    except metadata.PackageNotFoundError:
        return "unknown"


# LO is limited to 64 characters per value, so the method is recorded as several values.
DEIDENTIFICATION_METHOD: str = "\\".join(
    (
        "DICOM PS3.15 Annex E Basic Application Level Confidentiality",
        "Retain Longitudinal Temporal Information Modified Dates Option",
        "keyed HMAC-SHA256 UIDs, pseudonyms and date shifts",
        f"xai-reader-study {_package_version()}",
    )
)

_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)

_CATEGORY_ACTIONS = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}


def _load_table() -> tuple[dict[BaseTag, str], list[tuple[int, int, int, int, str]]]:
    actions: dict[BaseTag, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for category, action in _CATEGORY_ACTIONS.items():
        for entry in getattr(_annex_e, category):
            if len(entry) == 2:
                actions[Tag(entry[0], entry[1])] = action
            else:  # (group, element, group mask, element mask): repeating groups 50xx / 60xx
                masked.append((*entry, action))
    return actions, masked


ANNEX_E_ACTIONS, ANNEX_E_REPEATING = _load_table()
# Every tag the profile removes, empties or replaces, plus one representative per repeating group
# (Curve Data 5000,3000; Overlay Data 6000,3000; Overlay Comments 6000,4000).
ANNEX_E_IDENTIFYING_TAGS: frozenset[BaseTag] = frozenset(
    set(ANNEX_E_ACTIONS)
    | {Tag(group, element or 0x3000) for group, element, _gm, _em, _a in ANNEX_E_REPEATING}
)

# Covered by the basic profile's Z/X even under the modified-dates option.
_DATES_NOT_SHIFTED = frozenset({Tag(0x0010, 0x0030), Tag(0x0010, 0x0032)})
_PATIENT_ID = Tag(0x0010, 0x0020)
_PATIENT_NAME = Tag(0x0010, 0x0010)
_UID_KEEP_WORDS = ("Class", "TransferSyntax", "CodingScheme", "Implementation", "Creator")
_DUMMY_TEXT = "ANONYMIZED"
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
_NUMERIC_TEXT_VRS = frozenset({"DS", "IS"})
_BINARY_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})


# --------------------------------------------------------------------------- keyed primitives


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes | bytearray) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the de-identification secret must be at least {MIN_SECRET_BYTES} bytes")


def _mac(secret: bytes, domain: str, value: str) -> bytes:
    message = domain.encode() + b"\x00" + value.encode("utf-8")
    return hmac.new(bytes(secret), message, hashlib.sha256).digest()


def pseudonym(value: str, *, secret: bytes, kind: str) -> str:
    """Deterministic keyed pseudonym: ``KIND-`` + 20 base32 characters of HMAC-SHA256.

    ``kind`` separates namespaces (a patient ID and an accession number with the same text get
    different pseudonyms). The result fits LO and PN values.
    """
    _check_secret(secret)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,15}", kind):
        raise ValueError("kind must be a short identifier such as 'patient'")
    token = base64.b32encode(_mac(secret, f"pseudonym:{kind}", value)).decode()[:20]
    return f"{kind.upper()}-{token}"


def new_uid(original: str, *, secret: bytes) -> str:
    """The replacement for one UID: ``2.25.`` + a UUID derived from HMAC-SHA256(secret, uid)."""
    digest = _mac(secret, "uid", original.strip())
    return "2.25." + str(uuid.UUID(bytes=digest[:16], version=4).int)


def date_shift_days(patient_key: str, *, secret: bytes) -> int:
    """Whole days (in [-3650, -365]) that every date of this patient is moved by."""
    digest = _mac(secret, "date-shift", patient_key)
    span = SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1
    return SHIFT_MIN_DAYS + int.from_bytes(digest[:8], "big") % span


def patient_key(ds: Dataset) -> str:
    """What links a patient's files: the PatientID, else the Study Instance UID."""
    patient_id = str(ds.get("PatientID", "") or "").strip()
    if patient_id:
        return patient_id
    return "study:" + str(ds.get("StudyInstanceUID", "") or "").strip()


# --------------------------------------------------------------------------- dates


_DT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(.*)$")


def _shift_da(value: str, days: int) -> str:
    text = value.strip()
    if not text:
        return ""
    text = text.replace(".", "") if re.fullmatch(r"\d{4}\.\d{2}\.\d{2}", text) else text
    try:
        day = dt.datetime.strptime(text, "%Y%m%d").date()
        return (day + dt.timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return ""


def _shift_dt(value: str, days: int) -> str:
    match = _DT_RE.match(value.strip())
    if not match:
        return ""
    shifted = _shift_da("".join(match.group(1, 2, 3)), days)
    return shifted + match.group(4) if shifted else ""


# --------------------------------------------------------------------------- the walk


class _Context:
    def __init__(self, secret: bytes, shift: int) -> None:
        self.secret = secret
        self.shift = shift

    def uid(self, value: str) -> str:
        return new_uid(value, secret=self.secret) if value.strip() else value


def _map_values(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, MultiValue | list | tuple):
        return [fn(str(v)) for v in value]
    return fn(str(value)) if value is not None else value


def _repeating_action(tag: BaseTag) -> str | None:
    group = tag.group
    if 0x5000 <= group <= 0x501E and group % 2 == 0:
        return "X"  # curve groups go entirely
    if 0x6000 <= group <= 0x601E and group % 2 == 0:
        return "X"  # overlay groups go entirely (see module docstring)
    for g, e, gmask, emask, action in ANNEX_E_REPEATING:  # anything newer in the table
        if (group & gmask) == g and (tag.element & emask) == e:
            return action
    return None


def _is_instance_uid(elem: DataElement) -> bool:
    keyword = elem.keyword or ""
    if any(word in keyword for word in _UID_KEEP_WORDS):
        return False
    values = elem.value if isinstance(elem.value, MultiValue | list) else [elem.value]
    return any(v and UID(str(v)).name == str(v).strip() for v in values)  # not well known


def _dummy(elem: DataElement, ctx: _Context) -> Any:
    vr = elem.VR
    if vr == "UI":
        return _map_values(elem.value, ctx.uid)
    if vr == "AS":
        return "000Y"
    if vr in _TEXT_VRS:
        return _DUMMY_TEXT
    if vr in _NUMERIC_TEXT_VRS:
        return "0"
    if vr in _BINARY_VRS:
        return 0
    return elem.empty_value


def _clean(ds: Dataset, ctx: _Context) -> None:
    for elem in list(ds):
        tag = elem.tag
        if (
            tag.is_private
            or tag.element == 0x0000
            or tag.group in (0x0000, 0x0002)
            or _repeating_action(tag) == "X"
        ):
            del ds[tag]
            continue
        action = ANNEX_E_ACTIONS.get(tag) or _repeating_action(tag)
        vr = elem.VR
        if vr == "SQ":
            _clean_sequence(ds, elem, action, ctx)
            continue
        if vr in ("DA", "DT") and tag not in _DATES_NOT_SHIFTED:
            shift = _shift_da if vr == "DA" else _shift_dt
            elem.value = _map_values(elem.value, lambda v, f=shift: f(v, ctx.shift))
            continue
        if vr == "TM" and tag not in _DATES_NOT_SHIFTED:
            continue  # the modified-dates option keeps times
        if action is None:
            if vr == "UI" and elem.value and _is_instance_uid(elem):
                elem.value = _map_values(elem.value, ctx.uid)
            continue
        _apply(ds, elem, action, ctx)


def _apply(ds: Dataset, elem: DataElement, action: str, ctx: _Context) -> None:
    if elem.tag == _PATIENT_ID:
        value = str(elem.value or "").strip()
        elem.value = pseudonym(value, secret=ctx.secret, kind="patient") if value else ""
    elif action == "X":
        del ds[elem.tag]
    elif action == "U":
        elem.value = _map_values(elem.value, ctx.uid)
    elif action in ("Z", "X/Z", "X/Z/D"):
        elem.value = elem.empty_value
    else:  # D, Z/D, X/D; a UID's dummy is its keyed replacement
        elem.value = _dummy(elem, ctx)


def _clean_sequence(ds: Dataset, elem: DataElement, action: str | None, ctx: _Context) -> None:
    if action in (None, "U", "X/Z/U*"):
        for item in elem.value:
            _clean(item, ctx)
    elif action.startswith("X"):
        del ds[elem.tag]
    else:  # D, Z, Z/D: an empty sequence carries nothing
        elem.value = Sequence()


# --------------------------------------------------------------------------- public API


def deidentify(ds: pydicom.Dataset, *, secret: bytes) -> pydicom.Dataset:
    """A de-identified copy of ``ds``; the input is not modified."""
    _check_secret(secret)
    key = patient_key(ds)
    ctx = _Context(bytes(secret), date_shift_days(key, secret=secret))
    transfer_syntax = _transfer_syntax_of(ds)
    out = copy.deepcopy(ds)
    meta = getattr(ds, "file_meta", None)
    for keyword, meta_keyword in (
        ("SOPClassUID", "MediaStorageSOPClassUID"),
        ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
    ):  # a few writers keep these only in the file meta; mapped with the rest below
        if (
            not str(out.get(keyword, "") or "").strip()
            and meta is not None
            and meta_keyword in meta
        ):
            setattr(out, keyword, meta[meta_keyword].value)
    _clean(out, ctx)

    token = pseudonym(key, secret=secret, kind="patient")
    out.PatientID = token
    out.PatientName = token
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = DEIDENTIFICATION_METHOD
    codes = []
    for value, meaning in _METHOD_CODES:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    out.DeidentificationMethodCodeSequence = codes
    out.LongitudinalTemporalInformationModified = "MODIFIED"

    out.file_meta = _file_meta(out, transfer_syntax)
    out.preamble = b"\x00" * 128
    return out


def dataset_to_bytes(ds: pydicom.Dataset) -> bytes:
    """Encode ``ds`` as a DICOM Part 10 file: zeroed 128-byte preamble, ``DICM``, file meta."""
    out = copy.deepcopy(ds)  # writing may touch elements (ambiguous VRs): keep the caller's intact
    out.preamble = b"\x00" * 128
    out.file_meta = _file_meta(ds, _transfer_syntax_of(ds))
    buffer = BytesIO()
    pydicom.dcmwrite(buffer, out, enforce_file_format=True)
    return buffer.getvalue()


def _transfer_syntax_of(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") or "").strip() if meta is not None else ""
    if ts:
        return UID(ts)
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return ExplicitVRLittleEndian
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _file_meta(ds: Dataset, transfer_syntax: UID) -> FileMetaDataset:
    sop_class = str(ds.get("SOPClassUID", "") or "")
    sop_instance = str(ds.get("SOPInstanceUID", "") or "")
    if not sop_class or not sop_instance:
        raise ValueError("a Part 10 file needs SOPClassUID and SOPInstanceUID")
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "XAI_READER"
    return meta


def describe_action(tag: BaseTag) -> str | None:
    """The table action for a tag (``None`` when the profile keeps it), for tests and docs."""
    return ANNEX_E_ACTIONS.get(Tag(tag)) or _repeating_action(Tag(tag))


__all__ = [
    "ANNEX_E_ACTIONS",
    "ANNEX_E_IDENTIFYING_TAGS",
    "DEIDENTIFICATION_METHOD",
    "dataset_to_bytes",
    "date_shift_days",
    "deidentify",
    "describe_action",
    "new_uid",
    "patient_key",
    "pseudonym",
]
