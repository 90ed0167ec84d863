"""Reader schedules: balance, washout, determinism, order randomization and validation."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from studies.randomization import (
    ALGORITHM_VERSION,
    ATTENTION,
    FULLY_CROSSED,
    LATIN_SQUARE,
    MAIN,
    TRAINING,
    Schedule,
    ScheduleError,
    balance_report,
    generate_schedule,
    validate_design,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LABELS = ["ai_wrong", "ai_right", "equivocal"]
FAST = settings(deadline=None, max_examples=60)


# --- helpers ----------------------------------------------------------------------------------


@st.composite
def study_designs(draw, design=None, max_cases=40, max_arms=6, max_readers=13, with_strata=None):
    """Keyword arguments of a valid study (without reader_index) and a number of readers."""
    design = design or draw(st.sampled_from([LATIN_SQUARE, FULLY_CROSSED]))
    n_arms = draw(st.integers(1, max_arms))
    n_cases = draw(st.integers(1, max_cases))
    if draw(st.booleans()):
        cases = [1000 + 7 * i for i in range(n_cases)]
    else:
        cases = [f"case-{i:03d}" for i in range(n_cases)]
    arms = [f"arm-{chr(ord('a') + i)}" for i in range(n_arms)]
    if with_strata is None:
        with_strata = draw(st.booleans())
    strata = None
    if with_strata:
        labels = draw(st.lists(st.sampled_from(LABELS), min_size=n_cases, max_size=n_cases))
        strata = dict(zip(cases, labels, strict=True))
    if design == LATIN_SQUARE:
        sessions = draw(st.integers(1, min(n_cases, 5)))
        washout = draw(st.integers(0, 3))
    else:
        sessions = n_arms * draw(st.integers(1, min(n_cases, 3)))
        washout = draw(st.integers(0, 30)) if n_arms > 1 else 0
    params = dict(
        design=design,
        cases=cases,
        arms=arms,
        seed=draw(st.integers(0, 2**63)),
        sessions=sessions,
        washout_days=washout,
        strata=strata,
    )
    return params, draw(st.integers(1, max_readers))


def schedules_for(params, n_readers):
    return [generate_schedule(**params, reader_index=r) for r in range(n_readers)]


def main_reads(schedule):
    return [
        (session, trial)
        for session in schedule.sessions
        for trial in session.trials
        if trial.kind == MAIN
    ]


def spread(counts, arms):
    return max(counts[arm] for arm in arms) - min(counts[arm] for arm in arms)


def stratum_of(params, case):
    return None if params["strata"] is None else params["strata"][case]


def reference_draws(seed, *purpose):
    """The random numbers exactly as the module docstring describes them."""
    counter = 0
    while True:
        text = json.dumps([ALGORITHM_VERSION, seed, *purpose, counter], separators=(",", ":"))
        digest = hashlib.sha256(text.encode()).digest()
        for i in range(4):
            yield int.from_bytes(digest[8 * i : 8 * i + 8], "big")
        counter += 1


def reference_shuffle(items, draws):
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        n = i + 1
        while True:
            value = next(draws)
            if value < 2**64 - 2**64 % n:
                break
        j = value % n
        items[i], items[j] = items[j], items[i]
    return items


def canonical(values):
    return sorted(values, key=lambda v: (1, v) if isinstance(v, str) else (0, v))


# --- balance ----------------------------------------------------------------------------------


@FAST
@given(study_designs())
def test_each_reader_sees_the_arms_equally_often_overall_and_within_each_stratum(study):
    params, n_readers = study
    arms = params["arms"]
    for schedule in schedules_for(params, n_readers):
        per_period = defaultdict(Counter)
        per_period_stratum = defaultdict(Counter)
        for session, trial in main_reads(schedule):
            per_period[session.period][trial.arm] += 1
            per_period_stratum[(session.period, stratum_of(params, trial.case))][trial.arm] += 1
        assert all(spread(counts, arms) <= 1 for counts in per_period.values())
        assert all(spread(counts, arms) <= 1 for counts in per_period_stratum.values())


@FAST
@given(study_designs())
def test_each_case_is_read_under_each_arm_equally_often_by_every_first_r_readers(study):
    params, n_readers = study
    arms, n_arms = params["arms"], len(params["arms"])
    counts = defaultdict(Counter)  # (case, period) -> arm -> readers so far
    for r, schedule in enumerate(schedules_for(params, n_readers), start=1):
        for session, trial in main_reads(schedule):
            counts[(trial.case, session.period)][trial.arm] += 1
        assert all(spread(c, arms) <= 1 for c in counts.values())
        if r % n_arms == 0:
            assert all(spread(c, arms) == 0 for c in counts.values())


@FAST
@given(study_designs(design=LATIN_SQUARE))
def test_latin_square_stratum_totals_over_first_r_readers_stay_within_the_stated_bound(study):
    params, n_readers = study
    arms, n_arms = params["arms"], len(params["arms"])
    sizes = Counter(stratum_of(params, case) for case in params["cases"])
    totals = defaultdict(Counter)
    overall = Counter()
    for r, schedule in enumerate(schedules_for(params, n_readers), start=1):
        for _, trial in main_reads(schedule):
            totals[stratum_of(params, trial.case)][trial.arm] += 1
            overall[trial.arm] += 1
        left = r % n_arms
        for label, size in sizes.items():
            k = size % n_arms
            assert spread(totals[label], arms) <= min(k, n_arms - k, left, n_arms - left)
        k = len(params["cases"]) % n_arms
        assert spread(overall, arms) <= min(k, n_arms - k, left, n_arms - left)


@FAST
@given(study_designs())
def test_sessions_have_near_equal_sizes_and_near_equal_arm_counts(study):
    params, n_readers = study
    arms = params["arms"]
    for schedule in schedules_for(params, min(n_readers, 4)):
        assert len(schedule.sessions) == params["sessions"]
        sizes = [sum(t.kind == MAIN for t in s.trials) for s in schedule.sessions]
        assert max(sizes) - min(sizes) <= 1
        for session in schedule.sessions:
            assert [t.position for t in session.trials] == list(range(len(session.trials)))
            assert spread(Counter(t.arm for t in session.trials), arms) <= 1


# --- what each design reads -------------------------------------------------------------------


@FAST
@given(study_designs(design=LATIN_SQUARE))
def test_latin_square_reader_reads_each_case_exactly_once(study):
    params, n_readers = study
    for schedule in schedules_for(params, min(n_readers, 4)):
        cases = [trial.case for _, trial in main_reads(schedule)]
        assert Counter(cases) == Counter(params["cases"])
        assert {s.unlock_after_days for s in schedule.sessions} == {0}


@FAST
@given(study_designs(design=FULLY_CROSSED))
def test_fully_crossed_reader_reads_every_case_arm_pair_once_with_washout_between_reads(study):
    params, n_readers = study
    arms, washout = params["arms"], params["washout_days"]
    per_period = params["sessions"] // len(arms)
    for schedule in schedules_for(params, min(n_readers, 4)):
        reads = main_reads(schedule)
        pairs = Counter((trial.case, trial.arm) for _, trial in reads)
        assert pairs == Counter((case, arm) for case in params["cases"] for arm in arms)
        for period in range(len(arms)):
            in_period = [t.case for s, t in reads if s.period == period]
            assert Counter(in_period) == Counter(params["cases"])
        for session in schedule.sessions:
            assert session.period == session.index // per_period
            assert session.unlock_after_days == session.period * washout
            cases = [t.case for t in session.trials]
            assert len(cases) == len(set(cases))
        unlocks = defaultdict(list)
        for session, trial in reads:
            unlocks[trial.case].append(session.unlock_after_days)
        for days in unlocks.values():
            days.sort()
            assert all(b - a >= washout for a, b in zip(days, days[1:], strict=False))


@FAST
@given(
    n_arms=st.integers(2, 7),
    n_cases=st.integers(1, 12),
    block=st.integers(0, 2),
    seed=st.integers(0, 2**32),
)
def test_fully_crossed_carryover_is_balanced_in_every_complete_block_of_readers(
    n_arms, n_cases, block, seed
):
    arms = [f"arm-{i}" for i in range(n_arms)]
    block_size = n_arms if n_arms % 2 == 0 else 2 * n_arms
    expected = 1 if n_arms % 2 == 0 else 2
    params = dict(
        design=FULLY_CROSSED, cases=list(range(n_cases)), arms=arms, seed=seed, sessions=n_arms
    )
    pairs = defaultdict(Counter)
    for r in range(block * block_size, (block + 1) * block_size):
        sequences = defaultdict(list)
        for session, trial in main_reads(generate_schedule(**params, reader_index=r)):
            sequences[trial.case].append((session.period, trial.arm))
        for case, reads in sequences.items():
            order = [arm for _, arm in sorted(reads)]
            pairs[case].update(zip(order, order[1:], strict=False))
    wanted = Counter({(a, b): expected for a in arms for b in arms if a != b})
    assert all(counts == wanted for counts in pairs.values())


@FAST
@given(study_designs(max_readers=6))
def test_arms_follow_the_documented_recipe(study):
    params, n_readers = study
    arms, n_arms, seed = params["arms"], len(params["arms"]), params["seed"]
    groups = defaultdict(list)
    for case in params["cases"]:
        groups[stratum_of(params, case)].append(case)
    order = []
    for label in canonical([g for g in groups if g is not None]) or [None]:
        draws = reference_draws(seed, "case-order", label)
        order += reference_shuffle(canonical(groups[label]), draws)
    position = {case: p for p, case in enumerate(order)}
    williams = [0] + [(j + 1) // 2 if j % 2 else n_arms - j // 2 for j in range(1, n_arms)]
    for r, schedule in enumerate(schedules_for(params, n_readers)):
        row = williams[::-1] if n_arms % 2 and (r // n_arms) % 2 else williams
        for session, trial in main_reads(schedule):
            offset = 0 if params["design"] == LATIN_SQUARE else row[session.period]
            assert trial.arm == arms[(position[trial.case] + r + offset) % n_arms]


# --- training and attention checks ------------------------------------------------------------


@FAST
@given(study_designs(max_readers=6), st.integers(0, 5), st.integers(0, 7))
def test_training_opens_session_zero_and_attention_checks_are_spread_over_sessions(
    study, n_training, n_attention
):
    params, n_readers = study
    arms, n_arms = params["arms"], len(params["arms"])
    training = [f"train-{i}" for i in range(n_training)]
    attention = [f"check-{i}" for i in range(n_attention)]
    attention_arms = defaultdict(Counter)
    for r in range(n_readers):
        schedule = generate_schedule(
            **params, reader_index=r, training_cases=training, attention_cases=attention
        )
        first = schedule.sessions[0].trials[:n_training]
        assert [(t.case, t.kind) for t in first] == [(c, TRAINING) for c in training]
        assert [t.arm for t in first] == [arms[i % n_arms] for i in range(n_training)]
        assert sum(t.kind == TRAINING for t in schedule.trials()) == n_training
        checks = [(s.index, t) for s in schedule.sessions for t in s.trials if t.kind == ATTENTION]
        assert sorted(t.case for _, t in checks) == sorted(attention)
        per_session = Counter(index for index, _ in checks)
        counts = [per_session[s.index] for s in schedule.sessions]
        assert max(counts) - min(counts) <= 1
        for _, trial in checks:
            assert trial.arm == arms[(attention.index(trial.case) + r) % n_arms]
            attention_arms[trial.case][trial.arm] += 1
        assert all(spread(c, arms) <= 1 for c in attention_arms.values())


def test_training_or_attention_case_that_is_also_a_main_case_is_refused():
    with pytest.raises(ScheduleError) as error:
        generate_schedule(
            design=LATIN_SQUARE,
            cases=["a", "b", "c"],
            arms=["x", "y"],
            seed=1,
            reader_index=0,
            training_cases=["a", "t"],
            attention_cases=["b", "t"],
        )
    assert error.value.problems == [
        "The case 'a' is both a main case and a training case; a case can have only one role.",
        "The case 'b' is both a main case and an attention-check case; a case can have only one role.",
        "The case 't' is both a training case and an attention-check case; a case can have only one role.",
    ]


# --- determinism and order randomization ------------------------------------------------------


@FAST
@given(study_designs(max_readers=5), st.randoms(use_true_random=False))
def test_same_inputs_in_any_listing_order_give_the_same_schedule(study, rnd):
    params, n_readers = study
    r = n_readers - 1
    attention = [f"check-{i}" for i in range(3)]
    first = generate_schedule(**params, reader_index=r, attention_cases=attention)
    cases = list(params["cases"])
    rnd.shuffle(cases)
    rnd.shuffle(attention)
    strata = params["strata"]
    if strata is not None:
        items = list(strata.items())
        rnd.shuffle(items)
        strata = dict(items)
    again = generate_schedule(
        **{**params, "cases": cases, "strata": strata}, reader_index=r, attention_cases=attention
    )
    assert again == first
    assert first.algorithm == ALGORITHM_VERSION


@FAST
@given(study_designs(max_readers=5))
def test_schedule_survives_a_json_round_trip(study):
    params, n_readers = study
    schedule = generate_schedule(**params, reader_index=n_readers - 1, training_cases=["t"])
    stored = json.loads(json.dumps(schedule.to_dict()))
    assert Schedule.from_dict(stored) == schedule
    assert list(schedule.trials()) == [t for s in schedule.sessions for t in s.trials]


def case_order(schedule):
    return [trial.case for trial in schedule.trials() if trial.kind == MAIN]


@FAST
@given(study_designs(max_cases=30), st.integers(0, 2**63))
def test_a_different_seed_gives_a_different_order(study, other_seed):
    params, _ = study
    assume(len(params["cases"]) >= 8 and other_seed != params["seed"])
    one = generate_schedule(**params, reader_index=0)
    other = generate_schedule(**{**params, "seed": other_seed}, reader_index=0)
    assert case_order(one) != case_order(other)


@FAST
@given(study_designs(max_cases=30), st.integers(0, 50), st.integers(0, 50))
def test_different_readers_get_different_case_orders(study, a, b):
    params, _ = study
    assume(len(params["cases"]) >= 8 and a != b)
    one = generate_schedule(**params, reader_index=a)
    other = generate_schedule(**params, reader_index=b)
    assert case_order(one) != case_order(other)


@pytest.mark.parametrize("design", [LATIN_SQUARE, FULLY_CROSSED])
@pytest.mark.parametrize("n_arms", [2, 4])
def test_arms_are_interleaved_within_each_session_not_read_in_blocks(design, n_arms):
    arms = [f"arm-{i}" for i in range(n_arms)]
    for r in range(5):
        schedule = generate_schedule(
            design=design, cases=range(40), arms=arms, seed=r, reader_index=r, sessions=n_arms
        )
        for session in schedule.sessions:
            sequence = [t.arm for t in session.trials]
            runs = 1 + sum(a != b for a, b in zip(sequence, sequence[1:], strict=False))
            assert runs > len(set(sequence))


def test_every_period_of_a_fully_crossed_reading_has_its_own_order():
    cases = list(range(20))
    schedule = generate_schedule(
        design=FULLY_CROSSED, cases=cases, arms=["a", "b", "c"], seed=9, reader_index=0, sessions=3
    )
    orders = [tuple(t.case for t in s.trials) for s in schedule.sessions]
    assert all(sorted(order) == cases for order in orders)
    assert len(set(orders)) == 3
    assert all(list(order) != cases for order in orders)


def test_schedule_does_not_depend_on_hash_randomization_and_needs_no_django():
    script = (
        "import json, sys\n"
        "from studies.randomization import generate_schedule\n"
        "cases = [f'c{i}' for i in range(25)]\n"
        "s = generate_schedule(design='fully_crossed', cases=cases, arms=['x', 'y', 'z'],\n"
        "    seed=77, reader_index=4, sessions=6, washout_days=28,\n"
        "    strata={c: 'w' if i % 4 else 'r' for i, c in enumerate(cases)},\n"
        "    training_cases=['t1', 't2'], attention_cases=['q1', 'q2', 'q3'])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django']\n"
        "print(json.dumps(s.to_dict()))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    cases = [f"c{i}" for i in range(25)]
    here = generate_schedule(
        design=FULLY_CROSSED,
        cases=cases,
        arms=["x", "y", "z"],
        seed=77,
        reader_index=4,
        sessions=6,
        washout_days=28,
        strata={c: "w" if i % 4 else "r" for i, c in enumerate(cases)},
        training_cases=["t1", "t2"],
        attention_cases=["q1", "q2", "q3"],
    )
    assert outputs[0] == outputs[1] == json.loads(json.dumps(here.to_dict()))


# --- validation -------------------------------------------------------------------------------

VALID = dict(
    design=FULLY_CROSSED,
    cases=["a", "b", "c"],
    arms=["x", "y"],
    seed=3,
    reader_index=0,
    sessions=2,
    washout_days=14,
)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"arms": []}, "The study has no arms; add at least one arm."),
        ({"arms": ["x", "y", "x"], "sessions": 3}, "The arm code 'x' is listed more than once."),
        ({"arms": ["x", ""]}, "The arm code '' is not a non-empty text."),
        ({"cases": []}, "The study has no cases; add at least one case."),
        ({"cases": ["a", "b", "a"]}, "The case 'a' is listed more than once."),
        ({"cases": ["a", 2.5]}, "The case 2.5 is neither a text nor a whole-number identifier."),
        ({"sessions": 0}, "The number of sessions must be a whole number, 1 or more (got 0)."),
        (
            {"sessions": 3},
            "A fully crossed design with 2 arms needs a number of sessions that is a multiple of 2 "
            "(one block of sessions per arm): 2, 4 or 6; got 3.",
        ),
        (
            {"arms": ["x"], "sessions": 1},
            "The washout needs at least two sessions of reads of the same case, but with one arm "
            "a fully crossed design reads each case only once; set the washout to 0 days or add "
            "arms.",
        ),
        ({"washout_days": -1}, "The washout must be a whole number of days, 0 or more (got -1)."),
        ({"reader_index": -1}, "The reader index must be a whole number, 0 or more (got -1)."),
        ({"seed": "abc"}, "The study seed must be a whole number (got 'abc')."),
        (
            {"sessions": 8},
            "8 sessions are more than the 6 main reads each reader has; use at most 6 sessions.",
        ),
        (
            {"design": LATIN_SQUARE, "sessions": 4},
            "4 sessions are more than the 3 main reads each reader has; use at most 3 sessions.",
        ),
        (
            {"design": "crossover"},
            "Unknown design 'crossover'; choose 'fully_crossed' or 'latin_square'.",
        ),
        (
            {"strata": {"a": "ai_wrong"}},
            "2 case(s) have no stratum: 'b', 'c'; give every main case a stratum label.",
        ),
    ],
)
def test_each_invalid_design_is_refused_with_one_plain_sentence(change, problem):
    kwargs = {**VALID, **change}
    assert validate_design(**kwargs) == [problem]
    with pytest.raises(ScheduleError) as error:
        generate_schedule(**kwargs)
    assert error.value.problems == [problem]
    assert isinstance(error.value, ValueError)
    assert problem in str(error.value)


def test_all_problems_are_reported_at_once():
    kwargs = dict(
        design=FULLY_CROSSED,
        cases=["a", "a", "b"],
        arms=["x", "x", "y"],
        seed=1,
        reader_index=-2,
        sessions=5,
        washout_days=-3,
    )
    problems = validate_design(**kwargs)
    assert len(problems) == 5
    assert any("multiple of 3" in p and "3 or 6" in p for p in problems)
    with pytest.raises(ScheduleError) as error:
        generate_schedule(**kwargs)
    assert error.value.problems == problems


def test_design_can_be_checked_before_any_reader_or_seed_exists():
    assert validate_design(design=LATIN_SQUARE, cases=range(53), arms=["a", "b", "c", "d"]) == []
    assert validate_design(design=FULLY_CROSSED, cases=range(53), arms=["a", "b"]) == [
        "A fully crossed design with 2 arms needs a number of sessions that is a multiple of 2 "
        "(one block of sessions per arm): 2, 4, 6, 8, ... up to 106; got 1."
    ]


@FAST
@given(study_designs())
def test_generated_designs_pass_validation(study):
    params, n_readers = study
    assert validate_design(**params, reader_index=n_readers) == []


# --- balance report ---------------------------------------------------------------------------


@FAST
@given(study_designs(max_readers=6))
def test_balance_report_counts_match_the_schedules(study):
    params, n_readers = study
    arms = params["arms"]
    schedules = schedules_for(params, n_readers)
    report = balance_report(schedules, strata=params["strata"], arms=arms)
    per_case = defaultdict(Counter)
    for schedule in schedules:
        counts = Counter(t.arm for _, t in main_reads(schedule))
        assert report["per_reader"][schedule.reader_index] == {a: counts[a] for a in arms}
        for _, trial in main_reads(schedule):
            per_case[trial.case][trial.arm] += 1
    assert report["per_case"] == {c: {a: n[a] for a in arms} for c, n in per_case.items()}
    assert report["case_max_spread"] == max(spread(n, arms) for n in per_case.values())
    assert sum(report["arm_totals"].values()) == sum(len(main_reads(s)) for s in schedules)
    assert report["reader_max_spread"] <= 1
    assert report["session_arm_max_spread"] <= 1
    if params["strata"] is not None:
        assert report["reader_stratum_max_spread"] <= 1


def seven_readers_53_cases_4_arms(design):
    cases = [f"case-{i:02d}" for i in range(53)]
    strata = {case: "ai_wrong" if i % 5 == 0 else "ai_right" for i, case in enumerate(cases)}
    arms = ["unaided", "score", "heatmap", "score+heatmap"]
    sessions, washout = (2, 0) if design == LATIN_SQUARE else (8, 28)
    schedules = [
        generate_schedule(
            design=design,
            cases=cases,
            arms=arms,
            seed=20260501,
            reader_index=r,
            sessions=sessions,
            washout_days=washout,
            strata=strata,
            attention_cases=["check-1", "check-2"],
        )
        for r in range(7)
    ]
    return balance_report(schedules, strata=strata, arms=arms)


def summary(report):
    return {k: v for k, v in report.items() if not k.startswith("per_") or k == "per_stratum"}


def test_seven_readers_53_cases_4_arms_latin_square_balance():
    report = seven_readers_53_cases_4_arms(LATIN_SQUARE)
    print("latin_square 7x53x4:", summary(report))
    assert report["readers"] == 7
    assert sum(report["arm_totals"].values()) == 7 * 53
    assert report["reader_max_spread"] == 1  # 53 = 4 * 13 + 1: one arm gets 14 cases
    assert report["case_max_spread"] == 1  # 7 readers = 4 + 3
    assert report["arm_total_spread"] <= 1  # min(53 % 4, 7 % 4, ...) = 1
    assert report["reader_stratum_max_spread"] <= 1
    # strata of 11 and 42 cases: min(k, 4 - k, 7 % 4, 4 - 7 % 4) = 1 for both
    assert report["stratum_max_spread"] <= 1
    assert report["session_size_max_spread"] <= 1
    assert report["session_arm_max_spread"] <= 1


def test_seven_readers_53_cases_4_arms_fully_crossed_balance():
    report = seven_readers_53_cases_4_arms(FULLY_CROSSED)
    print("fully_crossed 7x53x4:", summary(report))
    assert sum(report["arm_totals"].values()) == 7 * 53 * 4
    assert report["reader_max_spread"] == 0
    assert report["case_max_spread"] == 0
    assert report["stratum_max_spread"] == 0
    assert report["period_max_spread"] == 1  # 53 cases per period over 4 arms
    assert report["case_period_max_spread"] == 1  # 7 readers over 4 arms per period
    assert report["session_size_max_spread"] <= 1
    assert report["carryover_spread"] <= 1
