"""De-identification: no Annex E attribute survives, keyed UIDs and date shifts stay consistent."""

from __future__ import annotations

import copy
import datetime as dt
from io import BytesIO

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from library.imaging.deidentify import (
    ANNEX_E_IDENTIFYING_TAGS,
    DEIDENTIFICATION_METHOD,
    SHIFT_MAX_DAYS,
    SHIFT_MIN_DAYS,
    dataset_to_bytes,
    date_shift_days,
    deidentify,
    describe_action,
    new_uid,
    pseudonym,
)
from tests.library.dicom_factories import PYDICOM_TEST_FILES, image_dataset

SECRET = b"0123456789abcdef-test-secret"
BIRTH = {Tag(0x0010, 0x0030), Tag(0x0010, 0x0032)}
PATIENT_NAME, PATIENT_ID = Tag(0x0010, 0x0010), Tag(0x0010, 0x0020)
MEDIA_SOP_INSTANCE = Tag(0x0002, 0x0003)


def day(i: int) -> str:
    return (dt.date(2001, 1, 1) + dt.timedelta(days=i)).strftime("%Y%m%d")


def shifted(date: str, days: int) -> str:
    return (dt.datetime.strptime(date, "%Y%m%d") + dt.timedelta(days=days)).strftime("%Y%m%d")


def read_back(data: bytes) -> Dataset:
    return pydicom.dcmread(BytesIO(data))


class PhiDataset:
    """A dataset setting every Annex E tag (plus private and nested data) to a recognisable value.

    ``tokens`` are the PHI strings that must not appear in the output, ``uids`` the original UIDs,
    ``originals`` each top-level tag's original value.
    """

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.uids: list[str] = []
        self.originals: dict[Tag, object] = {}
        ds = image_dataset(np.array([[1, 2], [3, 4]], np.uint16))
        ds.PatientID = self.token("ID")
        ds.PatientName = self.token("NM") + "^Jane"
        ds.StudyInstanceUID = self.uid()
        ds.SOPInstanceUID = self.uid()
        ds.StudyDate = "20050607"
        ds.AcquisitionDate = "20050610"
        for i, tag in enumerate(sorted(ANNEX_E_IDENTIFYING_TAGS)):
            if tag.group == 0x0002:
                ds.file_meta[tag] = DataElement(tag, "UI", self.uid())
                continue
            if tag in (PATIENT_ID, PATIENT_NAME, Tag(0x0020, 0x000D), Tag(0x0008, 0x0018)):
                self.originals[tag] = ds[tag].value
                continue
            try:
                vr = dictionary_VR(tag).split(" or ")[0]
            except KeyError:
                vr = "LO"  # newer than pydicom's dictionary
            value = self.value_for(vr, i)
            ds[tag] = DataElement(tag, vr, value)
            self.originals[tag] = value
        self.add_private_and_nested(ds)
        self.dataset = ds

    def token(self, kind: str = "") -> str:
        text = f"PHI{kind}{len(self.tokens):04d}"
        self.tokens.append(text)
        return text

    def uid(self) -> str:
        value = f"1.2.826.0.1.3680043.9999.{len(self.uids) + 1}"
        self.uids.append(value)
        return value

    def value_for(self, vr: str, i: int) -> object:
        if vr in ("AE", "CS", "SH", "LO", "LT", "ST", "UT", "UC"):
            return self.token()
        if vr == "UR":
            return "https://example.org/" + self.token()
        if vr == "PN":
            return self.token() + "^John"
        if vr == "DA":
            return day(i)
        if vr == "DT":
            return day(i) + "123000.5+0100"
        if vr == "TM":
            return "123000"
        if vr == "UI":
            return self.uid()
        if vr == "AS":
            return "045Y"
        if vr in ("DS", "IS"):
            return "31415"
        if vr in ("US", "SS", "UL", "SL"):
            return 4242
        if vr in ("OB", "OW", "UN"):
            return (self.token() + "X").encode()
        if vr == "SQ":
            return Sequence([self.phi_item()])
        raise AssertionError(f"no test value for VR {vr}")

    def phi_item(self) -> Dataset:
        item = Dataset()
        item.PatientName = self.token() + "^Nested"
        item.OperatorsName = self.token()
        item.InstitutionName = self.token()
        item.ReferencedSOPInstanceUID = self.uid()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        return item

    def add_private_and_nested(self, ds: Dataset) -> None:
        block = ds.private_block(0x0009, self.token("CREATOR"), create=True)
        block.add_new(0x01, "LO", self.token())
        block.add_new(0x02, "SQ", Sequence([self.phi_item()]))
        inner = Dataset()
        inner.InstitutionName = self.token()
        inner.StudyInstanceUID = self.uid()
        inner.add_new(0x00110010, "LO", self.token("CREATOR"))
        inner.add_new(0x00111001, "LO", self.token())
        outer = self.phi_item()
        outer.AnatomicRegionModifierSequence = Sequence([inner])
        ds.AnatomicRegionSequence = Sequence([outer])  # not in the table: cleaned recursively


