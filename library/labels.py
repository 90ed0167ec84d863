"""Ground-truth label files and lesion masks for imported cases.

Three CSV layouts are understood:

* generic: columns ``case`` and ``label`` (any case), optional ``mask`` and ``split``;
  ``label`` lists positive findings separated by ``|``.

Every layout may add a ``clinical_history`` column: the text readers are shown in the arms
that show it (library.clinical_history; blank: none).
* NIH ChestX-ray14 ``Data_Entry_2017.csv`` (``Image Index``, ``Finding Labels``, ...).
* CheXpert ``train.csv`` / ``valid.csv`` (``Path`` plus one column per finding, values
  1.0 / 0.0 / -1.0 (uncertain) / blank (not mentioned)).

Row numbers in problems are 1-based line numbers in the file (the header is line 1). The
lesion masks a labels file names are read by library.masks.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from library.clinical_history import clinical_history_clean, clinical_history_problem

GENERIC = "generic"
CHESTXRAY14 = "chestxray14"
CHEXPERT = "chexpert"

ACCEPTED_LAYOUTS = (
    "accepted layouts: generic (columns 'case' and 'label', optional 'mask' and 'split'), "
    "NIH ChestX-ray14 Data_Entry_2017.csv ('Image Index', 'Finding Labels', ...), "
    "CheXpert train.csv/valid.csv ('Path' and the finding columns)"
)

CHESTXRAY14_FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NO_FINDING = "No Finding"

CHEXPERT_FINDINGS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
CHEXPERT_MIN_FINDING_COLUMNS = 3
CHEXPERT_VALUES = {"1": 1, "1.0": 1, "0": 0, "0.0": 0, "-1": -1, "-1.0": -1}
CHEXPERT_PREFIX = re.compile(r"^(?:CheXpert-v1\.0(?:-small)?/)?(?:train|valid|test)/")

IMAGE_EXTENSIONS = frozenset(
    {".dcm", ".dicom", ".dic", ".ima", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy"}
)
"""Extensions dropped from keys. Others stay: DICOM files named by UID ("1.2.840.5") keep
their dots."""

MAX_LISTED_MATCHES = 3
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_KEY_CHARS = 255  # Case.key
MAX_LABEL_CHARS = 100  # CaseLabel.name
MAX_SPLIT_CHARS = 16  # Case.split
SHOWN_CHARS = 60  # values echoed in problems are cut to this length

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these runs as a formula when the value reaches a spreadsheet
(OWASP "CSV injection"); plain numbers such as -1.0 are exempt."""
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class LabelsError(Exception):
    """A label file or mask cannot be used; ``problems`` holds one line each."""

    def __init__(self, problems: str | list[str]):
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    def __str__(self) -> str:
        return "; ".join(self.problems)


@dataclass
class LabelRow:
    row: int  # line number in the CSV file (header = 1)
    case_key: str
    labels: dict[str, int]  # finding -> 1 positive, 0 negative, -1 uncertain
    mask: str | None = None
    split: str | None = None
    clinical_history: str = ""


# --------------------------------------------------------------------------- keys


def _shown(value: str) -> str:
    """``value`` quoted for a problem line, cut to SHOWN_CHARS characters."""
    value = value if len(value) <= SHOWN_CHARS else value[: SHOWN_CHARS - 1] + "…"
    return "'" + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in value) + "'"


def _is_formula(value: str) -> bool:
    text = value.strip(" ")
    return text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text.strip())


def _formula_problems(line: int | None, fields: list[str], header: list[str]) -> list[str]:
    problems = []
    for column, value in enumerate(fields):
        if _is_formula(value):
            where = f"row {line}" if line is not None else "header"
            name = header[column] if line is not None and column < len(header) else f"#{column + 1}"
            problems.append(
                f"{where}: column {_shown(name)} holds {_shown(value.strip())}, which a "
                "spreadsheet would run as a formula; refused"
            )
    return problems


