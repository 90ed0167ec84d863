"""Reading with the response kinds of issue 17 in a two-stage study: which stage asks the
probability, the advice and the ordered-category (BI-RADS) questions; the server refuses a
missing or out-of-range answer (400, per question, nothing stored); the advice question tells
the reader nothing about the arm; and the long CSV and its codebook carry the probability as a
number, the advice as its word and the category as its label and its rank."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from rest_framework.test import APIClient

from analysis.export import codebook_rows, long_csv
from analysis.study_data import study_rows
from studies import services
from studies.models import Response, Trial
from studies.reader_selectors import trial_payload
from studies.selectors import questions_for, trial_stages
from studies.services.reading import AnswerError, trial_answer, trial_reveal, trial_show
from tests.studies.reader_views_helpers import FORBIDDEN, enroll, next_trial

BIRADS = ["1 negative", "2 benign", "3 probably benign", "4 suspicious", "5 highly suggestive"]
VALUES = {
    "diagnosis": "nodule",
    "confidence": 70,
    "likert": 4,
    "free_text": "ok",
    "probability": 80,
    "advice": "modify",
    "ordinal": BIRADS[3],
}
DEFAULTS = ["diagnosis", "confidence"]


@pytest.fixture
def kinds_study(coordinator, ready_study):
    """The ready draft (unaided, AI, AI + Grad-CAM, placebo arms; default questions), read in two
    stages, with a probability, an advice and a BI-RADS question, then opened."""
    services.study_update(acting_user=coordinator, study=ready_study, protocol="two_stage")
    for values in (
        {"key": "malignancy", "kind": "probability", "text": "Probability of malignancy?"},
        {"key": "advice", "kind": "advice", "text": "What do you do with the AI's advice?"},
        {"key": "birads", "kind": "ordinal", "text": "BI-RADS category?", "options": BIRADS},
    ):
        services.question_add(acting_user=coordinator, study=ready_study, **values)
    return services.study_open(acting_user=coordinator, study=ready_study)


@pytest.fixture
def enrollment(coordinator, kinds_study, reader_a):
    return enroll(coordinator, kinds_study, reader_a)


def answers(trial: Trial, stage: str, **changes) -> dict:
    study = trial.session.enrollment.study
    values = {q.key: VALUES[q.kind] for q in questions_for(study=study, trial=trial, stage=stage)}
    return {**values, **changes}


def answer(reader, trial: Trial, stage: str, values: dict) -> Response:
    return trial_answer(
        acting_user=reader, trial=trial, stage=stage, answers=values, client_key=uuid.uuid4()
    )


def complete(reader, trial: Trial, first=None, final=None) -> None:
    trial_show(acting_user=reader, trial=trial)
    if len(trial_stages(trial=trial, study=trial.session.enrollment.study)) == 2:
        answer(reader, trial, "first", first or answers(trial, "first"))
        trial_reveal(acting_user=reader, trial=trial)
    answer(reader, trial, "final", final or answers(trial, "final"))


def advance_to(enrollment, *, shows_ai: bool) -> Trial:
    while True:
        trial = next_trial(enrollment)
        if trial.arm.shows_ai == shows_ai:
            return trial
        complete(enrollment.reader, trial)


def keys(trial: Trial, stage: str) -> list[str]:
    study = trial.session.enrollment.study
    return [q.key for q in questions_for(study=study, trial=trial, stage=stage)]


def test_the_probability_and_the_category_are_asked_in_both_stages_and_the_advice_only_after_the_ai(
    enrollment,
):
    trial = advance_to(enrollment, shows_ai=True)
    assert keys(trial, "first") == DEFAULTS + ["malignancy", "birads"]
    final = keys(trial, "final")
    assert {"malignancy", "birads", "advice", "trust"} <= set(final)
    unaided = advance_to(enrollment, shows_ai=False)
    assert keys(unaided, "final") == DEFAULTS + ["malignancy", "birads"]  # no AI, no advice


def test_the_answers_of_both_stages_are_stored_with_the_probability_as_a_number(
    enrollment, reader_a
):
    trial = advance_to(enrollment, shows_ai=True)
    complete(
        reader_a,
        trial,
        first=answers(trial, "first", malignancy="35", birads=BIRADS[1]),
        final=answers(trial, "final", malignancy=80.0, advice="reject"),
    )
    stored = {r.stage: r.answers for r in Response.objects.filter(trial=trial)}
    assert stored["first"]["malignancy"] == 35 and stored["first"]["birads"] == BIRADS[1]
    assert "advice" not in stored["first"]
    assert stored["final"]["malignancy"] == 80 and stored["final"]["advice"] == "reject"
    assert stored["final"]["birads"] == BIRADS[3]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"malignancy": None}, "malignancy", "an answer is required"),
        ({"malignancy": 101}, "malignancy", "must be from 0 to 100"),
        ({"malignancy": -1}, "malignancy", "must be from 0 to 100"),
        ({"malignancy": 12.5}, "malignancy", "whole number from 0 to 100"),
        ({"malignancy": "high"}, "malignancy", "whole number from 0 to 100"),
        ({"malignancy": True}, "malignancy", "whole number from 0 to 100"),
        ({"advice": None}, "advice", "an answer is required"),
        ({"advice": "ignore"}, "advice", "choose one of: accept, modify, reject"),
        ({"advice": ["accept"]}, "advice", "choose one of: accept, modify, reject"),
        ({"birads": None}, "birads", "an answer is required"),
        ({"birads": "6 known malignancy"}, "birads", "choose one of: 1 negative, 2 benign"),
        ({"birads": 4}, "birads", "choose one of"),
    ],
)
def test_a_missing_or_out_of_range_answer_is_refused_per_question_and_nothing_is_stored(
    enrollment, reader_a, changes, field, message
):
    trial = advance_to(enrollment, shows_ai=True)
    trial_show(acting_user=reader_a, trial=trial)
    answer(reader_a, trial, "first", answers(trial, "first"))
    trial_reveal(acting_user=reader_a, trial=trial)
    values = {k: v for k, v in answers(trial, "final", **changes).items() if v is not None}
    with pytest.raises(AnswerError) as caught:
        answer(reader_a, trial, "final", values)
    assert message in caught.value.fields[field]
    trial.refresh_from_db()
    assert trial.state == Trial.State.REVEALED
    assert list(trial.responses.values_list("stage", flat=True)) == ["first"]


def test_the_advice_cannot_be_given_before_the_ai_output_is_shown(enrollment, reader_a):
    trial = advance_to(enrollment, shows_ai=True)
    trial_show(acting_user=reader_a, trial=trial)
    with pytest.raises(AnswerError) as caught:
        answer(reader_a, trial, "first", answers(trial, "first", advice="accept"))
    assert caught.value.fields == {"advice": "this question is not asked at this stage"}
    assert not trial.responses.exists()


def test_the_reading_api_answers_a_400_naming_the_question_and_stores_nothing(
    enrollment, reader_a
):
    trial = advance_to(enrollment, shows_ai=False)
    client = APIClient()
    client.force_login(reader_a)
    assert client.get(f"/read/trials/{trial.uid}/").status_code == 200
    endpoint = f"/api/v1/reading/trials/{trial.uid}/answer/"
    values = answers(trial, "final")
    del values["malignancy"]
    refused = client.post(
        endpoint,
        {"stage": "final", "answers": {**values, "birads": "7"}, "client_key": str(uuid.uuid4())},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["fields"] == {
        "malignancy": "an answer is required",
        "birads": f"choose one of: {', '.join(BIRADS)}",
    }
    assert not trial.responses.exists()
    saved = client.post(
        endpoint,
        {"stage": "final", "answers": answers(trial, "final"), "client_key": str(uuid.uuid4())},
        format="json",
    )
    assert saved.status_code == 200
    assert Response.objects.get(trial=trial).answers["malignancy"] == 80


def test_the_advice_question_tells_the_reader_nothing_but_its_text_and_three_words(
    enrollment, reader_a
):
    """Every payload of the reader's schedule, at every step: the advice question is the
    coordinator's text and the fixed words, the same in every AI arm, and no payload names an
    arm, an explainer or the truth."""
    advice_seen = []
    while (trial := next_trial(enrollment)) is not None:
        trial_show(acting_user=reader_a, trial=trial)
        two = len(trial_stages(trial=trial, study=enrollment.study)) == 2
        for stage in ("first", "final") if two else ("final",):
            payload = trial_payload(trial=Trial.objects.get(pk=trial.pk))
            text = json.dumps(payload).lower()
            assert not [word for word in FORBIDDEN if word in text], trial.arm.kind
            advice_seen += [q for q in payload["questions"] if q["kind"] == "advice"]
            assert ("advice" in [q["key"] for q in payload["questions"]]) == (
                stage == "final" and trial.arm.shows_ai
            )
            answer(reader_a, trial, stage, answers(trial, stage))
            if stage == "first":
                trial_reveal(acting_user=reader_a, trial=trial)
    assert len(advice_seen) == 3 * 3  # three AI arms of four, twelve cases (latin square)
    assert all(
        q
        == {
            "key": "advice",
            "kind": "advice",
            "text": "What do you do with the AI's advice?",
            "help_text": "",
            "options": ["accept", "modify", "reject"],
            "scale": "",
            "points": None,
            "anchors": [],
            "required": True,
        }
        for q in advice_seen
    )


def test_the_long_csv_has_the_probability_the_advice_word_and_the_category_with_its_rank(
    kinds_study, enrollment, reader_a
):
    trial = advance_to(enrollment, shows_ai=True)
    complete(
        reader_a,
        trial,
        first=answers(trial, "first", malignancy=35, birads=BIRADS[1]),
        final=answers(trial, "final", malignancy=80, advice="modify", birads=BIRADS[4]),
    )
    rows = study_rows(study=kinds_study)
    table = list(csv.DictReader(io.StringIO(long_csv(rows))))
    first, final = (r for r in table if r["case"] == trial.case.key)
    assert (first["stage"], first["answer_malignancy"], first["answer_advice"]) == ("first", "35", "")
    assert (first["answer_birads"], first["answer_birads_rank"]) == (BIRADS[1], "2")
    assert (final["answer_malignancy"], final["answer_advice"]) == ("80", "modify")
    assert (final["answer_birads"], final["answer_birads_rank"]) == (BIRADS[4], "5")
    book = {name: (kind, allowed, meaning) for name, kind, allowed, meaning in codebook_rows(rows)}
    assert book["answer_malignancy"][:2] == ("integer", "0–100 (probability in percent, from a slider with no default)")
    assert book["answer_advice"][:2] == ("text", "accept, modify, reject")
    assert book["answer_advice"][2].endswith("(arms showing the AI; final stage only; blank when not asked)")
    assert book["answer_birads"][:2] == ("text", ", ".join(BIRADS))
    assert book["answer_birads_rank"][:2] == ("integer", "1–5")
    assert "1 = 1 negative; 2 = 2 benign" in book["answer_birads_rank"][2]
    columns = list(table[0])
    assert columns.index("answer_birads_rank") == columns.index("answer_birads") + 1
