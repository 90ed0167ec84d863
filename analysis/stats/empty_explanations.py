"""Main trials whose arm showed an empty explanation, and the accuracy without them.

An explanation is *empty* when its heatmap highlights (next to) nothing (the rule is the explain
app's ``EMPTY_RULE``, given to the report as ``StudyMeta.empty_rule``); readers then saw a
neutral "No region highlighted" state instead of a map. ``Read.explanation_empty`` marks such
trials (None for arms without a heatmap). Per arm this module counts them and, as a sensitivity
analysis, gives the pooled accuracy of the final answers with and without them (Wilson
intervals, reads treated as independent, like ``proportions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.stats.proportions import Proportion, wilson
from analysis.stats.reads import Read, arms_of, is_correct, main_reads


@dataclass(frozen=True)
class EmptyExplanationCount:
    arm: str
    heatmap_trials: int  # main trials of the arm whose heatmap state is known
    empty_trials: int  # of those, the trials that showed an empty explanation
    accuracy: Proportion  # final answers of every main trial of the arm
    accuracy_without_empty: Proportion  # the same without the empty-explanation trials


def _accuracy(reads: Sequence[Read], conf_level: float) -> Proportion:
    calls = [is_correct(r) for r in reads]
    known = [c for c in calls if c is not None]
    return wilson(sum(known), len(known), conf_level)


def empty_explanation_counts(
    reads: Sequence[Read], *, conf_level: float = 0.95
) -> tuple[EmptyExplanationCount, ...]:
    """One count per arm that shows a heatmap (some main read has ``explanation_empty`` set)."""
    main = main_reads(reads)
    out = []
    for arm in arms_of(main):
        mine = [r for r in main if r.arm == arm]
        known = [r for r in mine if r.explanation_empty is not None]
        if not known:
            continue
        kept = [r for r in mine if not r.explanation_empty]
        out.append(
            EmptyExplanationCount(
                arm=arm,
                heatmap_trials=len(known),
                empty_trials=sum(1 for r in known if r.explanation_empty),
                accuracy=_accuracy(mine, conf_level),
                accuracy_without_empty=_accuracy(kept, conf_level),
            )
        )
    return tuple(out)