def _strip_extension(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.suffix.lower() in IMAGE_EXTENSIONS:
        return str(pure.with_suffix(""))
    return path


def _normalise_path(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return re.sub("/+", "/", path).strip("/")


def file_key(relative_path: str) -> str:
    """Posix relative path without its image extension.

    ``a\\b/view1_frontal.jpg`` -> ``a/b/view1_frontal``; only known image extensions are
    dropped (see :data:`IMAGE_EXTENSIONS`).
    """
    return _strip_extension(_normalise_path(relative_path))


# --------------------------------------------------------------------------- CSV


def _read_text(source: bytes | str | Path) -> str:
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise LabelsError(f"cannot read label file '{source.name}': {exc.strerror}") from exc
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
    elif isinstance(source, str):
        if "\n" not in source and "\r" not in source and source.lower().endswith(".csv"):
            raise LabelsError(
                f"got the text {source!r}, which looks like a file name; pass a pathlib.Path "
                "to read a file (a str is read as CSV text)"
            )
        text = source.lstrip("\ufeff")
        if "\x00" in text:
            raise LabelsError(
                f"the label text holds NUL characters, not CSV text; {ACCEPTED_LAYOUTS}"
            )
        return text
    else:
        raise LabelsError(f"label source must be bytes, str or Path, not {type(source).__name__}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LabelsError("the label file is UTF-16 (or UTF-32) text; save it as UTF-8 CSV")
    if b"\x00" in data or data.startswith(PNG_MAGIC):
        raise LabelsError(f"the label file is binary, not CSV text; {ACCEPTED_LAYOUTS}")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _records(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, fields) for every non-blank record."""
    first_line = text.splitlines()[0] if text.strip() else ""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    last_line = 0
    try:
        for fields in reader:
            start = last_line + 1
            last_line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip().lstrip("\ufeff") for f in fields]
            else:
                rows.append((start, fields))
    except csv.Error as exc:
        raise LabelsError(f"line {reader.line_num}: not valid CSV ({exc})") from exc
    if header is None:
        raise LabelsError(f"the label file is empty; {ACCEPTED_LAYOUTS}")
    return header, rows


def _detect(header: list[str]) -> str:
    lower = {h.lower() for h in header}
    if {"image index", "finding labels"} <= lower:
        return CHESTXRAY14
    chexpert_columns = {f.lower() for f in CHEXPERT_FINDINGS} & lower
    if "path" in lower and len(chexpert_columns) >= CHEXPERT_MIN_FINDING_COLUMNS:
        return CHEXPERT
    if {"case", "label"} <= lower:
        return GENERIC
    shown = ", ".join(_shown(h) for h in header[:8]) + (" ..." if len(header) > 8 else "")
    raise LabelsError(f"the header ({shown}) matches no known layout; {ACCEPTED_LAYOUTS}")


def parse_labels_csv(source: bytes | str | Path) -> tuple[str, list[LabelRow]]:
    """Parse a label file: ``(format, rows)``. A ``str`` is CSV text; pass a ``Path`` for files.

    All problems are collected and raised together as one :class:`LabelsError`.
    """
    header, records = _records(_read_text(source))
    fmt = _detect(header)
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name in header:
        if name and name.lower() in seen:
            problems.append(f"column {_shown(name)} appears twice in the header")
        seen[name.lower()] = name
    problems.extend(_formula_problems(None, header, header))
    if problems:
        raise LabelsError(problems)
    index = {name.lower(): i for i, name in enumerate(header)}
    if not records:
        raise LabelsError("the label file has a header but no data rows")

    parse_row = {GENERIC: _generic_row, CHESTXRAY14: _chestxray14_row, CHEXPERT: _chexpert_row}[fmt]
    rows: list[LabelRow] = []
    for line, fields in records:
        if len(fields) > len(header):
            problems.append(
                f"row {line}: {len(fields)} fields but the header has {len(header)} columns"
            )
            continue
        formulas = _formula_problems(line, fields, header)
        if formulas:
            problems.extend(formulas)
            continue
        fields = [f.strip() for f in fields] + [""] * (len(header) - len(fields))
        row = parse_row(line, fields, index, header, problems)
        history = _clinical_history(line, fields, index, problems)
        if row is not None and history is not None:
            row.clinical_history = history
            rows.append(row)
    problems.extend(_duplicate_problems(rows))
    if problems:
        raise LabelsError(problems)
    return fmt, rows


def _generic_row(
    line: int, fields: list[str], index: dict[str, int], header: list[str], problems: list[str]
) -> LabelRow | None:
    case = _strip_extension(_normalise_path(fields[index["case"]]))
    findings = [f.strip() for f in fields[index["label"]].split("|") if f.strip()]
    ok = True
    if not case:
        problems.append(f"row {line}: blank value in column 'case'")
        ok = False
    if not findings:
        problems.append(f"row {line}: blank value in column 'label'")
        ok = False
    mask = fields[index["mask"]] if "mask" in index else ""
    split = fields[index["split"]] if "split" in index else ""
    ok = _lengths_ok(line, case, findings, split, problems) and ok
    if not ok:
        return None
    return LabelRow(
        row=line,
        case_key=case,
        labels=dict.fromkeys(findings, 1),
        mask=mask or None,
        split=split or None,
    )


def _lengths_ok(line: int, case: str, findings: list[str], split: str, problems: list[str]) -> bool:
    before = len(problems)
    if len(case) > MAX_KEY_CHARS:
        problems.append(
            f"row {line}: case {_shown(case)} has {len(case)} characters, "
            f"the limit is {MAX_KEY_CHARS}"
        )
    for name in findings:
        if len(name) > MAX_LABEL_CHARS:
            problems.append(
                f"row {line}: label {_shown(name)} has {len(name)} characters, "
                f"the limit is {MAX_LABEL_CHARS}"
            )
    if len(split) > MAX_SPLIT_CHARS:
        problems.append(
            f"row {line}: split {_shown(split)} has {len(split)} characters, "
            f"the limit is {MAX_SPLIT_CHARS}"
        )
    return len(problems) == before


def _clinical_history(
    line: int, fields: list[str], index: dict[str, int], problems: list[str]
) -> str | None:
    """The row's cleaned clinical history ("" without the column), or None with a problem."""
    if "clinical_history" not in index:
        return ""
    history = clinical_history_clean(fields[index["clinical_history"]])
    problem = clinical_history_problem(history)
    if problem is not None:
        problems.append(f"row {line}: {problem}")
        return None
    return history


_CHESTXRAY14_CANONICAL = {f.lower(): f for f in (*CHESTXRAY14_FINDINGS, NO_FINDING)}


def _chestxray14_row(
    line: int, fields: list[str], index: dict[str, int], header: list[str], problems: list[str]
) -> LabelRow | None:
    image = fields[index["image index"]]
    listed = [f.strip() for f in fields[index["finding labels"]].split("|") if f.strip()]
    before = len(problems)
    if not image:
        problems.append(f"row {line}: blank value in column 'Image Index'")
    if not listed:
        problems.append(f"row {line}: blank value in column 'Finding Labels'")
    findings = []
    for name in listed:
        canonical = _CHESTXRAY14_CANONICAL.get(name.lower())
        if canonical is None:
            problems.append(
                f"row {line}: unknown finding {_shown(name)} in column 'Finding Labels'"
            )
        else:
            findings.append(canonical)
    if NO_FINDING in findings and len(set(findings)) > 1:
        problems.append(f"row {line}: '{NO_FINDING}' is listed together with other findings")
    if len(problems) > before:
        return None
    labels = dict.fromkeys(CHESTXRAY14_FINDINGS, 0)
    labels[NO_FINDING] = 0
    for name in findings:
        labels[name] = 1
    return LabelRow(row=line, case_key=_strip_extension(_normalise_path(image)), labels=labels)


def _chexpert_row(
    line: int, fields: list[str], index: dict[str, int], header: list[str], problems: list[str]
) -> LabelRow | None:
    path = _normalise_path(fields[index["path"]])
    before = len(problems)
    if not path:
        problems.append(f"row {line}: blank value in column 'Path'")
    labels: dict[str, int] = {}
    for finding in CHEXPERT_FINDINGS:
        column = index.get(finding.lower())
        if column is None:
            continue
        raw = fields[column]
        if raw == "":
            continue
        value = CHEXPERT_VALUES.get(raw)
        if value is None:
            problems.append(
                f"row {line}: unknown value {_shown(raw)} in column {_shown(header[column])}"
            )
        else:
            labels[finding] = value
    if len(problems) > before:
        return None
    case = _strip_extension(CHEXPERT_PREFIX.sub("", path))
    return LabelRow(row=line, case_key=case, labels=labels)


def _duplicate_problems(rows: list[LabelRow]) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for row in rows:
        if row.case_key in first:
            problems.append(
                f"row {row.row}: case {_shown(row.case_key)} already appears "
                f"in row {first[row.case_key]}"
            )
        else:
            first[row.case_key] = row.row
    return problems


# --------------------------------------------------------------------------- matching


def match_rows_to_files(rows: list[LabelRow], file_keys: Iterable[str]) -> dict[str, LabelRow]:
    """Map each file key to its label row.

    A row matches a file when the keys are equal or the file key ends with ``"/" + case key``.
    Every row must match exactly one file and every file at most one row; all violations
    (and duplicate case keys) are raised together.
    """
    by_suffix: dict[str, list[str]] = {}
    for key in dict.fromkeys(file_keys):  # dedupe, keep order
        parts = key.split("/")
        for i in range(len(parts)):
            by_suffix.setdefault("/".join(parts[i:]), []).append(key)

    problems = _duplicate_problems(rows)
    matched: dict[str, LabelRow] = {}
    for row in rows:
        key = _strip_extension(_normalise_path(row.case_key))
        candidates = by_suffix.get(key, [])
        if not candidates:
            problems.append(f"row {row.row}: case {_shown(row.case_key)} matches no imported file")
        elif len(candidates) > 1:
            shown = ", ".join(f"'{c}'" for c in candidates[:MAX_LISTED_MATCHES])
            more = len(candidates) - MAX_LISTED_MATCHES
            problems.append(
                f"row {row.row}: case {_shown(row.case_key)} matches {len(candidates)} files "
                f"({shown}{f' and {more} more' if more > 0 else ''})"
            )
        elif candidates[0] in matched:
            problems.append(
                f"row {row.row}: case {_shown(row.case_key)} matches file {_shown(candidates[0])}, "
                f"which row {matched[candidates[0]].row} already matched"
            )
        else:
            matched[candidates[0]] = row
    if problems:
        raise LabelsError(problems)
    return matched
