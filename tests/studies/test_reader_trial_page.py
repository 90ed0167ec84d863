"""Issue 14, the reader's side: readers see only the reader-facing title and text; a heatmap that
highlights no region is shown as a neutral "No region highlighted" state (the same for every
explainer and placebo) and asks no question about the region; the final stage of two-stage
reading shows the reader's own unaided answer; a page between sessions; an h1 on the trial page."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from explain.models import Explanation
from studies import services
from studies.models import Arm, Enrollment, ReadingSession, Response, Study, Trial
from studies.reader_selectors import trial_payload
from studies.selectors import questions_for, trial_heatmap_empty
from studies.services.reading import AnswerError, trial_answer, trial_reveal, trial_show
from tests.studies.reader_views_helpers import (
    advance_to,
    answers_for,
    complete,
    embedded_payload,
    enroll,
    give_files,
    next_trial,
)

pytestmark = pytest.mark.django_db

INTERNAL_TITLE = "QZ-INTERNAL Grad-CAM versus placebo protocol"
INTERNAL_DESCRIPTION = "QZ-PROTOCOL-TEXT: arm D shows a randomized-weights map"
READER_TITLE = "Chest image reading 2026"
READER_DESCRIPTION = "You will read chest images and answer a few questions."
EMPTY = {"url": None, "empty": True}


@pytest.fixture
def two_stage_study(coordinator, ready_study):
    services.study_update(acting_user=coordinator, study=ready_study, protocol="two_stage")
    study = services.study_open(acting_user=coordinator, study=ready_study)
    give_files(study)
    Study.objects.filter(pk=study.pk).update(
        title=INTERNAL_TITLE,
        description=INTERNAL_DESCRIPTION,
        reader_title=READER_TITLE,
        reader_description=READER_DESCRIPTION,
    )
    study.refresh_from_db()
    return study


@pytest.fixture
def reading(coordinator, two_stage_study, reader_a) -> Enrollment:
    return enroll(coordinator, two_stage_study, reader_a)


@pytest.fixture
def client_a(reader_a) -> Client:
    client = Client()
    client.force_login(reader_a)
    return client


def empty_maps(study: Study) -> None:
    """Every heatmap of the study (real and placebo) highlights no region."""
    Explanation.objects.filter(model=study.model).update(highlighted_fraction=0.0)


def to_final(reader, trial: Trial) -> Trial:
    trial_show(acting_user=reader, trial=trial)
    trial_answer(
        acting_user=reader, trial=trial, stage="first",
        answers=answers_for(trial, "first"), client_key=uuid.uuid4(),
    )
    return trial_reveal(acting_user=reader, trial=Trial.objects.get(pk=trial.pk))


def keys(trial: Trial, stage: str = "final") -> list[str]:
    study = trial.session.enrollment.study
    return [q.key for q in questions_for(study=study, trial=trial, stage=stage)]


# A. The reader-facing title and text ----------------------------------------------------------


def _reader_pages(client: Client, enrollment: Enrollment) -> dict[str, str]:
    study = enrollment.study
    pages = {"home": client.get("/read/"), "site home": client.get("/")}
    pages["consent"] = client.get(f"/read/{study.pk}/")
    client.post(f"/read/{study.pk}/", {"consent_version": study.consent_version})
    pages["study"] = client.get(f"/read/{study.pk}/")
    trial = next_trial(enrollment)
    pages["trial"] = client.get(f"/read/trials/{trial.uid}/")
    pages["payload"] = client.get(f"/api/v1/reading/trials/{trial.uid}/")
    while (trial := next_trial(enrollment)).session.index == 0:
        complete(enrollment.reader, trial)
    pages["session done"] = client.get(f"/read/{study.pk}/")
    later = Trial.objects.filter(session__enrollment=enrollment, session__index=1).last()
    pages["blocked"] = client.get(f"/read/trials/{later.uid}/")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    pages["closed"] = client.get(f"/read/{study.pk}/")
    pages["closed answer"] = client.post(
        f"/api/v1/reading/trials/{trial.uid}/answer/",
        {"stage": "first", "answers": {}, "client_key": str(uuid.uuid4())},
        content_type="application/json",
    )
    return {name: response.content.decode() for name, response in pages.items()}


def test_no_reader_page_shows_the_internal_title_or_description(
    coordinator, two_stage_study, reader_a, client_a
):
    enrollment = enroll(coordinator, two_stage_study, reader_a, consent=False)
    pages = _reader_pages(client_a, enrollment)
    for name, html in pages.items():
        assert "QZ-INTERNAL" not in html and "QZ-PROTOCOL" not in html, name
    for name in ("home", "consent", "study", "trial", "session done", "closed", "closed answer"):
        assert READER_TITLE in pages[name], name
    for name in ("home", "consent", "study"):
        assert READER_DESCRIPTION in pages[name], name
    assert f"<title>Case 1 of 6 · {READER_TITLE} · xai-reader-study</title>" in pages["trial"]


def test_without_a_reader_title_readers_see_a_neutral_one(
    coordinator, two_stage_study, reader_a, client_a
):
    Study.objects.filter(pk=two_stage_study.pk).update(reader_title="", reader_description="")
    enrollment = enroll(coordinator, two_stage_study, reader_a)
    html = client_a.get(f"/read/{two_stage_study.pk}/").content.decode()
    assert "<h1>Reader study</h1>" in html and "QZ-INTERNAL" not in html
    trial = next_trial(enrollment)
    assert "· Reader study ·" in client_a.get(f"/read/trials/{trial.uid}/").content.decode()


# B. Empty heatmaps -----------------------------------------------------------------------------


def test_a_trial_whose_heatmap_is_empty_asks_no_question_about_the_region(
    coordinator, two_stage_study, reading, reader_a
):
    real = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    assert "region_agreement" in keys(real) and not trial_heatmap_empty(trial=real)
    empty_maps(two_stage_study)
    assert trial_heatmap_empty(trial=real)
    assert "region_agreement" not in keys(real)
    assert keys(real, "first") == ["diagnosis", "confidence"]
    assert "trust" in keys(real)  # the other questions about the AI are still asked
    real = to_final(reader_a, real)
    answers = {**answers_for(real, "final"), "region_agreement": 3}
    with pytest.raises(AnswerError) as refused:
        trial_answer(
            acting_user=reader_a, trial=real, stage="final", answers=answers,
            client_key=uuid.uuid4(),
        )
    assert refused.value.fields == {"region_agreement": "this question is not asked at this stage"}
    del answers["region_agreement"]
    stored = trial_answer(
        acting_user=reader_a, trial=real, stage="final", answers=answers, client_key=uuid.uuid4()
    )
    assert "region_agreement" not in stored.answers


def test_an_empty_heatmap_gives_a_neutral_flag_and_no_overlay_url(
    coordinator, two_stage_study, reading, reader_a, client_a
):
    shown = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    shown = to_final(reader_a, shown)
    payload = trial_payload(trial=shown)
    assert payload["overlay"] == {"url": f"/read/trials/{shown.uid}/files/overlay", "empty": False}
    assert payload["overlay_url"] == payload["overlay"]["url"]
    complete_final(reader_a, shown)
    empty_maps(two_stage_study)
    payloads = {}
    while len(payloads) < 2:
        trial = next_trial(reading)
        if trial.arm.kind not in (Arm.Kind.PLACEBO, Arm.Kind.AI_EXPLAINER) or trial.arm.kind in payloads:
            complete(reader_a, trial)
            continue
        before = client_a.get(f"/api/v1/reading/trials/{trial.uid}/").json()
        assert before["overlay"] is None and before["overlay_url"] is None
        trial = to_final(reader_a, trial)
        api = client_a.get(f"/api/v1/reading/trials/{trial.uid}/").json()
        page = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
        assert embedded_payload(page)["overlay"] == api["overlay"] == EMPTY
        assert api["overlay_url"] is None and "files/overlay" not in page
        assert "region_agreement" not in [q["key"] for q in api["questions"]]
        payloads[trial.arm.kind] = api
        complete_final(reader_a, trial)
    placebo, real = payloads[Arm.Kind.PLACEBO], payloads[Arm.Kind.AI_EXPLAINER]
    assert placebo.keys() == real.keys()
    assert placebo["questions"] == real["questions"] and placebo["overlay"] == real["overlay"]


def complete_final(reader, trial: Trial) -> None:
    trial_answer(
        acting_user=reader, trial=trial, stage="final",
        answers=answers_for(trial, "final"), client_key=uuid.uuid4(),
    )


# D. The unaided answer beside the final questions ---------------------------------------------


def test_the_final_stage_shows_the_readers_own_unaided_answer(reading, reader_a, client_a):
    unaided = advance_to(reading, Arm.Kind.UNAIDED)
    client_a.get(f"/read/trials/{unaided.uid}/")
    assert trial_payload(trial=Trial.objects.get(pk=unaided.pk))["first_answer"] is None
    complete(reader_a, unaided)
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    page = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
    assert embedded_payload(page)["first_answer"] is None  # nothing before it is given
    trial_answer(
        acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk), stage="first",
        answers={"diagnosis": "nodule", "confidence": 62}, client_key=uuid.uuid4(),
    )
    waiting = client_a.get(f"/api/v1/reading/trials/{trial.uid}/").json()
    assert waiting["stage"] == "reveal" and waiting["first_answer"] is None
    revealed = client_a.post(f"/api/v1/reading/trials/{trial.uid}/reveal/").json()
    assert revealed["first_answer"] == {"diagnosis": "nodule", "confidence": 62}
    page = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
    assert embedded_payload(page)["first_answer"] == {"diagnosis": "nodule", "confidence": 62}
    assert Response.objects.get(trial=trial).answers == {"diagnosis": "nodule", "confidence": 62}


# F. The page between sessions ------------------------------------------------------------------


def test_after_a_session_the_study_page_is_a_break_before_the_next_one(
    reading, reader_a, client_a
):
    study = reading.study
    while (trial := next_trial(reading)).session.index == 0:
        complete(reader_a, trial)
    html = client_a.get(f"/read/{study.pk}/").content.decode()
    assert "<h1>Session 1 of 2 complete</h1>" in html
    assert f"<title>Session 1 of 2 complete · {READER_TITLE} · xai-reader-study</title>" in html
    assert "Take a break; continue when ready." in html
    assert f'href="/read/{study.pk}/next/">Continue with session 2</a>' in html
    assert html.count(f'href="/read/{study.pk}/next/"') == 1
    # "Continue" opens session 2; from then on the study page is the overview again
    assert client_a.get(f"/read/{study.pk}/next/").url == f"/read/trials/{trial.uid}/"
    assert client_a.get(f"/read/trials/{trial.uid}/").status_code == 200
    html = client_a.get(f"/read/{study.pk}/").content.decode()
    assert f"<h1>{READER_TITLE}</h1>" in html and "Take a break" not in html
    while (trial := next_trial(reading)) is not None:
        complete(reader_a, trial)
    html = client_a.get(f"/read/{study.pk}/next/", follow=True).content.decode()
    assert "<h1>Study complete</h1>" in html and "Session 2 of 2 complete." in html
    assert html.count("You have read every case of this study. Thank you!") == 1
    assert "/next/" not in html and "Take a break" not in html


def test_a_washout_shows_the_unlock_date_on_the_break(reading, reader_a, client_a):
    ReadingSession.objects.filter(enrollment=reading, index=1).update(unlock_after_days=14)
    while next_trial(reading).session.index == 0:
        complete(reader_a, next_trial(reading))
    html = client_a.get(f"/read/{reading.study.pk}/next/", follow=True).content.decode()
    assert "<h1>Session 1 of 2 complete</h1>" in html
    assert html.count("Session 2 opens on ") == 1
    assert "/next/" not in html and "Continue" not in html and "Take a break" not in html


# G. The trial page's heading --------------------------------------------------------------------


def test_the_trial_page_has_one_h1_naming_the_case(reading, client_a):
    trial = next_trial(reading)
    html = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
    assert html.count("<h1") == 1
    heading = html[html.index("<h1") : html.index("</h1>")]
    assert "Case 1 of 6, session 1 of 2" in heading
