"""End-of-session questionnaires: the instruments as data and their standard scoring.

Pure Python/numpy (no Django, no ``core``, no models): the reader's questionnaire pages validate
and score answers with it when they are submitted, and ``analysis.stats.questionnaires`` (which
re-exports everything here and adds the summaries across readers) uses the same definitions.
It lives in ``studies`` because ``studies`` may not import ``analysis`` and ``analysis.stats`` may
not import ``core``. Three instruments, each with its published items and rule:

* **NASA-TLX** (Hart & Staveland 1988, "Development of NASA-TLX (Task Load Index): results of
  empirical and theoretical research", in *Human Mental Workload*, pp. 139-183). Six subscales
  (mental, physical and temporal demand, performance, effort, frustration), each rated on the
  21-point scale, recorded as 0-100 in steps of 5 ("very low"-"very high"; performance is
  anchored "perfect" (0) - "failure" (100), so higher is more workload on every subscale and no
  item is reversed). ``raw_tlx`` is the unweighted mean of the six ratings (RTLX; Hart 2006,
  "NASA-Task Load Index (NASA-TLX); 20 years later", Proc. HFES 50, 904-908). When the 15
  pairwise comparisons are given (one choice for each of the 15 distinct pairs of subscales, the
  "more important contributor to workload"), each subscale's weight is the number of times it
  was chosen (0-5, summing to 15) and ``weighted_tlx = sum(weight x rating) / 15``.
* **SUS**, the System Usability Scale (Brooke 1996, "SUS: a 'quick and dirty' usability scale",
  in *Usability Evaluation in Industry*, pp. 189-194). Ten items, 1 (strongly disagree) - 5
  (strongly agree); odd items contribute ``x - 1``, even items ``5 - x``; the sum (0-40) times
  2.5 is the score, 0-100. (Adjective or acceptability bands are not provided.)
* **Trust in automation** (Jian, Bisantz & Drury 2000, "Foundations for an empirically determined
  scale of trust in automated systems", *Int. J. Cognitive Ergonomics* 4(1), 53-71). Twelve
  items, 1 (not at all) - 7 (extremely); items 1-5 express distrust, items 6-12 trust. Scoring
  convention used here: ``trust`` is the mean of all twelve after reverse-keying items 1-5
  (``8 - x``), on 1-7, higher = more trust; ``distrust_mean`` (items 1-5, as answered, higher =
  more distrust) and ``trust_mean`` (items 6-12) are the two subscale means, reported because
  the factor structure supports two separate factors rather than one bipolar scale (Spain,
  Bustamante & Bliss 2008, "Towards an empirically developed scale for system trust: take two",
  Proc. HFES 52, 1335-1339).

``score_tlx``, ``score_sus`` and ``score_trust`` either return the whole score or raise
``QuestionnaireError`` (a ``ValueError``) listing every problem, one line each (missing or unknown
items, a value that is not a number, out of range, or not on the scale's step); a partial score
is never returned.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np


class QuestionnaireError(ValueError):
    """Answers that cannot be scored; ``problems`` has one human-readable line per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# The instruments as data -----------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    key: str
    text: str
    subscale: str
    reverse: bool = False  # reverse-keyed in the instrument's total score


@dataclass(frozen=True)
class Instrument:
    key: str
    name: str
    citation: str
    items: tuple[Item, ...]
    low: int  # the scale's lowest value
    high: int
    step: int
    low_anchor: str
    high_anchor: str
    subscales: tuple[str, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.items)


TLX_SUBSCALES = (
    "mental_demand",
    "physical_demand",
    "temporal_demand",
    "performance",
    "effort",
    "frustration",
)
TLX_PERFORMANCE_ANCHORS = ("Perfect", "Failure")  # the one subscale not anchored low-high

TLX = Instrument(
    key="nasa_tlx",
    name="NASA Task Load Index (NASA-TLX)",
    citation="Hart SG, Staveland LE (1988). Human Mental Workload, 139-183; Hart SG (2006). "
    "Proc. HFES 50, 904-908.",
    items=tuple(
        Item(key, text, subscale=key)
        for key, text in zip(
            TLX_SUBSCALES,
            (
                "How mentally demanding was the task?",
                "How physically demanding was the task?",
                "How hurried or rushed was the pace of the task?",
                "How successful were you in accomplishing what you were asked to do?",
                "How hard did you have to work to accomplish your level of performance?",
                "How insecure, discouraged, irritated, stressed, and annoyed were you?",
            ),
            strict=True,
        )
    ),
    low=0, high=100, step=5,  # the 21-point scale
    low_anchor="Very Low", high_anchor="Very High",
    subscales=TLX_SUBSCALES,
)