@pytest.fixture(scope="module")
def phi() -> PhiDataset:
    return PhiDataset()


@pytest.fixture(scope="module")
def cleaned(phi: PhiDataset) -> tuple[Dataset, bytes, Dataset]:
    before = copy.deepcopy(phi.dataset)
    out = deidentify(phi.dataset, secret=SECRET)
    assert phi.dataset == before, "the input dataset was modified"
    assert phi.dataset.file_meta == before.file_meta
    data = dataset_to_bytes(out)
    return out, data, read_back(data)


def test_the_annex_e_table_covers_the_attributes_the_profile_names():
    keywords = {
        "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientAddress",
        "PatientTelephoneNumbers", "OtherPatientIDs", "OtherPatientNames",
        "OtherPatientIDsSequence",
        "PatientComments", "EthnicGroup", "Occupation", "InstitutionName", "InstitutionAddress",
        "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName",
        "NameOfPhysiciansReadingStudy", "RequestingPhysician", "OperatorsName",
        "DeviceSerialNumber", "StationName", "AccessionNumber", "StudyID",
        "RequestAttributesSequence", "StudyDescription", "SeriesDescription", "ImageComments",
        "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
        "ReferencedSOPInstanceUID", "MediaStorageSOPInstanceUID",
    }  # fmt: skip
    tags = {Tag(k) for k in keywords}
    assert tags <= ANNEX_E_IDENTIFYING_TAGS
    assert len(ANNEX_E_IDENTIFYING_TAGS) > 600


def test_no_phi_string_survives_anywhere_in_the_output_bytes(phi, cleaned):
    _out, data, _back = cleaned
    leaked = [t for t in phi.tokens if t.encode() in data]
    assert leaked == []
    leaked_uids = [u for u in phi.uids if u.encode() in data]
    assert leaked_uids == []


def test_each_annex_e_attribute_is_removed_emptied_or_replaced_per_its_action(phi, cleaned):
    _out, _data, back = cleaned
    days = date_shift_days(phi.originals[PATIENT_ID], secret=SECRET)
    token = pseudonym(phi.originals[PATIENT_ID], secret=SECRET, kind="patient")
    problems = []
    for tag, original in phi.originals.items():
        action = describe_action(tag)
        elem = back.get(tag)
        value = None if elem is None else elem.value
        vr = None if elem is None else elem.VR
        if tag.group == 0x0000:
            ok = elem is None  # command elements never belong in a stored dataset
        elif tag in (PATIENT_ID, PATIENT_NAME):
            ok = str(value) == token
        elif elem is not None and vr == "DA" and tag not in BIRTH:
            ok = value == shifted(original, days)
        elif elem is not None and vr == "DT" and tag not in BIRTH:
            ok = value == shifted(original[:8], days) + original[8:]
        elif elem is not None and vr == "TM" and tag not in BIRTH:
            ok = value == original  # the modified-dates option keeps times
        elif action == "U" or (vr == "UI" and action in ("D", "Z/D", "X/D")):
            ok = value == new_uid(original, secret=SECRET)
        elif action == "X":
            ok = elem is None
        elif action == "X/Z/U*":
            ok = len(value) == 1 and value[0].ReferencedSOPInstanceUID == new_uid(
                original[0].ReferencedSOPInstanceUID, secret=SECRET
            )
        elif action in ("Z", "X/Z", "X/Z/D") or vr == "SQ":
            ok = elem is None or value in (None, "", b"") or (vr == "SQ" and len(value) == 0)
        elif action in ("D", "Z/D", "X/D"):
            ok = elem is None or value != original
        else:
            ok = False
        if not ok:
            problems.append(f"{tag} {action} {vr}: {original!r} -> {value!r}")
    assert problems == []


