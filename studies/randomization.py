"""Reading schedules for reader studies: which cases a reader reads, under which arm, in which
session and in which order.

What a schedule is
------------------
A study shows a set of *cases* (images) to *readers* (radiologists) under several *arms* (for
example: no AI, AI score only, AI score with a heatmap). A reader's schedule lists, session by
session, the trials that reader will do: a case, the arm it is shown under, and its position in
the session. A schedule is made for one reader at the moment that reader enrols, from

* the study seed (a whole number fixed when the study is created),
* the reader index (0 for the first reader who enrols, 1 for the second, and so on),
* the main cases, the arm codes (their order matters: it is part of the study definition),
  and the design parameters (design, number of sessions, washout, strata, training and
  attention-check cases).

The caller stores ("freezes") the schedule. Generating again from the same inputs gives exactly
the same schedule; every stored schedule records the algorithm name ``xrs-schedule/1``
(:data:`ALGORITHM_VERSION`), and any change to the algorithm that could change a schedule gets a
new name. The order in which the main cases or the attention-check cases are listed does not
matter (they are put in a fixed canonical order first: numbers before texts, each ascending);
the order of the training cases does (training is shown in the given order).

Randomness that is the same everywhere
--------------------------------------
Nothing here uses Python's ``random`` module, numpy's generators or the order of Python sets,
all of which can differ between versions or runs. Every random choice comes from SHA-256:
random block *i* for a named purpose is SHA-256 of the compact JSON text
``["xrs-schedule/1", seed, purpose..., i]`` (for example
``["xrs-schedule/1",42,"session-order",3,1,0]``), read as four 64-bit big-endian whole numbers.
A whole number below *n* is drawn by taking the next 64-bit number *u* and, if
*u* < 2^64 - (2^64 mod n), returning *u* mod *n*; otherwise the number is skipped (so every
result is exactly equally likely). Lists are shuffled by the Fisher-Yates method: for *i* from the
last position down to 1, swap the item at *i* with the item at a drawn position below *i* + 1.

How cases are assigned to arms
------------------------------
First a *study case order* is made once for the whole study: the cases are grouped by stratum
(strata in canonical order; a study without strata has one stratum), and the cases of each stratum
are shuffled with the study seed. Each case thus has a position *p* = 0, 1, 2, ... that is the same
for every reader, and the cases of one stratum have consecutive positions. With *A* arms and
reader index *r*:

* **latin_square** (split-plot): each reader reads each case once, under arm number
  (*p* + *r*) mod *A*. Neighbouring cases get neighbouring arms and each next reader shifts every
  case to the next arm.
* **fully_crossed**: each reader reads every case under every arm, in *A* periods. In period *j*
  the reader reads every case once, under arm number (*p* + *r* + *w_j*) mod *A*, where
  *w* = (0, 1, A-1, 2, A-2, ...) is the first row of a Williams design. For an odd number of
  arms, readers in every second block of *A* readers (reader index // A odd) use *w* reversed,
  which makes the design a pair of Williams squares. This balances "carryover": how often the
  read of a case under one arm directly follows the read of the same case under another arm.

Sessions, order, training and attention checks
-----------------------------------------------
* **latin_square**: the reader's reads are split into ``sessions`` sessions of near-equal size;
  all sessions are open from the start (unlock offset 0 days; a washout is not needed because no
  case is read twice).
* **fully_crossed**: ``sessions`` must be a multiple of *A*; each period is split into
  ``sessions / A`` sessions. The sessions of period *j* unlock *j* x ``washout_days`` days after the
  reader's first session, so two reads of the same case are always at least ``washout_days`` apart
  and never in the same session.
* Which reads go to which session of a period is random per reader: the reads are grouped by arm
  (then by stratum), each group is shuffled, and the groups are dealt out to the sessions in turn,
  like cards.
* Attention-check cases are each read once, under arms cycling through all arms (attention case
  number *k* in canonical order gets arm (*k* + *r*) mod *A*). They are spread over the sessions
  (a random session order per reader; numbers per session differ by at most 1).
* The order of trials inside every session is shuffled again per reader and per session (main
  reads and attention checks together).
* Training cases come first in session 0, in the given order, under arms cycling through all
  arms in the given arm order (training case *i* gets arm *i* mod *A*); every reader gets the same
  training. Training and attention cases are never main cases.

Guarantees (A arms, N main cases; "differ by at most 1" is the best possible when the total does
not divide evenly)
-----------------------------------------------------------------------------------------
Both designs:

1. For each reader, the numbers of main reads under the arms differ by at most 1 (fully crossed:
   in every period), and the same holds inside every stratum.
2. For each case, among readers 0, 1, ..., R-1 for any R, the numbers of readers who read it under
   each arm (fully crossed: under each arm in each period) differ by at most 1, and are exactly
   equal when R is a multiple of A. Readers enrolled one at a time therefore stay balanced.
3. Session sizes (main reads) differ by at most 1, and inside every session the numbers of main
   reads per arm differ by at most 1 (training and attention checks come on top).
4. The same case never appears twice in one session; every schedule is the same when generated
   again from the same inputs, on any Python version.

latin_square:

5. Each reader reads each main case exactly once.
6. Totals per stratum (and over all cases) among readers 0..R-1: exactly equal over the arms when
   R is a multiple of A; otherwise they differ by at most min(k, A-k, R mod A, A - R mod A), where
   k is the number of the stratum's cases mod A. This is at most 1 for up to 3 arms and at most
   A // 2 in general.

fully_crossed:

7. Each reader reads every (case, arm) pair exactly once; reads of the same case are in sessions
   whose unlock offsets differ by at least ``washout_days``.
8. Carryover: for every case, over each complete block of A readers (even A: readers
   mA..mA+A-1; odd A: blocks of 2A readers), each ordered pair of different arms follows one
   another exactly once (odd A: exactly twice).

The arms are only balanced within what the numbers allow: with fewer cases in a stratum than arms,
a reader cannot see that stratum under every arm. :func:`balance_report` measures the balance of a
set of stored schedules.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALGORITHM_VERSION = "xrs-schedule/1"

FULLY_CROSSED = "fully_crossed"
LATIN_SQUARE = "latin_square"
DESIGNS = (FULLY_CROSSED, LATIN_SQUARE)

TRAINING = "training"
MAIN = "main"
ATTENTION = "attention"
KINDS = (TRAINING, MAIN, ATTENTION)

CaseId = str | int

_U64 = 1 << 64


class ScheduleError(ValueError):
    """The design cannot be scheduled; ``problems`` holds one sentence per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


