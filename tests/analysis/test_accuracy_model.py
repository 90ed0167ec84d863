"""Accuracy as a logistic mixed model (arm x AI correctness) from the study's reads."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.stats.accuracy_model import accuracy_model
from analysis.stats.inference import to_jsonable
from analysis.stats.reads import Read

GLMER = Path(__file__).parent / "fixtures" / "r_reference" / "glmer"


def fixture_reads(name):
    """The glmer fixture as reads: arm A shows no AI, arm B shows advice that is right exactly
    on the fixture's ai_correct cases (so unaided reads take the case's correctness)."""
    data = pd.read_csv(GLMER / f"{name}.csv")
    reads = []
    for row in data.itertuples():
        truth = int(row.case[1:]) % 2 == 0
        ai_right = row.ai_correct == "yes"
        final = truth if row.correct else not truth
        aided = row.arm == "B"
        reads.append(Read(row.reader, row.case, row.arm, truth=truth, final_positive=final,
                          ai_shown=aided, ai_positive=(truth if ai_right else not truth)
                          if aided else None))
    return reads


def test_the_model_equals_the_glmer_fixture_through_the_reads():
    ref = json.loads((GLMER / "glmer.json").read_text())["fits"]["no_reader"]
    model = accuracy_model(fixture_reads("no_reader"))
    terms = {t.name: t for t in model.terms}
    assert terms["arm B"].estimate == pytest.approx(ref["fixef"]["armB"], abs=1e-4)
    assert terms["AI correct"].estimate == pytest.approx(ref["fixef"]["ai_correctyes"], abs=1e-4)
    assert terms["arm B x AI correct"].se == pytest.approx(ref["se"]["armB:ai_correctyes"],
                                                           abs=1e-4)
    assert model.zero_variances == ("reader",) and model.with_ai_correctness
    assert (model.reference, model.arms) == ("A", ("A", "B"))


def test_odds_ratios_split_by_ai_correctness_combine_the_main_effect_and_interaction():
    model = accuracy_model(fixture_reads("interior"))
    terms = {t.name: t for t in model.terms}
    wrong, right = model.odds_ratios
    assert (wrong.arm, wrong.ai_correct, right.ai_correct) == ("B", False, True)
    assert wrong.odds_ratio == pytest.approx(math.exp(terms["arm B"].estimate), rel=1e-12)
    assert right.odds_ratio == pytest.approx(
        math.exp(terms["arm B"].estimate + terms["arm B x AI correct"].estimate), rel=1e-12)
    # the simulation: AI advice helps when right (log OR 1.6 - 0.9 > 0), hurts when wrong
    assert right.odds_ratio > 1 > wrong.odds_ratio
    assert wrong.ci_low < wrong.odds_ratio < wrong.ci_high
    json.dumps(to_jsonable(model), allow_nan=False)


def test_when_the_ai_is_always_right_the_model_has_arm_alone_and_says_why():
    rng = np.random.default_rng(1)
    reads = []
    for r in range(6):
        for c in range(30):
            truth = c % 2 == 0
            arm = "AB"[(r + c) % 2]
            correct = rng.random() < (0.7 if arm == "A" else 0.85)
            reads.append(Read(f"r{r}", f"c{c}", arm, truth=truth,
                              final_positive=truth if correct else not truth,
                              ai_shown=arm == "B", ai_positive=truth if arm == "B" else None))
    model = accuracy_model(reads)
    assert not model.with_ai_correctness
    assert [t.name for t in model.terms] == ["(Intercept)", "arm B"]
    assert "the AI was right on every case" in model.notes[0]
    assert model.odds_ratios[0].ai_correct is None


def test_unaided_reads_of_cases_with_conflicting_advice_are_left_out_with_a_note():
    reads = fixture_reads("no_reader")
    conflicting = {f"c{i}" for i in range(1, 11)}  # arm C shows the opposite advice on these
    flipped = [Read(r.reader, r.case, "C", truth=r.truth, final_positive=r.final_positive,
                    ai_shown=True, ai_positive=not r.ai_positive)
               for r in reads if r.arm == "B" and r.case in conflicting]
    model = accuracy_model(reads + flipped)
    assert model.with_ai_correctness
    assert any("differed between arms" in n for n in model.notes)
    assert model.n == len(reads) + len(flipped) - sum(
        1 for r in reads if r.case in conflicting and r.arm == "A")


def test_degenerate_studies_give_a_reason():
    one_arm = [Read(f"r{i}", "c1", "A", truth=True, final_positive=True) for i in range(3)]
    assert "at least 2 arms" in accuracy_model(one_arm).reason
    one_reader = [Read("r1", f"c{c}", "AB"[c % 2], truth=True, final_positive=c % 3 == 0)
                  for c in range(10)]
    assert "at least 2 readers" in accuracy_model(one_reader).reason
    all_right = [Read(f"r{r}", f"c{c}", "AB"[c % 2], truth=True, final_positive=True)
                 for r in range(3) for c in range(6)]
    assert "every read is correct" in accuracy_model(all_right).reason


def test_too_few_ai_wrong_reads_per_arm_drop_the_interaction_and_say_where():
    """As in the demo study: the AI is wrong on 2 of 36 cases, every AI-right read of some arms is
    correct; the interaction would diverge, so the model has arm alone and names the cells."""
    reads = []
    rng = np.random.default_rng(8)
    for r in range(6):
        for c in range(24):
            truth = c % 2 == 0
            arm = "AB"[(r + c) % 2]
            ai_right = c != 0
            correct = rng.random() < 0.8
            reads.append(Read(f"r{r}", f"c{c}", arm, truth=truth,
                              final_positive=truth if correct else not truth, ai_shown=arm == "B",
                              ai_positive=(truth if ai_right else not truth) if arm == "B" else None))
    model = accuracy_model(reads)
    assert not model.with_ai_correctness and model.reason is None
    assert [t.name for t in model.terms] == ["(Intercept)", "arm B"]
    (note,) = [n for n in model.notes if "too few reads" in n]
    assert "arm A, AI wrong: " in note and "arm B, AI wrong: " in note
    assert "Add cases the AI gets wrong" in note


def test_a_singular_fit_is_reported_as_separation_not_as_an_exception(monkeypatch):
    import analysis.stats.glmm as glmm

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(glmm, "fit_logistic_crossed", singular)
    model = accuracy_model(fixture_reads("no_reader"))
    assert model.reason.startswith("the estimates diverge (separation")
    assert "Singular matrix" not in model.reason
