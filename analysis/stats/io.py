"""Readers for MRMC rating files: long-format CSV and the iMRMC text format.

Both collect every problem they find (one line each) before raising MRMCInputError, so a user
fixing a file sees all of its problems at once.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from analysis.stats.data import MRMCData, MRMCInputError, Record, validate_records
from analysis.stats.fast_csv import parse_clean_long_csv

REQUIRED_COLUMNS = ("reader", "treatment", "case", "truth", "rating")
DIAGNOSIS_COLUMN = "diagnosis"
FORMATS = ("csv", "imrmc")


def _parse_rating(text: str | None, where: str, problems: list[str]) -> float | None:
    if text is None or not text.strip():
        problems.append(f"{where}: rating is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{where}: rating {text.strip()!r} is not a number")
        return None
    if not math.isfinite(value):
        problems.append(f"{where}: rating {text.strip()!r} is not a finite number")
        return None
    return value


def _parse_binary(text: str | None, name: str, where: str, problems: list[str]) -> int | None:
    if text is None or not text.strip():
        problems.append(f"{where}: {name} is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value not in (0.0, 1.0):
        problems.append(f"{where}: {name} {text.strip()!r} must be 0 or 1")
        return None
    return int(value)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MRMCInputError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise MRMCInputError([f"{path}: is a directory, not a file"]) from None
    except UnicodeDecodeError as exc:
        raise MRMCInputError(
            [f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
        ) from None


def read_long_csv(path: str | Path, case_column: str = "case", *, fast: bool = True) -> MRMCData:
    """Read ``reader,treatment,case,truth,rating`` rows (extra columns are ignored).

    ``truth`` is 1 for diseased and 0 for non-diseased. An optional ``diagnosis`` column (0/1)
    holds a binary decision for sensitivity/specificity/accuracy. ``case_column`` picks another
    column as the case identifier (e.g. mrmcaov's ``case2``/``case3`` split-plot codings);
    identifiers are kept as text, so "1.10" and "1.1" are different cases.

    A clean file is read column-wise (``analysis.stats.fast_csv``); any other file, and every
    file with ``fast=False``, row by row, which reports each problem found. Both give the same
    study for a clean file.
    """
    path = Path(path)
    text = _read_text(path)
    if fast:
        required = tuple(case_column if c == "case" else c for c in REQUIRED_COLUMNS)
        data = parse_clean_long_csv(text, str(path), required, case_column, DIAGNOSIS_COLUMN)
        if data is not None:
            return data
    return _read_long_csv_rows(path, text, case_column)


def _read_long_csv_rows(path: Path, text: str, case_column: str) -> MRMCData:
    """The row-by-row reader of ``read_long_csv``: collects every problem of the file."""
    reader = csv.DictReader(text.splitlines())
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    if not header:
        raise MRMCInputError([f"{path}: the file is empty (expected a header row)"])
    reader.fieldnames = header
    required = tuple(case_column if c == "case" else c for c in REQUIRED_COLUMNS)
    missing = [c for c in required if c not in header]
    if missing:
        raise MRMCInputError(
            [
                f"{path}: missing required column(s): {', '.join(missing)} "
                f"(found: {', '.join(header)})"
            ]
        )
    has_diagnosis = DIAGNOSIS_COLUMN in header

    problems: list[str] = []
    records: list[Record] = []
    for line_no, row in enumerate(reader, start=2):
        if not any((v or "").strip() for k, v in row.items() if k is not None):
            continue  # blank line
        where = f"line {line_no}"
        labels = {}
        for name in ("reader", "treatment", case_column):
            value = (row.get(name) or "").strip()
            if not value:
                problems.append(f"{where}: {name} is empty")
            labels[name] = value
        truth = _parse_binary(row.get("truth"), "truth", where, problems)
        rating = _parse_rating(row.get("rating"), where, problems)
        diagnosis = None
        if has_diagnosis and (row.get(DIAGNOSIS_COLUMN) or "").strip():
            diagnosis = _parse_binary(row.get(DIAGNOSIS_COLUMN), "diagnosis", where, problems)
        if not all(labels.values()):
            continue
        records.append(
            Record(
                labels["reader"],
                labels["treatment"],
                labels[case_column],
                truth,
                math.nan if rating is None else rating,
                where,
                diagnosis,
            )
        )
    return _assemble(path, records, problems)


def _assemble(path: Path, records: list[Record], problems: list[str]) -> MRMCData:
    """Add the structural problems to the parse problems; raise them all or build the study."""
    problems = problems + validate_records(records)
    if problems:
        raise MRMCInputError([f"{path}: {p}" for p in problems])
    return MRMCData.from_valid_records(records, source=str(path))


_HEADER_COUNT = re.compile(r"^\s*(N0|N1|NR|NM)\s*:\s*(\d+)\s*$", re.IGNORECASE)


def read_imrmc(path: str | Path) -> MRMCData:
    """Read an iMRMC input file.

    Free-text description lines and ``N0:``/``N1:``/``NR:``/``NM:`` counts come before
    ``BEGIN DATA:``; then rows ``readerID,caseID,modalityID,score``. Rows with reader ``-1`` give
    a case's truth in the score field (the modality field is ignored: iMRMC writes ``0``, some
    files write ``truth``).
    """
    path = Path(path)
    lines = _read_text(path).splitlines()
    counts, start = _imrmc_header(lines)
    if start is None:
        raise MRMCInputError([f"{path}: no 'BEGIN DATA:' line; is this an iMRMC file?"])
    problems: list[str] = []
    truth, rows = _imrmc_rows(lines, start, problems)
    for case_id in sorted({r[1] for r in rows} - truth.keys()):
        problems.append(f"case {case_id} has ratings but no truth row (-1,{case_id},0,truth)")
    n1 = sum(v for v, _ in truth.values())
    observed = {
        "N0": len(truth) - n1,
        "N1": n1,
        "NR": len({r[0] for r in rows}),
        "NM": len({r[2] for r in rows}),
    }
    names = {
        "N0": "non-diseased cases",
        "N1": "diseased cases",
        "NR": "readers",
        "NM": "modalities",
    }
    for key, expected in counts.items():
        if observed[key] != expected:
            problems.append(
                f"header says {key}: {expected} but the data have {observed[key]} {names[key]}"
            )
    records = [
        Record(
            reader_id,
            modality,
            case_id,
            truth[case_id][0] if case_id in truth else None,
            rating,
            where,
        )
        for reader_id, case_id, modality, rating, where in rows
    ]
    return _assemble(path, records, problems)


def _imrmc_header(lines: list[str]) -> tuple[dict[str, int], int | None]:
    """The header's N0/N1/NR/NM counts and the index of the first data line (None: no
    'BEGIN DATA' line)."""
    counts: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.strip().upper().startswith("BEGIN DATA"):
            return counts, i + 1
        match = _HEADER_COUNT.match(line)
        if match:
            counts[match.group(1).upper()] = int(match.group(2))
    return counts, None


def _imrmc_rows(lines: list[str], start: int, problems: list[str]):
    """(case -> (truth, where), [(reader, case, modality, rating, where)]) from the data
    lines; each malformed line adds a problem."""
    truth: dict[str, tuple[int, str]] = {}
    rows: list[tuple[str, str, str, float, str]] = []
    for line_no, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        where = f"line {line_no}"
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            problems.append(
                f"{where}: expected 4 fields (reader,case,modality,score), found {len(fields)}"
            )
            continue
        reader_id, case_id, modality, score = fields
        if not reader_id or not case_id or not modality:
            problems.append(f"{where}: reader, case and modality must not be empty")
            continue
        if reader_id == "-1":
            value = _parse_binary(score, "truth", where, problems)
            if value is None:
                continue
            if case_id in truth and truth[case_id][0] != value:
                problems.append(
                    f"case {case_id} has inconsistent truth: {truth[case_id][0]} "
                    f"at {truth[case_id][1]} but {value} at {where}"
                )
            truth.setdefault(case_id, (value, where))
            continue
        rating = _parse_rating(score, where, problems)
        rows.append((reader_id, case_id, modality, math.nan if rating is None else rating, where))
    return truth, rows


def read_study(path: str | Path, fmt: str | None = None, case_column: str = "case") -> MRMCData:
    """Read a study file; ``fmt`` is ``csv`` or ``imrmc`` (default: from the file extension)."""
    path = Path(path)
    if fmt is None:
        fmt = "imrmc" if path.suffix.lower() == ".imrmc" else "csv"
    if fmt == "csv":
        return read_long_csv(path, case_column=case_column)
    if fmt == "imrmc":
        return read_imrmc(path)
    raise MRMCInputError([f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}"])
