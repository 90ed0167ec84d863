"""How quickly readers align with the AI advice or depart from it (two-stage reading).

Prinster et al. (Radiology 2024) measure "simple trust" as how quickly a reader goes along with
or against the AI. Here, for each main read with an unaided first call, the AI's call shown and
a final call, the time from the AI output appearing to the final answer (``Read.final_seconds``:
the server's seconds on the final stage) is summarised per arm, per AI correctness (the AI's call
equals the truth) and per decision: ``aligned`` (the final call agrees with the AI) or
``departed`` (it does not). ``switched`` counts the aligned reads whose first call differed:
the reads that changed their mind to follow the AI. Medians and quartiles use numpy's default
(linear interpolation, Hyndman & Fan type 7), as the other summaries of the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.stats.data import label_key
from analysis.stats.reads import Read, main_reads


@dataclass(frozen=True)
class AlignmentTime:
    arm: str
    ai_right: bool
    decision: str  # "aligned" | "departed"
    n: int
    switched: int  # aligned reads whose first call differed from the AI's
    median_seconds: float
    q1_seconds: float
    q3_seconds: float


def _eligible(read: Read) -> bool:
    return (
        read.ai_positive is not None
        and read.truth is not None
        and read.first_positive is not None
        and read.final_positive is not None
        and read.final_seconds is not None
        and math.isfinite(read.final_seconds)
        and read.final_seconds > 0
    )


def alignment_times(reads: Sequence[Read]) -> tuple[AlignmentTime, ...]:
    """One summary per arm, AI correctness (right first) and decision that has reads."""
    groups: dict[tuple[str, bool, str], list[Read]] = {}
    for r in main_reads(reads):
        if not _eligible(r):
            continue
        decision = "aligned" if r.final_positive == r.ai_positive else "departed"
        groups.setdefault((r.arm, r.ai_positive == r.truth, decision), []).append(r)
    out = []
    for arm, ai_right, decision in sorted(
        groups, key=lambda k: (label_key(k[0]), not k[1], k[2] != "aligned")
    ):
        chosen = groups[(arm, ai_right, decision)]
        seconds = np.array([r.final_seconds for r in chosen], dtype=float)
        q1, median, q3 = np.percentile(seconds, [25, 50, 75])
        switched = sum(
            1 for r in chosen if decision == "aligned" and r.first_positive != r.ai_positive
        )
        out.append(
            AlignmentTime(
                arm, ai_right, decision, len(chosen), switched, float(median), float(q1), float(q3)
            )
        )
    return tuple(out)
