"""How evenly a set of stored schedules spreads the main reads over the arms."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from studies.randomization.schedule import MAIN, CaseId, Schedule, Session, Trial


def _spread(counts: Mapping[str, int], arms: Sequence[str]) -> int:
    return max(counts.get(arm, 0) for arm in arms) - min(counts.get(arm, 0) for arm in arms)


def _max_spread(table: Mapping[Any, Mapping[str, int]], arms: Sequence[str]) -> int:
    return max((_spread(counts, arms) for counts in table.values()), default=0)


def balance_report(
    schedules: Sequence[Schedule],
    *,
    strata: Mapping[CaseId, str | int] | None = None,
    arms: Sequence[str] | None = None,
) -> dict[str, Any]:
    """How evenly the main reads of ``schedules`` spread over the arms.

    A *spread* is the largest minus the smallest count over the arms (0: perfectly even; 1: as
    even as possible when the total does not divide by the number of arms). ``arms`` defaults to
    the arm codes seen in the schedules, sorted; pass the study's arms when some
    arm might not appear at all. Returns counts and maximum spreads:

    * ``arms``: the arms counted;
    * ``per_reader`` {reader: {arm: n}}, ``reader_max_spread``;
    * ``per_case`` {case: {arm: n}} over all readers, ``case_max_spread``;
    * ``case_period_max_spread``: per case and period, over readers (fully crossed balance);
    * ``period_max_spread``: per reader and period (the whole reading for latin square);
    * ``arm_totals`` {arm: n}, ``arm_total_spread``;
    * ``session_size_max_spread`` and ``session_arm_max_spread`` (within sessions of a reader);
    * with ``strata``: ``per_stratum`` {label: {arm: n}} over all readers,
      ``stratum_max_spread`` and ``reader_stratum_max_spread`` (per reader and stratum);
    * ``carryover`` {"A>B": n}: how often a case's read under arm B directly follows its read
      under arm A in the previous period, and ``carryover_spread`` over the ordered pairs of
      different arms (only when schedules have more than one period).
    """
    main = [
        (schedule.reader_index, session, trial)
        for schedule in schedules
        for session in schedule.sessions
        for trial in session.trials
        if trial.kind == MAIN
    ]
    if arms is None:
        arms = sorted({trial.arm for _, _, trial in main})
    arms = list(arms)
    tables, history = _tally(main, strata)
    totals: Counter[str] = Counter(trial.arm for _, _, trial in main)
    session_sizes = defaultdict(list)
    for schedule in schedules:
        session_sizes[schedule.reader_index].extend(
            sum(trial.kind == MAIN for trial in session.trials) for session in schedule.sessions
        )

    def plain(table: Mapping[Any, Counter[str]]) -> dict[Any, dict[str, int]]:
        return {key: {arm: table[key].get(arm, 0) for arm in arms} for key in table}

    report: dict[str, Any] = {
        "readers": len(tables["per_reader"]),
        "arms": arms,
        "per_reader": plain(tables["per_reader"]),
        "reader_max_spread": _max_spread(tables["per_reader"], arms),
        "per_case": plain(tables["per_case"]),
        "case_max_spread": _max_spread(tables["per_case"], arms),
        "case_period_max_spread": _max_spread(tables["case_period"], arms),
        "period_max_spread": _max_spread(tables["reader_period"], arms),
        "arm_totals": {arm: totals.get(arm, 0) for arm in arms},
        "arm_total_spread": _spread(totals, arms) if arms else 0,
        "session_size_max_spread": max(
            (max(sizes) - min(sizes) for sizes in session_sizes.values() if sizes), default=0
        ),
        "session_arm_max_spread": _max_spread(tables["session_arms"], arms),
    }
    if strata is not None:
        report["per_stratum"] = plain(tables["per_stratum"])
        report["stratum_max_spread"] = _max_spread(tables["per_stratum"], arms)
        report["reader_stratum_max_spread"] = _max_spread(tables["reader_stratum"], arms)
    if any(len(reads) > 1 for reads in history.values()):
        report.update(_carryover(history, arms))
    return report


def _tally(
    main: list[tuple[int, Session, Trial]], strata: Mapping[CaseId, str | int] | None
) -> tuple[dict[str, dict[Any, Counter[str]]], dict[tuple[int, CaseId], list[tuple[int, str]]]]:
    """Counts of main reads per arm, by reader, case, period, session and stratum; and each
    reader's reads of each case as (period, arm)."""
    tables: dict[str, dict[Any, Counter[str]]] = {
        name: defaultdict(Counter)
        for name in (
            "per_reader",
            "per_case",
            "case_period",
            "reader_period",
            "session_arms",
            "per_stratum",
            "reader_stratum",
        )
    }
    history: dict[tuple[int, CaseId], list[tuple[int, str]]] = defaultdict(list)
    for reader, session, trial in main:
        tables["per_reader"][reader][trial.arm] += 1
        tables["per_case"][trial.case][trial.arm] += 1
        tables["case_period"][(trial.case, session.period)][trial.arm] += 1
        tables["reader_period"][(reader, session.period)][trial.arm] += 1
        tables["session_arms"][(reader, session.index)][trial.arm] += 1
        history[(reader, trial.case)].append((session.period, trial.arm))
        if strata is not None:
            tables["per_stratum"][strata[trial.case]][trial.arm] += 1
            tables["reader_stratum"][(reader, strata[trial.case])][trial.arm] += 1
    return tables, history


def _carryover(
    history: Mapping[tuple[int, CaseId], list[tuple[int, str]]], arms: list[str]
) -> dict[str, Any]:
    """How often a case's read under arm B directly follows its read under arm A."""
    pairs: Counter[str] = Counter()
    for reads in history.values():
        ordered = [arm for _, arm in sorted(reads, key=lambda read: read[0])]
        pairs.update(f"{a}>{b}" for a, b in zip(ordered, ordered[1:], strict=False))
    distinct = [f"{a}>{b}" for a in arms for b in arms if a != b]
    return {
        "carryover": {pair: pairs.get(pair, 0) for pair in distinct},
        "carryover_spread": (
            max(pairs.get(p, 0) for p in distinct) - min(pairs.get(p, 0) for p in distinct)
            if distinct
            else 0
        ),
    }
