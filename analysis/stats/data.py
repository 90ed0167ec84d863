"""The in-memory form of an MRMC reader study and the checks that guard it.

A study is a set of ratings indexed by (treatment, reader, case). Ratings live in a dense array of
shape (T, R, C) with NaN where a reader did not read a case under a treatment, so every design
(fully crossed, cases nested within readers or within treatments, partially paired) has the same
form and the estimators need no special cases beyond the read mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_REPORTED_PROBLEMS = 50


class MRMCInputError(ValueError):
    """Bad study data. ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: Sequence[str]):
        problems = list(problems)
        if len(problems) > MAX_REPORTED_PROBLEMS:
            extra = len(problems) - MAX_REPORTED_PROBLEMS
            problems = problems[:MAX_REPORTED_PROBLEMS] + [f"... and {extra} more problems"]
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Record:
    """One parsed input row. ``where`` names its place in the file for error messages."""

    reader: str
    treatment: str
    case: str
    truth: int | None
    rating: float
    where: str
    diagnosis: int | None = None


def label_key(label: str) -> tuple[int, float, str]:
    """Sort numeric labels by value ("2" before "10"), then any others by text."""
    try:
        value = float(label)
    except ValueError:
        return (1, 0.0, label)
    if math.isnan(value):
        return (1, 0.0, label)
    return (0, value, label)


@dataclass(frozen=True, eq=False)
class MRMCData:
    """Ratings of cases by readers under treatments (arms).

    ``ratings`` and ``diagnosis`` have shape (T, R, C) with NaN where a case was not read.
    ``truth`` has shape (C,) with 1 for diseased (positive) and 0 for non-diseased cases.
    """

    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    cases: tuple[str, ...]
    truth: np.ndarray
    ratings: np.ndarray
    diagnosis: np.ndarray | None = None
    source: str = ""
    read: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shape = (len(self.treatments), len(self.readers), len(self.cases))
        if self.ratings.shape != shape:
            raise ValueError(f"ratings have shape {self.ratings.shape}, expected {shape}")
        if self.truth.shape != (len(self.cases),):
            raise ValueError(f"truth has shape {self.truth.shape}, expected ({len(self.cases)},)")
        if self.diagnosis is not None and self.diagnosis.shape != shape:
            raise ValueError(f"diagnosis has shape {self.diagnosis.shape}, expected {shape}")
        object.__setattr__(self, "read", ~np.isnan(self.ratings))

    @property
    def n_treatments(self) -> int:
        return len(self.treatments)

    @property
    def n_readers(self) -> int:
        return len(self.readers)

    @property
    def n_cases(self) -> int:
        return len(self.cases)

    @property
    def n_diseased(self) -> int:
        return int(self.truth.sum())

    @property
    def n_nondiseased(self) -> int:
        return self.n_cases - self.n_diseased

    @property
    def design(self) -> str:
        """Name the layout of the read mask.

        ``crossed``: every reader read every case under every treatment.
        ``cases within readers``: each case was read by exactly one reader (split plot).
        ``cases within treatments``: each case was read under exactly one treatment.
        ``partially paired``: anything else (e.g. Kundel: some treatments share cases).
        """
        read = self.read
        if read.all():
            return "crossed"
        readers_per_case = read.any(axis=0).sum(axis=0)
        treatments_per_case = read.any(axis=1).sum(axis=0)
        if self.n_readers > 1 and (readers_per_case == 1).all():
            return "cases within readers"
        if self.n_treatments > 1 and (treatments_per_case == 1).all():
            return "cases within treatments"
        return "partially paired"

    @property
    def mrmcaov_design(self) -> str:
        """The design as MRMCaov's ``mrmc()`` prints it ("Experimental design: ...").

        ``factorial``: every unit read every case; ``cases nested within reader``: each case was
        read by one reader; ``cases nested within treatment``: each case was read under one
        treatment; ``factorial (partially paired)``: anything else (MRMCaov's design -1). The
        checks run in MRMCaov's order (readers first), and the variable names are those of its
        VanDyke example.
        """
        read = self.read
        if read.all():
            return "factorial"
        if (read.any(axis=0).sum(axis=0) == 1).all():
            return "cases nested within reader"
        if (read.any(axis=1).sum(axis=0) == 1).all():
            return "cases nested within treatment"
        return "factorial (partially paired)"

    @classmethod
    def from_arrays(
        cls,
        ratings: np.ndarray,
        truth: np.ndarray,
        treatments: Sequence[str] | None = None,
        readers: Sequence[str] | None = None,
        cases: Sequence[str] | None = None,
        diagnosis: np.ndarray | None = None,
        source: str = "",
    ) -> MRMCData:
        """Build a study from a (T, R, C) rating array (NaN = not read), e.g. a simulation."""
        ratings = np.asarray(ratings, dtype=float)
        if ratings.ndim != 3:
            raise ValueError("ratings must have shape (treatments, readers, cases)")
        t, r, c = ratings.shape
        return cls(
            treatments=tuple(treatments or (str(i) for i in range(t))),
            readers=tuple(readers or (str(i) for i in range(r))),
            cases=tuple(cases or (str(i) for i in range(c))),
            truth=np.asarray(truth, dtype=np.int8),
            ratings=ratings,
            diagnosis=None if diagnosis is None else np.asarray(diagnosis, dtype=float),
            source=source,
        )

    @classmethod
    def from_records(cls, records: Sequence[Record], source: str = "") -> MRMCData:
        """Validate parsed rows and assemble the study; raise MRMCInputError listing problems."""
        problems = validate_records(records, source)
        if problems:
            raise MRMCInputError(problems)
        return cls.from_valid_records(records, source)

    @classmethod
    def from_valid_records(cls, records: Sequence[Record], source: str = "") -> MRMCData:
        """Assemble the study from rows that ``validate_records`` has found no problem in.

        For readers that run ``validate_records`` themselves (to report its problems together
        with their own), so the rows are not checked twice.
        """
        treatments = tuple(sorted({r.treatment for r in records}, key=label_key))
        readers = tuple(sorted({r.reader for r in records}, key=label_key))
        truth_of = {r.case: r.truth for r in records}
        cases = tuple(sorted(truth_of, key=label_key))
        t_index = {t: i for i, t in enumerate(treatments)}
        r_index = {r: i for i, r in enumerate(readers)}
        c_index = {c: i for i, c in enumerate(cases)}
        shape = (len(treatments), len(readers), len(cases))
        ratings = np.full(shape, np.nan)
        with_diagnosis = records[0].diagnosis is not None
        diagnosis = np.full(shape, np.nan) if with_diagnosis else None
        for rec in records:
            idx = (t_index[rec.treatment], r_index[rec.reader], c_index[rec.case])
            ratings[idx] = rec.rating
            if diagnosis is not None:
                diagnosis[idx] = rec.diagnosis
        truth = np.array([truth_of[c] for c in cases], dtype=np.int8)
        return cls(treatments, readers, cases, truth, ratings, diagnosis, source)