def test_private_curve_overlay_and_command_elements_are_gone(cleaned):
    out, _data, back = cleaned
    assert not any(elem.tag.is_private for elem in out.iterall())
    groups = {elem.tag.group for elem in back}
    assert not any(0x5000 <= g <= 0x60FF for g in groups)
    assert 0x0000 not in groups and 0x0002 not in groups


def test_nested_sequences_outside_the_table_are_cleaned_recursively(phi, cleaned):
    _out, _data, back = cleaned
    item = back.AnatomicRegionSequence[0]
    assert item.PatientName == "" and item.OperatorsName == "" and item.InstitutionName == ""
    original = phi.dataset.AnatomicRegionSequence[0]
    assert item.ReferencedSOPInstanceUID == new_uid(
        original.ReferencedSOPInstanceUID, secret=SECRET
    )
    assert item.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # a class UID is kept
    inner = item.AnatomicRegionModifierSequence[0]
    assert inner.InstitutionName == ""
    assert inner.StudyInstanceUID == new_uid(
        original.AnatomicRegionModifierSequence[0].StudyInstanceUID, secret=SECRET
    )
    assert not any(elem.tag.is_private for elem in inner)


def test_deidentification_is_recorded_in_the_dataset(cleaned):
    _out, _data, back = cleaned
    assert back.PatientIdentityRemoved == "YES"
    assert "\\".join(back.DeidentificationMethod) == DEIDENTIFICATION_METHOD
    assert all(len(v) <= 64 for v in back.DeidentificationMethod)  # LO limit
    codes = [
        (c.CodeValue, c.CodingSchemeDesignator) for c in back.DeidentificationMethodCodeSequence
    ]
    assert codes == [("113100", "DCM"), ("113107", "DCM")]
    assert back.LongitudinalTemporalInformationModified == "MODIFIED"


def test_output_is_part10_with_zero_preamble_and_matching_media_storage_uid(phi, cleaned):
    _out, data, back = cleaned
    assert data[:128] == b"\x00" * 128 and data[128:132] == b"DICM"
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.SOPInstanceUID == new_uid(phi.originals[Tag(0x0008, 0x0018)], secret=SECRET)
    assert back.file_meta.MediaStorageSOPClassUID == back.SOPClassUID
    np.testing.assert_array_equal(back.pixel_array, [[1, 2], [3, 4]])


def _study_file(patient_id: str, study_uid: str, sop_uid: str, study_date: str) -> Dataset:
    ds = image_dataset(np.zeros((2, 2), np.uint16))
    ds.PatientID = patient_id
    ds.StudyInstanceUID = study_uid
    ds.SOPInstanceUID = sop_uid
    ds.FrameOfReferenceUID = study_uid + ".7"
    ds.StudyDate = study_date
    ds.SeriesDate = "20100320"
    return ds


def test_uids_are_consistent_across_files_of_one_study_and_distinct_otherwise():
    first = deidentify(_study_file("P1", "1.2.3.4", "1.2.3.4.1", "20100310"), secret=SECRET)
    second = deidentify(_study_file("P1", "1.2.3.4", "1.2.3.4.2", "20100310"), secret=SECRET)
    other = deidentify(_study_file("P2", "1.2.3.5", "1.2.3.4.1", "20100310"), secret=SECRET)
    assert first.StudyInstanceUID == second.StudyInstanceUID != "1.2.3.4"
    assert first.FrameOfReferenceUID == second.FrameOfReferenceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert other.StudyInstanceUID != first.StudyInstanceUID
    assert other.SOPInstanceUID == first.SOPInstanceUID  # same original UID, same new UID
    assert first.StudyInstanceUID.startswith("2.25.") and len(first.StudyInstanceUID) <= 64
    pydicom.uid.UID(first.StudyInstanceUID).is_valid  # noqa: B018