SUS = Instrument(
    key="sus",
    name="System Usability Scale (SUS)",
    citation="Brooke J (1996). SUS: a 'quick and dirty' usability scale. In Usability "
    "Evaluation in Industry, 189-194.",
    items=tuple(
        Item(f"sus_{n}", text, subscale="usability", reverse=n % 2 == 0)
        for n, text in enumerate(
            (
                "I think that I would like to use this system frequently.",
                "I found the system unnecessarily complex.",
                "I thought the system was easy to use.",
                "I think that I would need the support of a technical person to be able to use "
                "this system.",
                "I found the various functions in this system were well integrated.",
                "I thought there was too much inconsistency in this system.",
                "I would imagine that most people would learn to use this system very quickly.",
                "I found the system very cumbersome to use.",
                "I felt very confident using the system.",
                "I needed to learn a lot of things before I could get going with this system.",
            ),
            start=1,
        )
    ),
    low=1, high=5, step=1,
    low_anchor="Strongly disagree", high_anchor="Strongly agree",
    subscales=("usability",),
)

TRUST = Instrument(
    key="jian_trust",
    name="Checklist for Trust between People and Automation (Jian et al. 2000)",
    citation="Jian J-Y, Bisantz AM, Drury CG (2000). Int J Cogn Ergon 4(1), 53-71; factor "
    "structure: Spain RD, Bustamante EA, Bliss JP (2008). Proc. HFES 52, 1335-1339.",
    items=tuple(
        Item(f"jian_{n}", text, subscale="distrust" if n <= 5 else "trust", reverse=n <= 5)
        for n, text in enumerate(
            (
                "The system is deceptive.",
                "The system behaves in an underhanded manner.",
                "I am suspicious of the system's intent, action, or outputs.",
                "I am wary of the system.",
                "The system's actions will have a harmful or injurious outcome.",
                "I am confident in the system.",
                "The system provides security.",
                "The system has integrity.",
                "The system is dependable.",
                "The system is reliable.",
                "I can trust the system.",
                "I am familiar with the system.",
            ),
            start=1,
        )
    ),
    low=1, high=7, step=1,
    low_anchor="Not at all", high_anchor="Extremely",
    subscales=("distrust", "trust"),
)

INSTRUMENTS = {instrument.key: instrument for instrument in (TLX, SUS, TRUST)}


# Validation -------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


def _value_problem(instrument: Instrument, key: str, value: object) -> str | None:
    if not _is_number(value):
        return f"{key}: {value!r} is not a number"
    if not math.isfinite(value):
        return f"{key}: {value!r} is not a finite number"
    if not instrument.low <= value <= instrument.high:
        return f"{key}: {value:g} is outside {instrument.low}-{instrument.high}"
    if (value - instrument.low) % instrument.step != 0:
        return f"{key}: {value:g} is not on the scale's step of {instrument.step}"
    return None


def checked_answers(instrument: Instrument, answers: Mapping[str, object]) -> dict[str, float]:
    """The answers as floats keyed by item, or ``QuestionnaireError`` listing every problem."""
    problems = [f"{key}: missing" for key in instrument.keys if key not in answers]
    known = set(instrument.keys)
    problems += [f"{key!s}: not an item of {instrument.name}" for key in answers if key not in known]
    for key in instrument.keys:
        if key in answers and (problem := _value_problem(instrument, key, answers[key])):
            problems.append(problem)
    if problems:
        raise QuestionnaireError(problems)
    return {key: float(answers[key]) for key in instrument.keys}


# Scoring ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlxResult:
    ratings: dict[str, float]  # subscale -> 0-100
    raw_tlx: float  # RTLX: the unweighted mean of the six ratings
    weights: dict[str, int] | None  # subscale -> times chosen in the 15 comparisons (sum 15)
    weighted_tlx: float | None  # sum(weight x rating) / 15; None without the comparisons


@dataclass(frozen=True)
class SusResult:
    contributions: dict[str, float]  # item -> 0-4 (odd: x - 1, even: 5 - x)
    score: float  # sum of contributions x 2.5, 0-100