@dataclass(frozen=True)
class Trial:
    position: int  # 0-based within its session
    case: CaseId
    arm: str
    kind: str  # "training", "main" or "attention"


@dataclass(frozen=True)
class Session:
    index: int
    period: int  # fully crossed: which pass over all cases (0..A-1); latin square: always 0
    unlock_after_days: int  # days after the reader's first session
    trials: tuple[Trial, ...]


@dataclass(frozen=True)
class Schedule:
    algorithm: str
    seed: int
    reader_index: int
    design: str
    sessions: tuple[Session, ...]

    def trials(self) -> Iterator[Trial]:
        """All trials, session by session, in reading order."""
        for session in self.sessions:
            yield from session.trials

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; :meth:`from_dict` reads it back to an equal schedule."""
        return {
            "algorithm": self.algorithm,
            "seed": self.seed,
            "reader_index": self.reader_index,
            "design": self.design,
            "sessions": [
                {
                    "index": session.index,
                    "period": session.period,
                    "unlock_after_days": session.unlock_after_days,
                    "trials": [
                        {
                            "position": trial.position,
                            "case": trial.case,
                            "arm": trial.arm,
                            "kind": trial.kind,
                        }
                        for trial in session.trials
                    ],
                }
                for session in self.sessions
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        return cls(
            algorithm=str(data["algorithm"]),
            seed=int(data["seed"]),
            reader_index=int(data["reader_index"]),
            design=str(data["design"]),
            sessions=tuple(
                Session(
                    index=int(session["index"]),
                    period=int(session["period"]),
                    unlock_after_days=int(session["unlock_after_days"]),
                    trials=tuple(
                        Trial(
                            position=int(trial["position"]),
                            case=trial["case"],
                            arm=str(trial["arm"]),
                            kind=str(trial["kind"]),
                        )
                        for trial in session["trials"]
                    ),
                )
                for session in data["sessions"]
            ),
        )


# --- randomness -------------------------------------------------------------------------------


class _Stream:
    """Counter-based random numbers: SHA-256 of (algorithm, seed, purpose..., block counter)."""

    def __init__(self, seed: int, *purpose: str | int | None):
        self._prefix = [ALGORITHM_VERSION, seed, *purpose]
        self._counter = 0
        self._block: list[int] = []

    def next_u64(self) -> int:
        if not self._block:
            text = json.dumps([*self._prefix, self._counter], separators=(",", ":"))
            digest = hashlib.sha256(text.encode("ascii")).digest()
            self._counter += 1
            self._block = [int.from_bytes(digest[i : i + 8], "big") for i in (24, 16, 8, 0)]
        return self._block.pop()  # bytes 0-7 first, then 8-15, ...

    def below(self, n: int) -> int:
        """A whole number in [0, n), every value equally likely (rejection sampling)."""
        limit = _U64 - _U64 % n
        while True:
            value = self.next_u64()
            if value < limit:
                return value % n


def _shuffle(items: Iterable[Any], stream: _Stream) -> list[Any]:
    """Fisher-Yates: for i from the end down to 1, swap item i with item stream.below(i + 1)."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = stream.below(i + 1)
        out[i], out[j] = out[j], out[i]
    return out


