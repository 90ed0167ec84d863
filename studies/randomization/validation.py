"""Every problem that would stop a schedule from being made, one sentence each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from studies.randomization.schedule import DESIGNS, FULLY_CROSSED, LATIN_SQUARE, CaseId
from studies.randomization.values import _count, _duplicates, _id_key, _is_id, _is_int, _listing


def _id_problems(values: list[Any], role: str) -> tuple[list[str], list[CaseId]]:
    problems = [
        f"The {role} {value!r} is neither a text nor a whole-number identifier."
        for value in values
        if not _is_id(value)
    ]
    valid = [value for value in values if _is_id(value)]
    problems += [f"The {role} {value!r} is listed more than once." for value in _duplicates(valid)]
    return problems, valid


def _sessions_that_work(n_arms: int, n_reads: int | None) -> str:
    top = None if n_reads is None else n_reads
    options = []
    multiple = n_arms
    while (top is None or multiple <= top) and len(options) < 4:
        options.append(multiple)
        multiple += n_arms
    if top is not None and top // n_arms * n_arms > options[-1]:
        return ", ".join(map(str, options)) + f", ... up to {top // n_arms * n_arms}"
    if top is None:
        return ", ".join(map(str, options)) + ", ..."
    if len(options) == 1:
        return str(options[0])
    return ", ".join(map(str, options[:-1])) + f" or {options[-1]}"


def validate_design(
    *,
    design: str,
    cases: Iterable[CaseId],
    arms: Iterable[str],
    seed: int = 0,
    reader_index: int = 0,
    sessions: int = 1,
    washout_days: int = 0,
    strata: Mapping[CaseId, str | int] | None = None,
    training_cases: Iterable[CaseId] = (),
    attention_cases: Iterable[CaseId] = (),
) -> list[str]:
    """Every problem that would stop :func:`generate_schedule`, one sentence each; [] if none."""
    cases, arms = list(cases), list(arms)
    problems = _setting_problems(design, seed, reader_index)
    problems += _arm_problems(arms)
    case_problems, main_set = _case_problems(cases, list(training_cases), list(attention_cases))
    problems += case_problems
    if strata is not None:
        problems += _strata_problems(strata, main_set)
    problems += _session_problems(design, len(arms), len(main_set), sessions, washout_days)
    return problems


def _setting_problems(design: str, seed: int, reader_index: int) -> list[str]:
    problems = []
    if design not in DESIGNS:
        problems.append(f"Unknown design {design!r}; choose {FULLY_CROSSED!r} or {LATIN_SQUARE!r}.")
    if not _is_int(seed):
        problems.append(f"The study seed must be a whole number (got {seed!r}).")
    if not _is_int(reader_index) or reader_index < 0:
        problems.append(
            f"The reader index must be a whole number, 0 or more (got {reader_index!r})."
        )
    return problems


def _arm_problems(arms: list[Any]) -> list[str]:
    problems = []
    if not arms:
        problems.append("The study has no arms; add at least one arm.")
    bad_arms = [arm for arm in arms if not isinstance(arm, str) or not arm.strip()]
    problems += [f"The arm code {arm!r} is not a non-empty text." for arm in bad_arms]
    good_arms = [arm for arm in arms if isinstance(arm, str) and arm.strip()]
    problems += [
        f"The arm code {arm!r} is listed more than once." for arm in _duplicates(good_arms)
    ]
    return problems


def _case_problems(
    cases: list[Any], training: list[Any], attention: list[Any]
) -> tuple[list[str], set[CaseId]]:
    """Problems with the cases of each role, and the set of valid main cases."""
    problems = []
    if not cases:
        problems.append("The study has no cases; add at least one case.")
    case_problems, valid_cases = _id_problems(cases, "case")
    training_problems, valid_training = _id_problems(training, "training case")
    attention_problems, valid_attention = _id_problems(attention, "attention-check case")
    problems += case_problems + training_problems + attention_problems
    main_set = set(valid_cases)
    for case in sorted(set(valid_training) & main_set, key=_id_key):
        problems.append(
            f"The case {case!r} is both a main case and a training case; a case can have only one role."
        )
    for case in sorted(set(valid_attention) & main_set, key=_id_key):
        problems.append(
            f"The case {case!r} is both a main case and an attention-check case; a case can have only one role."
        )
    for case in sorted(set(valid_training) & set(valid_attention), key=_id_key):
        problems.append(
            f"The case {case!r} is both a training case and an attention-check case; a case can have only one role."
        )
    return problems, main_set


def _strata_problems(strata: Any, main_set: set[CaseId]) -> list[str]:
    if not isinstance(strata, Mapping):
        return ["The strata must map each case to a stratum label."]
    problems = []
    missing = sorted((c for c in main_set if c not in strata), key=_id_key)
    if missing:
        problems.append(
            f"{len(missing)} case(s) have no stratum: {_listing(missing)}; give every main case a stratum label."
        )
    bad = sorted((c for c in main_set if c in strata and not _is_id(strata[c])), key=_id_key)
    if bad:
        problems.append(
            f"The stratum labels of {_listing(bad)} are neither texts nor whole numbers."
        )
    return problems


def _session_problems(
    design: str, n_arms: int, n_main: int, sessions: Any, washout_days: Any
) -> list[str]:
    """The sessions and washout: valid numbers, and ones that fit the design and the reads."""
    problems = []
    sessions_ok = _is_int(sessions) and sessions >= 1
    if not sessions_ok:
        problems.append(
            f"The number of sessions must be a whole number, 1 or more (got {sessions!r})."
        )
    washout_ok = _is_int(washout_days) and washout_days >= 0
    if not washout_ok:
        problems.append(
            f"The washout must be a whole number of days, 0 or more (got {washout_days!r})."
        )
    reads = n_main * (n_arms if design == FULLY_CROSSED else 1)
    if design == FULLY_CROSSED and n_arms >= 1:
        if sessions_ok and sessions % n_arms:
            works = _sessions_that_work(n_arms, reads or None)
            problems.append(
                f"A fully crossed design with {_count(n_arms, 'arm')} needs a number of sessions "
                f"that is a multiple of {n_arms} (one block of sessions per arm): {works}; "
                f"got {sessions}."
            )
        if washout_ok and washout_days > 0 and n_arms == 1:
            problems.append(
                "The washout needs at least two sessions of reads of the same case, but with one "
                "arm a fully crossed design reads each case only once; set the washout to 0 days "
                "or add arms."
            )
    if design in DESIGNS and sessions_ok and reads and sessions > reads:
        problems.append(
            f"{_count(sessions, 'session')} are more than the {_count(reads, 'main read')} "
            f"each reader has; use at most {_count(reads, 'session')}."
        )
    return problems
