"""The reader's end-of-session questionnaires: due after a finished session, shown before the
next session (which cannot start until they are answered), stored once with the scoring
module's scores, refused with its problems, and blind to arms."""

from __future__ import annotations

import uuid
from dataclasses import asdict

import pytest

from core.errors import ServiceError
from core.models import AuditEntry
from studies import services
from studies.models import QuestionnaireResponse
from studies.questionnaire_scoring import TLX_SUBSCALES, score_sus, score_tlx, tlx_pairs
from studies.selectors.questionnaires import questionnaires_due
from studies.services.reading import trial_show
from tests.studies.reader_views_helpers import (
    FORBIDDEN,
    client_for,
    complete,
    enroll,
    mark_arms,
    next_trial,
    without_csrf,
)

TLX_RATINGS = dict(zip(TLX_SUBSCALES, (70, 10, 55, 25, 60, 35), strict=True))
SUS_ANSWERS = {f"sus_{n}": v for n, v in enumerate((4, 2, 5, 1, 4, 2, 5, 1, 4, 3), start=1)}


@pytest.fixture
def study(coordinator, ready_study):
    services.study_questionnaires_set(
        acting_user=coordinator,
        study=ready_study,
        questionnaires=[
            {"instrument": "nasa_tlx", "after": "each_session"},
            {"instrument": "sus", "after": "last_session"},
        ],
    )
    study = services.study_open(acting_user=coordinator, study=ready_study)
    mark_arms(study)
    return study


@pytest.fixture
def enrollment(coordinator, study, reader_a):
    return enroll(coordinator, study, reader_a)


def finish_session(enrollment, index: int) -> None:
    while (trial := next_trial(enrollment)) is not None and trial.session.index == index:
        complete(enrollment.reader, trial)


def form(answers: dict, *, instrument: str, session_index: int = 0, key=None) -> dict:
    return {
        "instrument": instrument,
        "session_index": str(session_index),
        "client_key": str(key or uuid.uuid4()),
        **{k: str(v) for k, v in answers.items()},
    }


def url(study) -> str:
    return f"/read/{study.pk}/questionnaire/"


def test_nothing_is_due_before_a_session_ends(enrollment, reader_a, study):
    assert questionnaires_due(enrollment=enrollment) == []
    client = client_for(reader_a)
    assert client.get(url(study)).url == f"/read/{study.pk}/"
    assert client.get(f"/read/{study.pk}/next/").url.startswith("/read/trials/")


def test_after_session_1_the_tlx_page_comes_before_the_next_session(enrollment, reader_a, study):
    finish_session(enrollment, 0)
    assert questionnaires_due(enrollment=enrollment) == [
        {"instrument": "nasa_tlx", "session_index": 0, "pairwise": False}
    ]
    client = client_for(reader_a)
    # where the trial page goes after a session's last case, and the "next case" link
    assert client.get(f"/read/{study.pk}/").url == url(study)
    assert client.get(f"/read/{study.pk}/next/").url == url(study)
    page = client.get(url(study))
    assert page.status_code == 200
    html = page.content.decode()
    assert "NASA Task Load Index" in html
    assert "session 1 complete" in html
    for key in TLX_SUBSCALES:  # 0-100 in steps of 5, no default position
        assert html.count(f'name="{key}"') == 21
    assert " checked" not in html
    assert "pair_1" not in html  # no pairwise comparisons configured
    # the next session cannot be started by the services either
    with pytest.raises(ServiceError, match="questionnaire"):
        trial_show(acting_user=reader_a, trial=next_trial(enrollment))


def test_submitting_stores_the_scores_and_opens_the_next_session(enrollment, reader_a, study):
    finish_session(enrollment, 0)
    client = client_for(reader_a)
    answer = client.post(url(study), form(TLX_RATINGS, instrument="nasa_tlx"))
    assert answer.status_code == 302
    stored = QuestionnaireResponse.objects.get(enrollment=enrollment)
    assert (stored.instrument, stored.session_index) == ("nasa_tlx", 0)
    assert stored.answers == TLX_RATINGS
    assert stored.scores == asdict(score_tlx(TLX_RATINGS))
    assert stored.scores["raw_tlx"] == pytest.approx(42.5)
    assert AuditEntry.objects.filter(action="reader.questionnaire", study_id=study.pk).count() == 1
    assert client.get(answer.url).url == f"/read/{study.pk}/"  # nothing else due
    study_page = client.get(f"/read/{study.pk}/")
    assert "Session 1 of 2 complete" in study_page.content.decode()
    trial_show(acting_user=reader_a, trial=next_trial(enrollment))  # session 2 opens