@dataclass(frozen=True)
class TrustResult:
    trust: float  # mean of the 12 items with items 1-5 reversed (8 - x), 1-7
    distrust_mean: float  # items 1-5 as answered, 1-7, higher = more distrust
    trust_mean: float  # items 6-12, 1-7


def tlx_pairs() -> tuple[tuple[str, str], ...]:
    """The 15 pairwise comparisons of the six subscales, in a fixed order."""
    return tuple(combinations(TLX_SUBSCALES, 2))


def _pair_entry_problem(index: int, entry: object) -> str | None:
    if not (isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 3):
        return f"comparison {index}: {entry!r} is not (subscale, subscale, chosen)"
    first, second, chosen = entry
    unknown = [name for name in (first, second) if name not in TLX_SUBSCALES]
    if unknown:
        return f"comparison {index}: unknown subscale {', '.join(map(repr, unknown))}"
    if first == second:
        return f"comparison {index}: compares {first} with itself"
    return None


def tlx_weights(comparisons: Iterable[Sequence[str]]) -> dict[str, int]:
    """Weights from the pairwise comparisons, each a ``(subscale, subscale, chosen)`` triple.

    The comparisons must be exactly the 15 distinct pairs, each answered once (in either order);
    otherwise ``QuestionnaireError`` lists each bad entry, each repeated pair and each missing
    pair, one line each."""
    problems: list[str] = []
    seen: dict[frozenset[str], list[int]] = {}
    chosen: Counter[str] = Counter()
    for index, entry in enumerate(comparisons, start=1):
        if problem := _pair_entry_problem(index, entry):
            problems.append(problem)
            continue
        first, second, choice = entry
        seen.setdefault(frozenset((first, second)), []).append(index)
        if choice in (first, second):
            chosen[choice] += 1
        else:  # the pair counts as answered, so this mistake gives one line, not two
            problems.append(f"comparison {index} ({first} vs {second}): {choice!r} is neither")
    for first, second in tlx_pairs():
        entries = seen.get(frozenset((first, second)), [])
        if not entries:
            problems.append(f"{first} vs {second}: missing")
        elif len(entries) > 1:
            numbers = ", ".join(map(str, entries))
            problems.append(f"{first} vs {second}: answered {len(entries)} times ({numbers})")
    if problems:
        raise QuestionnaireError(problems)
    return {name: chosen[name] for name in TLX_SUBSCALES}


def score_tlx(
    answers: Mapping[str, int | float],
    comparisons: Iterable[Sequence[str]] | None = None,
) -> TlxResult:
    """Raw TLX from the six ratings, and the weighted TLX when the 15 comparisons are given.

    Problems with the ratings and with the comparisons are reported together."""
    problems: list[str] = []
    ratings = weights = None
    try:
        ratings = checked_answers(TLX, answers)
    except QuestionnaireError as error:
        problems += error.problems
    if comparisons is not None:
        try:
            weights = tlx_weights(comparisons)
        except QuestionnaireError as error:
            problems += error.problems
    if problems:
        raise QuestionnaireError(problems)
    raw = sum(ratings.values()) / len(TLX_SUBSCALES)
    weighted = None
    if weights is not None:
        weighted = sum(weights[name] * ratings[name] for name in TLX_SUBSCALES) / 15
    return TlxResult(ratings=ratings, raw_tlx=raw, weights=weights, weighted_tlx=weighted)


def score_sus(answers: Mapping[str, int | float]) -> SusResult:
    """Brooke's rule: odd items x - 1, even items 5 - x, sum x 2.5 (0-100)."""
    values = checked_answers(SUS, answers)
    contributions = {
        item.key: (SUS.high - values[item.key]) if item.reverse else (values[item.key] - SUS.low)
        for item in SUS.items
    }
    return SusResult(contributions=contributions, score=sum(contributions.values()) * 2.5)


def score_trust(answers: Mapping[str, int | float]) -> TrustResult:
    """Jian et al.'s checklist: overall trust (items 1-5 reversed) and the two subscale means."""
    values = checked_answers(TRUST, answers)
    reversed_total = sum(
        (TRUST.low + TRUST.high - values[item.key]) if item.reverse else values[item.key]
        for item in TRUST.items
    )

    def subscale_mean(name: str) -> float:
        return float(np.mean([values[i.key] for i in TRUST.items if i.subscale == name]))

    return TrustResult(
        trust=reversed_total / len(TRUST.items),
        distrust_mean=subscale_mean("distrust"),
        trust_mean=subscale_mean("trust"),
    )
