"""Reliance on AI advice in two-stage reading (unaided first answer, then final answer with AI).

Definitions follow Schemmer et al. (2023), "Appropriate Reliance on AI Advice: Conceptualization
and the Effect of Explanations", IUI '23, for a binary finding. A read is eligible when it is a
main trial with the AI shown and with truth, first call, final call and AI call all known.
Write F1 = first call, F2 = final call, AI = the AI's call, T = truth; "AI right" means AI == T.
Since the task is binary, "F1 wrong and AI right" is the same as "F1 != AI and AI right", and
"F1 right and AI wrong" the same as "F1 != AI and AI wrong".

``switch_rate``
    #(F2 != F1) / #eligible.
``agreement_before`` / ``agreement_after``
    #(F1 == AI) / #eligible and #(F2 == AI) / #eligible.
``accuracy_before`` / ``accuracy_after`` / ``ai_accuracy``
    #(F1 == T), #(F2 == T), #(AI == T), each over #eligible.
``rair`` (relative AI reliance)
    #(F1 wrong, AI right, F2 right) / #(F1 wrong, AI right): of the reads where the AI could
    have corrected the reader, the share where the reader switched to the AI.
``rsr`` (relative self-reliance)
    #(F1 right, AI wrong, F2 right) / #(F1 right, AI wrong): of the reads where the AI could
    have misled the reader, the share where the reader kept the own correct answer.
``over_reliance``
    #(AI wrong, F1 != AI, F2 == AI) / #(AI wrong): adopting a wrong AI answer, per AI-wrong read.
``over_reliance_given_disagreement``
    the same count / #(AI wrong, F1 != AI); equals 1 - rsr.
``under_reliance``
    #(AI right, F1 != AI, F2 != AI) / #(AI right): rejecting a right AI after disagreeing with
    it, per AI-right read.
``under_reliance_given_disagreement``
    the same count / #(AI right, F1 != AI); equals 1 - rair.

Every measure is a ``proportions.Proportion`` with a Wilson interval that treats reads as
independent (descriptive; reads are clustered by reader and case). Empty denominators give None.
``outcomes`` counts the eight (AI, F1, F2) right/wrong patterns, from which every number can be
recomputed. Measures are given per arm, over all arms ("overall", arm None), for the AI-wrong
subgroup of each (subset "ai_wrong"), and per (arm, reader).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.stats.alignment import AlignmentTime, alignment_times
from analysis.stats.data import label_key
from analysis.stats.proportions import Proportion, wilson, z_value
from analysis.stats.reads import Read, ai_correct, arms_of, main_reads

SUBSETS = ("all", "ai_wrong")


@dataclass(frozen=True)
class Trial:
    """The right/wrong pattern of one eligible read."""

    ai_right: bool
    first_right: bool
    final_right: bool

    @property
    def switched(self) -> bool:
        return self.first_right != self.final_right

    @property
    def first_agrees(self) -> bool:
        return self.first_right == self.ai_right

    @property
    def final_agrees(self) -> bool:
        return self.final_right == self.ai_right


def _label(right: bool) -> str:
    return "right" if right else "wrong"


def outcome_key(ai_right: bool, first_right: bool, final_right: bool) -> str:
    return f"ai_{_label(ai_right)}/first_{_label(first_right)}/final_{_label(final_right)}"


@dataclass(frozen=True)
class RelianceMeasures:
    arm: str | None  # None: all arms together
    reader: str | None  # None: all readers together
    subset: str  # "all" or "ai_wrong"
    n_reads: int
    switch_rate: Proportion
    agreement_before: Proportion
    agreement_after: Proportion
    accuracy_before: Proportion
    accuracy_after: Proportion
    ai_accuracy: Proportion
    rair: Proportion
    rsr: Proportion
    over_reliance: Proportion
    over_reliance_given_disagreement: Proportion
    under_reliance: Proportion
    under_reliance_given_disagreement: Proportion
    outcomes: dict[str, int]


@dataclass(frozen=True)
class RelianceResult:
    conf_level: float
    method: str
    overall: RelianceMeasures
    arms: tuple[RelianceMeasures, ...]
    ai_wrong_overall: RelianceMeasures
    ai_wrong_arms: tuple[RelianceMeasures, ...]
    per_reader: tuple[RelianceMeasures, ...]
    n_eligible: int
    n_excluded: int  # main reads without AI shown or with an unknown call or truth
    alignment: tuple[AlignmentTime, ...] = ()  # time to the final answer (alignment.py)


def trial(read: Read) -> Trial | None:
    """The pattern of an eligible read, None for a read that is not eligible."""
    ai = ai_correct(read)
    if ai is None or read.first_positive is None or read.final_positive is None:
        return None
    truth = bool(read.truth)
    return Trial(ai, bool(read.first_positive) == truth, bool(read.final_positive) == truth)


def measures(
    trials: Sequence[Trial],
    *,
    arm: str | None = None,
    reader: str | None = None,
    subset: str = "all",
    conf_level: float = 0.95,
) -> RelianceMeasures:
    """Every reliance measure of a set of trials (see the module docstring)."""

    def share(numerator, denominator) -> Proportion:
        pool = [t for t in trials if denominator(t)]
        return wilson(sum(1 for t in pool if numerator(t)), len(pool), conf_level)

    def every(_t: Trial) -> bool:
        return True

    def adopted_wrong_ai(t: Trial) -> bool:
        return not t.ai_right and not t.first_agrees and t.final_agrees

    def rejected_right_ai(t: Trial) -> bool:
        return t.ai_right and not t.first_agrees and not t.final_agrees

    outcomes = {
        outcome_key(a, f, g): 0 for a in (True, False) for f in (True, False) for g in (True, False)
    }
    for t in trials:
        outcomes[outcome_key(t.ai_right, t.first_right, t.final_right)] += 1
    return RelianceMeasures(
        arm=arm,
        reader=reader,
        subset=subset,
        n_reads=len(trials),
        switch_rate=share(lambda t: t.switched, every),
        agreement_before=share(lambda t: t.first_agrees, every),
        agreement_after=share(lambda t: t.final_agrees, every),
        accuracy_before=share(lambda t: t.first_right, every),
        accuracy_after=share(lambda t: t.final_right, every),
        ai_accuracy=share(lambda t: t.ai_right, every),
        rair=share(lambda t: t.final_right, lambda t: t.ai_right and not t.first_right),
        rsr=share(lambda t: t.final_right, lambda t: not t.ai_right and t.first_right),
        over_reliance=share(adopted_wrong_ai, lambda t: not t.ai_right),
        over_reliance_given_disagreement=share(
            adopted_wrong_ai, lambda t: not t.ai_right and not t.first_agrees
        ),
        under_reliance=share(rejected_right_ai, lambda t: t.ai_right),
        under_reliance_given_disagreement=share(
            rejected_right_ai, lambda t: t.ai_right and not t.first_agrees
        ),
        outcomes=outcomes,
    )


def reliance(reads: Sequence[Read], *, conf_level: float = 0.95) -> RelianceResult:
    """Reliance measures of the eligible main reads per arm, overall, AI-wrong and per reader."""
    z_value(conf_level)
    main = main_reads(reads)
    tagged = [(r, t) for r in main if (t := trial(r)) is not None]
    arms = arms_of(r for r, _ in tagged)

    def build(keep, arm=None, reader=None, subset="all") -> RelianceMeasures:
        chosen = [t for r, t in tagged if keep(r) and (subset == "all" or not t.ai_right)]
        return measures(chosen, arm=arm, reader=reader, subset=subset, conf_level=conf_level)

    pairs = sorted(
        {(r.arm, r.reader) for r, _ in tagged}, key=lambda k: (label_key(k[0]), label_key(k[1]))
    )
    return RelianceResult(
        conf_level=conf_level,
        method="Schemmer et al. (2023) RAIR/RSR; Wilson score intervals",
        overall=build(lambda r: True),
        arms=tuple(build(lambda r, a=a: r.arm == a, arm=a) for a in arms),
        ai_wrong_overall=build(lambda r: True, subset="ai_wrong"),
        ai_wrong_arms=tuple(
            build(lambda r, a=a: r.arm == a, arm=a, subset="ai_wrong") for a in arms
        ),
        per_reader=tuple(
            build(lambda r, k=k: (r.arm, r.reader) == k, arm=k[0], reader=k[1]) for k in pairs
        ),
        n_eligible=len(tagged),
        n_excluded=len(main) - len(tagged),
        alignment=alignment_times(main),
    )
