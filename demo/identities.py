"""Fake but realistic-looking identifying data for the demo DICOM files.

None of it belongs to a real person; it is there so that import has something to strip.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

FAMILY_NAMES = (
    "Doe",
    "Roe",
    "Smith",
    "Jones",
    "Miller",
    "Novak",
    "Garcia",
    "Kowalski",
    "Nguyen",
    "Brown",
    "Müller",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Jansen",
    "Larsen",
    "Okafor",
    "Tanaka",
    "Silva",
    "Fischer",
    "Moreau",
    "Kaya",
    "Haddad",
    "Ivanova",
    "Walsh",
    "Berg",
    "Costa",
    "Lindqvist",
)
GIVEN_NAMES_F = (
    "Jane",
    "Mary",
    "Anna",
    "Sofia",
    "Emma",
    "Olivia",
    "Mia",
    "Grace",
    "Leila",
    "Chloé",
    "Ingrid",
    "Aiko",
    "Fatima",
    "Elena",
    "Nora",
    "Ruth",
)
GIVEN_NAMES_M = (
    "John",
    "Peter",
    "Ahmed",
    "Lukas",
    "Marco",
    "Jonas",
    "David",
    "Kenji",
    "Omar",
    "Pavel",
    "Samuel",
    "Tomás",
    "Erik",
    "Luis",
    "Felix",
    "Noah",
)
INSTITUTIONS = (
    "St. Example General Hospital",
    "Riverside Community Clinic",
    "Northfield University Hospital",
    "Lakeside Radiology Centre",
    "Mercy Demo Medical Center",
)
PHYSICIANS = ("House^Gregory", "Quinn^Michaela", "Grey^Meredith", "Kildare^James", "Who^The")
STATIONS = ("XR-ROOM1", "XR-ROOM2", "DR-PORTABLE", "CR-READER-A")


@dataclass(frozen=True)
class FakePatient:
    name: str  # DICOM PN, "Family^Given"
    patient_id: str
    birth_date: str  # YYYYMMDD
    sex: str  # "F" or "M"
    address: str


@dataclass(frozen=True)
class FakeStudy:
    date: str  # YYYYMMDD
    time: str  # HHMMSS
    accession: str
    study_id: str
    institution: str
    referring_physician: str
    operator: str
    station: str
    device_serial: str


def make_patient(rng: np.random.Generator) -> FakePatient:
    sex = "F" if rng.random() < 0.5 else "M"
    given = GIVEN_NAMES_F if sex == "F" else GIVEN_NAMES_M
    name = f"{FAMILY_NAMES[rng.integers(len(FAMILY_NAMES))]}^{given[rng.integers(len(given))]}"
    birth = dt.date(1935, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 65)))
    street = int(rng.integers(1, 200))
    return FakePatient(
        name=name,
        patient_id=f"MRN{int(rng.integers(10**6, 10**7))}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        address=f"{street} Example Street, Demo City",
    )


def make_study(rng: np.random.Generator, date: dt.date) -> FakeStudy:
    seconds = int(rng.integers(7 * 3600, 19 * 3600))
    hh, rest = divmod(seconds, 3600)
    mm, ss = divmod(rest, 60)
    operator = (
        f"{FAMILY_NAMES[rng.integers(len(FAMILY_NAMES))]}^"
        f"{GIVEN_NAMES_F[rng.integers(len(GIVEN_NAMES_F))]}"
    )
    return FakeStudy(
        date=date.strftime("%Y%m%d"),
        time=f"{hh:02d}{mm:02d}{ss:02d}",
        accession=f"ACC{int(rng.integers(10**7, 10**8))}",
        study_id=str(int(rng.integers(1000, 99999))),
        institution=INSTITUTIONS[rng.integers(len(INSTITUTIONS))],
        referring_physician=PHYSICIANS[rng.integers(len(PHYSICIANS))],
        operator=operator,
        station=STATIONS[rng.integers(len(STATIONS))],
        device_serial=f"SN-{int(rng.integers(10**5, 10**6))}",
    )


def draw_study_date(rng: np.random.Generator) -> dt.date:
    return dt.date(2015, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 9)))
