"""End-of-session questionnaires: the instruments as data, their standard scoring, and summaries.

Pure Python/numpy/scipy (no Django). The instruments and their scoring live in
``studies.questionnaire_scoring`` (the reader's pages score answers when they are submitted, and
``studies`` may not import ``analysis``); they are re-exported here.

The instruments (NASA-TLX, SUS, trust in automation after Jian et al. 2000), their items,
citations and scoring rules are documented there, once.

Across readers: ``scores_by_group`` collects (reader, group, score) rows, ``summarize_groups``
gives n, mean, SD (sample, ddof = 1), median, min and max per group, and ``compare_groups``
tests two groups: the Wilcoxon signed-rank test on the readers who answered in both when the
readers are paired (within-reader designs), the Mann-Whitney U test otherwise (both two-sided,
``scipy.stats`` defaults). The results are frozen dataclasses whose ``dataclasses.asdict`` is
JSON-ready: no NaN or infinity, ``None`` where a number is undefined, with ``reason`` saying why.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from studies.questionnaire_scoring import (
    INSTRUMENTS,
    SUS,
    TLX,
    TLX_PERFORMANCE_ANCHORS,
    TLX_SUBSCALES,
    TRUST,
    Instrument,
    Item,
    QuestionnaireError,
    SusResult,
    TlxResult,
    TrustResult,
    _is_number,
    checked_answers,
    score_sus,
    score_tlx,
    score_trust,
    tlx_pairs,
    tlx_weights,
)

__all__ = [
    "GroupComparison",
    "GroupSummary",
    "INSTRUMENTS",
    "Instrument",
    "Item",
    "QuestionnaireError",
    "SUS",
    "SusResult",
    "TLX",
    "TLX_PERFORMANCE_ANCHORS",
    "TLX_SUBSCALES",
    "TRUST",
    "TlxResult",
    "TrustResult",
    "checked_answers",
    "compare_groups",
    "score_sus",
    "score_tlx",
    "score_trust",
    "scores_by_group",
    "summarize",
    "summarize_groups",
    "tlx_pairs",
    "tlx_weights",
]


# Across readers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSummary:
    group: str
    n: int
    mean: float | None  # None when n = 0
    sd: float | None  # sample SD (ddof = 1); None when n < 2
    median: float | None
    minimum: float | None
    maximum: float | None


@dataclass(frozen=True)
class GroupComparison:
    first: str
    second: str
    test: str | None  # "wilcoxon" (paired readers) or "mann-whitney"; None if none could run
    paired: bool
    n_first: int  # readers with a score in the group
    n_second: int
    n_pairs: int | None  # readers in both groups (paired test only)
    statistic: float | None  # scipy's: W (sum of ranks) for Wilcoxon, U of `first` for M-W
    p_value: float | None  # two-sided
    mean_difference: float | None  # first - second (paired: mean of the within-reader diffs)
    median_difference: float | None  # paired: median of the diffs; unpaired: of the medians
    note: str | None = None  # why a test is missing, or a caveat about the design


def _finite(value: object) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def scores_by_group(rows: Iterable[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """``(reader, group, score)`` rows -> group -> reader -> score; a reader once per group."""
    groups: dict[str, dict[str, float]] = {}
    problems = []
    for reader, group, score in rows:
        if reader in groups.setdefault(group, {}):
            problems.append(f"reader {reader}: more than one score in group {group}")
        elif not _is_number(score) or not math.isfinite(score):
            problems.append(f"reader {reader}, group {group}: {score!r} is not a finite score")
        else:
            groups[group][reader] = float(score)
    if problems:
        raise QuestionnaireError(problems)
    return groups


def summarize(group: str, scores: Iterable[float]) -> GroupSummary:
    values = np.asarray(list(scores), dtype=float)
    if values.size == 0:
        return GroupSummary(group, 0, None, None, None, None, None)
    sd = float(np.std(values, ddof=1)) if values.size >= 2 else None
    return GroupSummary(
        group=group,
        n=int(values.size),
        mean=float(np.mean(values)),
        sd=sd,
        median=float(np.median(values)),
        minimum=float(values.min()),
        maximum=float(values.max()),
    )


def summarize_groups(groups: Mapping[str, Mapping[str, float]]) -> tuple[GroupSummary, ...]:
    """One summary per group (arm or condition), in the mapping's order."""
    return tuple(summarize(group, scores.values()) for group, scores in groups.items())


def _paired(first: Mapping[str, float], second: Mapping[str, float]):
    readers = [reader for reader in first if reader in second]
    diffs = np.array([first[r] - second[r] for r in readers], dtype=float)
    left_out = len(first) + len(second) - 2 * len(readers)
    note = f"{left_out} score(s) of readers in only one group left out" if left_out else None
    if diffs.size == 0:
        return None, None, diffs, "no reader has a score in both groups"
    if not np.any(diffs):
        return None, None, diffs, "every reader's two scores are equal: no test"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's small-sample notices; the result is kept
        result = stats.wilcoxon([first[r] for r in readers], [second[r] for r in readers])
    return result.statistic, result.pvalue, diffs, note


def _unpaired(first: Mapping[str, float], second: Mapping[str, float]):
    if not first or not second:
        return None, None, "a group has no scores"
    shared = len(set(first) & set(second))
    note = f"{shared} reader(s) in both groups treated as independent" if shared else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.mannwhitneyu(list(first.values()), list(second.values()))
    return result.statistic, result.pvalue, note


def compare_groups(
    groups: Mapping[str, Mapping[str, float]],
    first: str,
    second: str,
    *,
    paired: bool | None = None,
) -> GroupComparison:
    """Two groups' scores compared: Wilcoxon signed-rank on paired readers, else Mann-Whitney U.

    ``paired=None`` pairs when both groups hold exactly the same readers (a within-reader
    design); ``paired=True`` uses the readers in both groups and notes how many were left out;
    ``paired=False`` always runs Mann-Whitney (noting readers found in both groups)."""
    a, b = groups.get(first, {}), groups.get(second, {})
    if paired is None:
        paired = bool(a) and set(a) == set(b)
    if paired:
        statistic, p_value, diffs, note = _paired(a, b)
        n_pairs = int(diffs.size)
        mean_diff = float(np.mean(diffs)) if diffs.size else None
        median_diff = float(np.median(diffs)) if diffs.size else None
    else:
        statistic, p_value, note = _unpaired(a, b)
        n_pairs = None
        mean_diff = median_diff = None
        if a and b:
            mean_diff = float(np.mean(list(a.values())) - np.mean(list(b.values())))
            median_diff = float(np.median(list(a.values())) - np.median(list(b.values())))
    ran = statistic is not None
    return GroupComparison(
        first=first,
        second=second,
        test=("wilcoxon" if paired else "mann-whitney") if ran else None,
        paired=paired,
        n_first=len(a),
        n_second=len(b),
        n_pairs=n_pairs,
        statistic=_finite(statistic) if ran else None,
        p_value=_finite(p_value) if ran else None,
        mean_difference=mean_diff,
        median_difference=median_diff,
        note=note,
    )