# --- helpers ----------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or _is_int(value)


def _id_key(value: CaseId) -> tuple[int, Any]:
    """Canonical order of case ids and stratum labels: numbers first, then texts."""
    return (1, value) if isinstance(value, str) else (0, value)


def _duplicates(values: Iterable[Any]) -> list[Any]:
    counts = Counter(values)
    return sorted((value for value, n in counts.items() if n > 1), key=_id_key)


def _listing(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _williams_row(n_arms: int) -> list[int]:
    """First row of a Williams design: 0, 1, A-1, 2, A-2, ..."""
    row = [0]
    for j in range(1, n_arms):
        row.append((j + 1) // 2 if j % 2 else n_arms - j // 2)
    return row


def _period_offsets(design: str, n_arms: int, reader_index: int) -> list[int]:
    if design == LATIN_SQUARE:
        return [0]
    row = _williams_row(n_arms)
    if n_arms % 2 == 1 and (reader_index // n_arms) % 2 == 1:
        row.reverse()
    return row


def _study_order(
    seed: int, cases: Sequence[CaseId], strata: Mapping[CaseId, Any] | None
) -> list[tuple[CaseId, Any]]:
    """(case, stratum) in study order: strata in canonical order, each shuffled with the seed."""
    groups: dict[Any, list[CaseId]] = defaultdict(list)
    for case in cases:
        groups[None if strata is None else strata[case]].append(case)
    order: list[tuple[CaseId, Any]] = []
    for label in sorted(groups, key=lambda v: (-1, 0) if v is None else _id_key(v)):
        members = sorted(groups[label], key=_id_key)
        stream = _Stream(seed, "case-order", label)
        order.extend((case, label) for case in _shuffle(members, stream))
    return order


# --- validation -------------------------------------------------------------------------------


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
    training, attention = list(training_cases), list(attention_cases)
    problems: list[str] = []

    known_design = design in DESIGNS
    if not known_design:
        problems.append(f"Unknown design {design!r}; choose {FULLY_CROSSED!r} or {LATIN_SQUARE!r}.")
    if not _is_int(seed):
        problems.append(f"The study seed must be a whole number (got {seed!r}).")
    if not _is_int(reader_index) or reader_index < 0:
        problems.append(
            f"The reader index must be a whole number, 0 or more (got {reader_index!r})."
        )

    if not arms:
        problems.append("The study has no arms; add at least one arm.")
    bad_arms = [arm for arm in arms if not isinstance(arm, str) or not arm.strip()]
    problems += [f"The arm code {arm!r} is not a non-empty text." for arm in bad_arms]
    good_arms = [arm for arm in arms if isinstance(arm, str) and arm.strip()]
    problems += [
        f"The arm code {arm!r} is listed more than once." for arm in _duplicates(good_arms)
    ]
    n_arms = len(arms)

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

    if strata is not None:
        if not isinstance(strata, Mapping):
            problems.append("The strata must map each case to a stratum label.")
        else:
            missing = sorted((c for c in main_set if c not in strata), key=_id_key)
            if missing:
                problems.append(
                    f"{len(missing)} case(s) have no stratum: {_listing(missing)}; give every main case a stratum label."
                )
            bad = sorted(
                (c for c in main_set if c in strata and not _is_id(strata[c])), key=_id_key
            )
            if bad:
                problems.append(
                    f"The stratum labels of {_listing(bad)} are neither texts nor whole numbers."
                )

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

    reads = len(main_set) * (n_arms if design == FULLY_CROSSED else 1)
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
    if known_design and sessions_ok and reads and sessions > reads:
        problems.append(
            f"{_count(sessions, 'session')} are more than the {_count(reads, 'main read')} "
            f"each reader has; use at most {_count(reads, 'session')}."
        )
    return problems


# --- generation -------------------------------------------------------------------------------


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

    n_arms = len(arms)
    offsets = _period_offsets(design, n_arms, reader_index)
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

    # (case, arm index, kind) per session, before the order inside the session is drawn
    reads: list[list[tuple[CaseId, int, str]]] = [[] for _ in range(sessions)]
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

    if attention:
        stream = _Stream(seed, "attention", reader_index)
        checks = [
            (case, (k + reader_index) % n_arms, ATTENTION)
            for k, case in enumerate(sorted(attention, key=_id_key))
        ]
        session_order = _shuffle(range(sessions), stream)
        for k, check in enumerate(_shuffle(checks, stream)):
            reads[session_order[k % sessions]].append(check)

    built = []
    for index, session_reads in enumerate(reads):
        items = _shuffle(session_reads, _Stream(seed, "session-order", reader_index, index))
        if index == 0:
            items = [(case, i % n_arms, TRAINING) for i, case in enumerate(training)] + items
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


# --- balance ----------------------------------------------------------------------------------


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

    per_reader: dict[int, Counter[str]] = defaultdict(Counter)
    per_case: dict[CaseId, Counter[str]] = defaultdict(Counter)
    case_period: dict[tuple[CaseId, int], Counter[str]] = defaultdict(Counter)
    reader_period: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
    session_arms: dict[tuple[int, int], Counter[str]] = defaultdict(Counter)
    per_stratum: dict[Any, Counter[str]] = defaultdict(Counter)
    reader_stratum: dict[tuple[int, Any], Counter[str]] = defaultdict(Counter)
    history: dict[tuple[int, CaseId], list[tuple[int, str]]] = defaultdict(list)
    for reader, session, trial in main:
        per_reader[reader][trial.arm] += 1
        per_case[trial.case][trial.arm] += 1
        case_period[(trial.case, session.period)][trial.arm] += 1
        reader_period[(reader, session.period)][trial.arm] += 1
        session_arms[(reader, session.index)][trial.arm] += 1
        history[(reader, trial.case)].append((session.period, trial.arm))
        if strata is not None:
            per_stratum[strata[trial.case]][trial.arm] += 1
            reader_stratum[(reader, strata[trial.case])][trial.arm] += 1

    totals: Counter[str] = Counter(trial.arm for _, _, trial in main)
    session_sizes = defaultdict(list)
    for schedule in schedules:
        session_sizes[schedule.reader_index].extend(
            sum(trial.kind == MAIN for trial in session.trials) for session in schedule.sessions
        )

    def plain(table: Mapping[Any, Counter[str]]) -> dict[Any, dict[str, int]]:
        return {key: {arm: table[key].get(arm, 0) for arm in arms} for key in table}

    report: dict[str, Any] = {
        "readers": len(per_reader),
        "arms": arms,
        "per_reader": plain(per_reader),
        "reader_max_spread": _max_spread(per_reader, arms),
        "per_case": plain(per_case),
        "case_max_spread": _max_spread(per_case, arms),
        "case_period_max_spread": _max_spread(case_period, arms),
        "period_max_spread": _max_spread(reader_period, arms),
        "arm_totals": {arm: totals.get(arm, 0) for arm in arms},
        "arm_total_spread": _spread(totals, arms) if arms else 0,
        "session_size_max_spread": max(
            (max(sizes) - min(sizes) for sizes in session_sizes.values() if sizes), default=0
        ),
        "session_arm_max_spread": _max_spread(session_arms, arms),
    }
    if strata is not None:
        report["per_stratum"] = plain(per_stratum)
        report["stratum_max_spread"] = _max_spread(per_stratum, arms)
        report["reader_stratum_max_spread"] = _max_spread(reader_stratum, arms)
    if any(len(reads) > 1 for reads in history.values()):
        pairs: Counter[str] = Counter()
        for reads in history.values():
            ordered = [arm for _, arm in sorted(reads, key=lambda read: read[0])]
            pairs.update(f"{a}>{b}" for a, b in zip(ordered, ordered[1:], strict=False))
        distinct = [f"{a}>{b}" for a in arms for b in arms if a != b]
        report["carryover"] = {pair: pairs.get(pair, 0) for pair in distinct}
        report["carryover_spread"] = (
            max(pairs.get(p, 0) for p in distinct) - min(pairs.get(p, 0) for p in distinct)
            if distinct
            else 0
        )
    return report