def test_date_shift_is_identical_for_one_patient_and_keeps_intervals():
    a = deidentify(_study_file("P1", "1.2.3.4", "1.2.3.4.1", "20100310"), secret=SECRET)
    b = deidentify(_study_file("P1", "1.2.9.9", "1.2.9.9.1", "20120101"), secret=SECRET)
    shift_a = (dt.datetime.strptime(a.StudyDate, "%Y%m%d") - dt.datetime(2010, 3, 10)).days
    shift_b = (dt.datetime.strptime(b.StudyDate, "%Y%m%d") - dt.datetime(2012, 1, 1)).days
    assert shift_a == shift_b == date_shift_days("P1", secret=SECRET)
    assert SHIFT_MIN_DAYS <= shift_a <= SHIFT_MAX_DAYS
    interval = dt.datetime.strptime(a.SeriesDate, "%Y%m%d") - dt.datetime.strptime(
        a.StudyDate, "%Y%m%d"
    )
    assert interval.days == 10  # 20100320 - 20100310
    assert a.PatientID == b.PatientID == pseudonym("P1", secret=SECRET, kind="patient")
    assert a.PatientName == a.PatientID


def test_another_secret_gives_other_pseudonyms_and_uids():
    ds = _study_file("P1", "1.2.3.4", "1.2.3.4.1", "20100310")
    one = deidentify(ds, secret=SECRET)
    two = deidentify(ds, secret=b"another-secret-of-enough-length")
    assert one.PatientID != two.PatientID and one.StudyInstanceUID != two.StudyInstanceUID


def test_pseudonyms_depend_on_kind_and_value():
    assert pseudonym("P1", secret=SECRET, kind="patient") == pseudonym(
        "P1", secret=SECRET, kind="patient"
    )
    assert pseudonym("P1", secret=SECRET, kind="patient") != pseudonym(
        "P2", secret=SECRET, kind="patient"
    )
    assert pseudonym("P1", secret=SECRET, kind="patient") != pseudonym(
        "P1", secret=SECRET, kind="accession"
    )
    assert pseudonym("P1", secret=SECRET, kind="patient").startswith("PATIENT-")


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="secret"):
        deidentify(_study_file("P1", "1.2.3", "1.2.3.1", "20100101"), secret=b"short")


def test_dataset_without_patient_id_is_keyed_by_its_study():
    a = deidentify(_study_file("", "1.2.3.4", "1.2.3.4.1", "20100310"), secret=SECRET)
    b = deidentify(_study_file("", "1.2.3.4", "1.2.3.4.2", "20100310"), secret=SECRET)
    c = deidentify(_study_file("", "1.2.3.5", "1.2.3.5.1", "20100310"), secret=SECRET)
    assert a.PatientID == b.PatientID != c.PatientID
    assert a.StudyDate == b.StudyDate


PYDICOM_FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "examples_overlay.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
]


def _u_action_uids(ds: Dataset) -> set[str]:
    found = set()
    for elem in ds.iterall():
        if elem.VR == "UI" and describe_action(elem.tag) in ("U", "D") and elem.value:
            found.update(str(v) for v in (elem.value if elem.VM > 1 else [elem.value]))
    return found


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_pydicom_test_files_lose_their_patient_identity_and_uids(name):
    original = pydicom.dcmread(PYDICOM_TEST_FILES / name, force=True)
    data = dataset_to_bytes(deidentify(original, secret=SECRET))
    back = read_back(data)
    for keyword in ("PatientName", "PatientID"):
        value = str(original.get(keyword, "") or "").strip()
        if len(value) >= 3:
            assert value.encode() not in data, f"{keyword} {value!r} survived"
    uids = _u_action_uids(original)
    assert uids, "the file should carry instance UIDs"
    remaining = {str(e.value) for e in [*back.iterall(), *back.file_meta] if e.VR == "UI"}
    assert uids.isdisjoint(remaining)
    # byte search too, except a UID that is a prefix of our own implementation class UID
    implementation = str(back.file_meta.ImplementationClassUID)
    assert [u for u in uids if u.encode() in data and not implementation.startswith(u)] == []
    assert back.PatientIdentityRemoved == "YES"
    assert back.SOPInstanceUID == new_uid(original.SOPInstanceUID, secret=SECRET)


def test_sop_uids_kept_only_in_the_file_meta_are_restored_and_mapped():
    ds = image_dataset(np.zeros((2, 2), np.uint16))
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    del ds.SOPInstanceUID
    del ds.SOPClassUID
    back = read_back(dataset_to_bytes(deidentify(ds, secret=SECRET)))
    assert back.SOPInstanceUID == new_uid("1.2.3.4.5.6", secret=SECRET)
    assert back.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