def test_a_double_submit_stores_one_row_and_shows_the_next_page(enrollment, reader_a, study):
    finish_session(enrollment, 0)
    client = client_for(reader_a)
    posted = form(TLX_RATINGS, instrument="nasa_tlx")
    first = client.post(url(study), posted)
    second = client.post(url(study), posted)
    other_key = client.post(url(study), {**posted, "client_key": str(uuid.uuid4())})
    assert first.status_code == second.status_code == other_key.status_code == 302
    assert QuestionnaireResponse.objects.filter(enrollment=enrollment).count() == 1
    assert AuditEntry.objects.filter(action="reader.questionnaire").count() == 1


def test_invalid_answers_list_the_problems_and_store_nothing(enrollment, reader_a, study):
    finish_session(enrollment, 0)
    bad = {**TLX_RATINGS, "mental_demand": 101, "effort": 33, "frustration": "lots"}
    del bad["physical_demand"]
    answer = client_for(reader_a).post(url(study), form(bad, instrument="nasa_tlx"))
    assert answer.status_code == 400
    html = answer.content.decode()
    for problem in (
        "Physical demand: missing",
        "Mental demand: 101 is outside 0-100",
        "Effort: 33 is not on the scale&#x27;s step of 5",
        "Frustration: &#x27;lots&#x27; is not a number",
    ):
        assert problem in html
    assert 'value="55" checked' in html  # the reader's answers stay
    assert not QuestionnaireResponse.objects.exists()


def test_a_questionnaire_that_is_not_due_is_refused(enrollment, reader_a, study):
    finish_session(enrollment, 0)
    with pytest.raises(ServiceError, match="not due"):
        services.questionnaire_submit(
            acting_user=reader_a,
            enrollment=enrollment,
            instrument="sus",
            session_index=0,
            answers=SUS_ANSWERS,
            client_key=uuid.uuid4(),
        )


def test_another_readers_questionnaire_is_a_404(enrollment, reader_b, study):
    finish_session(enrollment, 0)
    assert client_for(reader_b).get(url(study)).status_code == 404


def test_after_the_last_session_the_tlx_then_the_sus(enrollment, reader_a, study):
    client = client_for(reader_a)
    finish_session(enrollment, 0)
    client.post(url(study), form(TLX_RATINGS, instrument="nasa_tlx"))
    finish_session(enrollment, 1)
    assert [d["instrument"] for d in questionnaires_due(enrollment=enrollment)] == [
        "nasa_tlx",
        "sus",
    ]
    assert "these 2 short questionnaires" in client.get(url(study)).content.decode()
    client.post(url(study), form(TLX_RATINGS, instrument="nasa_tlx", session_index=1))
    page = client.get(url(study)).content.decode()
    assert "System Usability Scale" in page
    assert page.count('name="sus_1"') == 5
    done = client.post(url(study), form(SUS_ANSWERS, instrument="sus", session_index=1))
    sus = QuestionnaireResponse.objects.get(instrument="sus")
    assert sus.scores == asdict(score_sus(SUS_ANSWERS))
    assert sus.scores["score"] == 82.5  # (3+3+4+4+3+3+4+4+3+2) x 2.5
    final = client.get(client.get(done.url).url)
    assert "Study complete" in final.content.decode()


def test_the_pages_name_no_arm_or_condition(enrollment, reader_a, study):
    finish_session(enrollment, 0)
    html = without_csrf(client_for(reader_a).get(url(study)).content.decode()).lower()
    for word in FORBIDDEN:
        assert word not in html


def test_tlx_with_pairwise_comparisons_stores_the_weighted_score(
    coordinator, ready_study, reader_a
):
    services.study_questionnaires_set(
        acting_user=coordinator,
        study=ready_study,
        questionnaires=[{"instrument": "nasa_tlx", "after": "each_session", "pairwise": True}],
    )
    study = services.study_open(acting_user=coordinator, study=ready_study)
    enrollment = enroll(coordinator, study, reader_a)
    finish_session(enrollment, 0)
    client = client_for(reader_a)
    page = client.get(url(study)).content.decode()
    assert page.count('name="pair_') == 30  # 15 pairs, two choices each
    choices = {f"pair_{n}": first for n, (first, _) in enumerate(tlx_pairs(), start=1)}
    missing_one = dict(list(choices.items())[1:])
    refused = client.post(url(study), form({**TLX_RATINGS, **missing_one}, instrument="nasa_tlx"))
    assert refused.status_code == 400
    assert "mental_demand vs physical_demand: missing" in refused.content.decode()
    client.post(url(study), form({**TLX_RATINGS, **choices}, instrument="nasa_tlx"))
    stored = QuestionnaireResponse.objects.get()
    comparisons = [[a, b, a] for a, b in tlx_pairs()]
    assert stored.answers["comparisons"] == comparisons
    assert stored.scores == asdict(score_tlx(TLX_RATINGS, comparisons))
    assert stored.scores["weighted_tlx"] is not None
