"""Making one reader's schedule (the algorithm the package docstring describes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from studies.randomization.draws import _period_offsets, _shuffle, _Stream, _study_order
from studies.randomization.schedule import (
    ALGORITHM_VERSION,
    ATTENTION,
    FULLY_CROSSED,
    MAIN,
    TRAINING,
    CaseId,
    Schedule,
    ScheduleError,
    Session,
    Trial,
)
from studies.randomization.validation import validate_design
from studies.randomization.values import _id_key


def generate_schedule(
    *,
    design: str,
    cases: Iterable[CaseId],
    arms: Iterable[str],
    seed: int,
    reader_index: int,
    sessions: int = 1,
    washout_days: int = 0,
    strata: Mapping[CaseId, str | int] | None = None,
    training_cases: Iterable[CaseId] = (),
    attention_cases: Iterable[CaseId] = (),
) -> Schedule:
    """The schedule of the reader with ``reader_index``; raises :class:`ScheduleError`."""
    cases, arms = list(cases), list(arms)
    training, attention = list(training_cases), list(attention_cases)
    problems = validate_design(
        design=design,
        cases=cases,
        arms=arms,
        seed=seed,
        reader_index=reader_index,
        sessions=sessions,
        washout_days=washout_days,
        strata=strata,
        training_cases=training,
        attention_cases=attention,
    )
    if problems:
        raise ScheduleError(problems)

    offsets = _period_offsets(design, len(arms), reader_index)
    per_period = sessions // len(offsets)
    reads = _main_reads(seed, reader_index, cases, len(arms), strata, offsets, sessions)
    if attention:
        _deal_attention(reads, seed, reader_index, attention, len(arms))

    built = []
    for index, session_reads in enumerate(reads):
        items = _shuffle(session_reads, _Stream(seed, "session-order", reader_index, index))
        if index == 0:
            items = [(case, i % len(arms), TRAINING) for i, case in enumerate(training)] + items
        period = index // per_period
        built.append(
            Session(
                index=index,
                period=period,
                unlock_after_days=period * washout_days if design == FULLY_CROSSED else 0,
                trials=tuple(
                    Trial(position=i, case=case, arm=arms[arm_index], kind=kind)
                    for i, (case, arm_index, kind) in enumerate(items)
                ),
            )
        )
    return Schedule(
        algorithm=ALGORITHM_VERSION,
        seed=seed,
        reader_index=reader_index,
        design=design,
        sessions=tuple(built),
    )


_Read = tuple[CaseId, int, str]  # (case, arm index, kind)


def _main_reads(
    seed: int,
    reader_index: int,
    cases: list[CaseId],
    n_arms: int,
    strata: Mapping[CaseId, str | int] | None,
    offsets: list[int],
    sessions: int,
) -> list[list[_Read]]:
    """The main reads of each session, before the order inside the session is drawn: per
    period, the cases grouped by arm and stratum, each group shuffled and dealt out in turn."""
    per_period = sessions // len(offsets)
    order = _study_order(seed, cases, strata)
    label_rank = {
        label: rank
        for rank, label in enumerate(
            sorted(
                {label for _, label in order}, key=lambda v: (-1, 0) if v is None else _id_key(v)
            )
        )
    }
    reads: list[list[_Read]] = [[] for _ in range(sessions)]
    for period, offset in enumerate(offsets):
        cells: dict[tuple[int, int], list[CaseId]] = defaultdict(list)
        for position, (case, label) in enumerate(order):
            cells[((position + reader_index + offset) % n_arms, label_rank[label])].append(case)
        stream = _Stream(seed, "session-split", reader_index, period)
        dealt = 0
        for arm_index, rank in sorted(cells):
            for case in _shuffle(cells[(arm_index, rank)], stream):
                reads[period * per_period + dealt % per_period].append((case, arm_index, MAIN))
                dealt += 1
    return reads


def _deal_attention(
    reads: list[list[_Read]], seed: int, reader_index: int, attention: list[CaseId], n_arms: int
) -> None:
    """Add the attention checks to `reads`, spread over the sessions in a random order."""
    sessions = len(reads)
    stream = _Stream(seed, "attention", reader_index)
    checks = [
        (case, (k + reader_index) % n_arms, ATTENTION)
        for k, case in enumerate(sorted(attention, key=_id_key))
    ]
    session_order = _shuffle(range(sessions), stream)
    for k, check in enumerate(_shuffle(checks, stream)):
        reads[session_order[k % sessions]].append(check)