def validate_records(records: Sequence[Record], source: str = "") -> list[str]:
    """Structural problems of a set of rows, one line each (empty when the rows are usable).

    Rows whose rating could not be parsed may be passed with a NaN rating and rows whose truth
    could not be parsed with truth None: they still count for the duplicate and missing-arm
    checks, so one pass over a file reports everything wrong with it.
    """
    if not records:
        return [f"{source or 'input'}: no data rows"]
    problems: list[str] = []
    truth_of: dict[str, tuple[int, str]] = {}
    reported_cases: set[str] = set()
    seen: dict[tuple[str, str, str], str] = {}
    for rec in records:
        if rec.truth is not None:
            first = truth_of.setdefault(rec.case, (rec.truth, rec.where))
            if first[0] != rec.truth and rec.case not in reported_cases:
                reported_cases.add(rec.case)
                problems.append(
                    f"case {rec.case} has inconsistent truth: {first[0]} at {first[1]} "
                    f"but {rec.truth} at {rec.where}"
                )
        key = (rec.reader, rec.treatment, rec.case)
        if key in seen:
            problems.append(
                f"{rec.where}: duplicate rating for reader {rec.reader}, treatment "
                f"{rec.treatment}, case {rec.case} (first at {seen[key]})"
            )
        else:
            seen[key] = rec.where

    classes = {t for t, _ in truth_of.values()}
    if len(classes) == 1:
        only = "diseased (1)" if classes == {1} else "non-diseased (0)"
        problems.append(
            f"truth has a single class: every case is {only}; "
            "an ROC analysis needs both diseased and non-diseased cases"
        )

    treatments = sorted({r.treatment for r in records}, key=label_key)
    readers = sorted({r.reader for r in records}, key=label_key)
    pairs = {(r.reader, r.treatment) for r in records}
    for reader in readers:
        for treatment in treatments:
            if (reader, treatment) not in pairs:
                problems.append(f"reader {reader} has no ratings under treatment {treatment}")

    has_diag = [r.diagnosis is not None for r in records]
    if any(has_diag) and not all(has_diag):
        problems.append("the diagnosis column is filled on some rows and empty on others")
    return problems
