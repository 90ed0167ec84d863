"""One reader's trial as the study-level analyses see it, and its conversion to ``MRMCData``.

Every study-level function (proportions, reliance, agreement, ratings, reading_time,
explanation_gain) takes a sequence of ``Read``. Only main trials are analysed; training and
attention-check trials are dropped by ``main_reads`` at the start of each function.

``to_mrmc_data`` builds the dense (arm, reader, case) array of ``analysis.stats.data.MRMCData``
for the Obuchowski-Rockette analysis (mrmc.py). Cells a reader did not read under an arm stay
NaN, so fully crossed studies, Latin-square (split-plot / partially paired) layouts where each
reader reads each case under one arm, and cases nested within readers are all representable.
What ``MRMCData.from_records`` refuses (and this function therefore raises
``MRMCInputError`` for): a reader with no reads at all under some arm (readers nested within
arms), two reads of the same (reader, arm, case), a case with contradictory truth, and truth
with a single class.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields

from analysis.stats.data import MRMCData, MRMCInputError, Record, label_key

KINDS = ("main", "training", "attention")
STAGES = ("first", "final")


@dataclass(frozen=True)
class Read:
    """One trial of one reader (main trials only are analysed; ``kind`` says which)."""

    reader: str
    case: str
    arm: str  # neutral code, e.g. "A"
    kind: str = "main"  # main | training | attention
    truth: bool | None = None  # finding present (None: unknown -> excluded from accuracy)
    first_positive: bool | None = None  # unaided first-stage diagnosis (two-stage reading)
    final_positive: bool | None = None  # final diagnosis (single-stage: the only one)
    first_confidence: float | None = None
    final_confidence: float | None = None  # confidence that the finding is present
    ai_shown: bool = False
    ai_positive: bool | None = None  # the AI's predicted class is the positive finding
    ratings: Mapping[str, int] = field(default_factory=dict, hash=False)  # item -> 1..points
    seconds: float | None = None  # reading time of the trial
    final_seconds: float | None = None  # from the final stage appearing (AI shown) to its answer
    reader_experience: float | None = None  # years
    # the trial's arm shows a heatmap and that heatmap highlights (next to) nothing (the
    # explain app's EMPTY_RULE); None: the arm shows no heatmap, or it is not known
    explanation_empty: bool | None = None


def main_reads(reads: Iterable[Read]) -> list[Read]:
    """The main trials, in their original order."""
    return [r for r in reads if r.kind == "main"]


def arms_of(reads: Iterable[Read]) -> tuple[str, ...]:
    """Arm codes in label order ("2" before "10", then text)."""
    return tuple(sorted({r.arm for r in reads}, key=label_key))


def diagnosis(read: Read, stage: str = "final") -> bool | None:
    """The reader's call at ``stage`` ("first" or "final")."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    return read.first_positive if stage == "first" else read.final_positive


def is_correct(read: Read, stage: str = "final") -> bool | None:
    """Whether the reader's call at ``stage`` matches the truth; None when either is unknown."""
    call = diagnosis(read, stage)
    if call is None or read.truth is None:
        return None
    return bool(call) == bool(read.truth)


def ai_correct(read: Read) -> bool | None:
    """Whether the AI output shown on this trial was right; None when not shown or unknown."""
    if not read.ai_shown or read.ai_positive is None or read.truth is None:
        return None
    return bool(read.ai_positive) == bool(read.truth)


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def to_mrmc_data(
    reads: Sequence[Read],
    *,
    rating: str = "final_confidence",
    diagnosis_from: str | None = "final_positive",
    source: str = "",
) -> MRMCData:
    """The main reads as ``MRMCData`` (treatment = arm) for ``or_analysis``.

    ``rating`` names the ``Read`` attribute used as the ROC rating (``final_confidence``,
    ``first_confidence``, or a 0/1 call such as ``final_positive``). ``diagnosis_from`` names the
    attribute copied into the binary diagnosis array (used for sensitivity, specificity and
    accuracy); it is filled only when every kept read has it, else left out. Reads with unknown
    truth or a missing/non-finite rating are dropped. Raises ``MRMCInputError`` with every
    problem found (see the module docstring) and when no read is usable.
    """
    names = {f.name for f in fields(Read)}
    for attribute in (rating, diagnosis_from):
        if attribute is not None and attribute not in names:
            raise ValueError(f"Read has no attribute {attribute!r}")
    kept = [
        r
        for r in main_reads(reads)
        if r.truth is not None and _number(getattr(r, rating)) is not None
    ]
    if not kept:
        raise MRMCInputError([f"no main read has both a known truth and a {rating}"])
    calls = [getattr(r, diagnosis_from) for r in kept] if diagnosis_from else []
    with_calls = bool(calls) and all(c is not None for c in calls)
    records = [
        Record(
            reader=r.reader,
            treatment=r.arm,
            case=r.case,
            truth=int(bool(r.truth)),
            rating=_number(getattr(r, rating)),
            where=f"reader {r.reader}, arm {r.arm}, case {r.case}",
            diagnosis=int(bool(calls[i])) if with_calls else None,
        )
        for i, r in enumerate(kept)
    ]
    return MRMCData.from_records(records, source=source)
