"""Writers of rating files that other MRMC software reads: iMRMC (Java), MRMCaov's long CSV and
RJafroc's Excel workbook (R).

Each takes an ``MRMCData`` and writes every read cell (NaN cells, not read, are left out). The
iMRMC text and the long CSV read back with ``analysis.stats.io`` into identical ``MRMCData``:
ratings are written with ``repr`` (integers without a decimal point), so no digit is lost.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from analysis.stats.data import MRMCData, MRMCInputError

WRITE_FORMATS = ("imrmc", "mrmcaov", "rjafroc")


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _cells(data: MRMCData):
    """(treatment, reader, case, truth, rating, diagnosis or None) of every read cell, by
    treatment, reader and case."""
    for t, r, c in zip(*np.nonzero(data.read), strict=True):
        diagnosis = None
        if data.diagnosis is not None and not math.isnan(data.diagnosis[t, r, c]):
            diagnosis = int(data.diagnosis[t, r, c])
        yield (
            data.treatments[t],
            data.readers[r],
            data.cases[c],
            int(data.truth[c]),
            float(data.ratings[t, r, c]),
            diagnosis,
        )


def _check_labels(data: MRMCData, separator: str, what: str) -> None:
    problems = [
        f"{kind} {label!r} contains {separator!r}, which the {what} format cannot hold"
        for kind, labels in (
            ("reader", data.readers),
            ("treatment", data.treatments),
            ("case", data.cases),
        )
        for label in labels
        if separator in label or label != label.strip()
    ]
    if problems:
        raise MRMCInputError(problems)


def write_imrmc(data: MRMCData, description: str = "") -> str:
    """The iMRMC input file: description lines, ``NR``/``N0``/``N1``/``NM`` counts,
    ``BEGIN DATA:``, one truth row ``-1,case,0,truth`` per case, then
    ``reader,case,modality,score`` rows."""
    _check_labels(data, ",", "iMRMC")
    lines = [line for line in description.splitlines() if line.strip()] or [
        "MRMC ratings exported for iMRMC"
    ]
    lines = [
        line
        for line in lines
        if not line.strip().upper().startswith("BEGIN DATA")
        and not line.strip().upper().startswith(("N0:", "N1:", "NR:", "NM:"))
    ]
    lines += [
        "",
        f"NR: {data.n_readers}",
        f"N0: {data.n_nondiseased}",
        f"N1: {data.n_diseased}",
        f"NM: {data.n_treatments}",
        "",
        "BEGIN DATA:",
    ]
    lines += [
        f"-1,{case},0,{int(truth)}" for case, truth in zip(data.cases, data.truth, strict=True)
    ]
    lines += [
        f"{reader},{case},{treatment},{_number(rating)}"
        for treatment, reader, case, _, rating, _ in _cells(data)
    ]
    return "\n".join(lines) + "\n"


def write_long_csv(data: MRMCData) -> str:
    """MRMCaov's long format: ``reader,treatment,case,truth,rating`` (plus ``diagnosis``, 0/1,
    when the data have a binary decision); one row per read cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with_diagnosis = data.diagnosis is not None
    writer.writerow(
        ["reader", "treatment", "case", "truth", "rating"]
        + (["diagnosis"] if with_diagnosis else [])
    )
    for treatment, reader, case, truth, rating, diagnosis in _cells(data):
        row = [reader, treatment, case, truth, _number(rating)]
        if with_diagnosis:
            row.append("" if diagnosis is None else diagnosis)
        writer.writerow(row)
    return buffer.getvalue()


def write_rjafroc(data: MRMCData) -> bytes:
    """RJafroc's ROC Excel workbook (``DfReadDataFile(file, format = "JAFROC")``).

    ``Truth``: CaseID, LesionID (0 non-diseased, 1 diseased), Weight (0/1), ReaderID and
    ModalityID (the readers and modalities that read the case, comma separated text: all of
    them), Paradigm (``ROC`` and ``crossed`` on the first two rows). ``FP``: ReaderID,
    ModalityID, CaseID, FP_Rating of the non-diseased cases. ``TP``: ReaderID, ModalityID, CaseID, LesionID, TP_Rating of the diseased ones.
    RJafroc wants integer case IDs, so cases are numbered 1, 2… in label order; the ``Cases``
    sheet maps each CaseID back to its label. Only fully crossed data fit this format.
    """
    from openpyxl import Workbook  # imported here: openpyxl loads slowly and only this needs it

    if data.design != "crossed":
        raise MRMCInputError(
            [
                f"RJafroc's Excel format holds fully crossed ROC data; these data are "
                f"{data.design}: export imrmc or mrmcaov instead"
            ]
        )
    _check_labels(data, ",", "RJafroc")
    case_id = {case: i for i, case in enumerate(data.cases, start=1)}
    book = Workbook()
    truth = book.active
    truth.title = "Truth"
    truth.append(["CaseID", "LesionID", "Weight", "ReaderID", "ModalityID", "Paradigm"])
    readers = ", ".join(data.readers)
    modalities = ", ".join(data.treatments)
    order = sorted(range(data.n_cases), key=lambda c: (int(data.truth[c]), c))
    for row, c in enumerate(order):
        diseased = int(data.truth[c])
        paradigm = ("ROC", "crossed")[row] if row < 2 else None
        truth.append([c + 1, diseased, diseased, readers, modalities, paradigm])
    fp = book.create_sheet("FP")
    fp.append(["ReaderID", "ModalityID", "CaseID", "FP_Rating"])
    tp = book.create_sheet("TP")
    tp.append(["ReaderID", "ModalityID", "CaseID", "LesionID", "TP_Rating"])
    for treatment, reader, case, diseased, rating, _ in _cells(data):
        ids = [reader, treatment, case_id[case]]
        if diseased:
            tp.append([*ids, 1, rating])
        else:
            fp.append([*ids, rating])
    cases = book.create_sheet("Cases")
    cases.append(["CaseID", "Case"])
    for case in data.cases:
        cases.append([case_id[case], case])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
