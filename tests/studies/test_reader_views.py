"""The reader's pages: their studies, consent, sessions, the next-case redirect, the trial page
and the trial's files. Blinding: no page, embedded payload or file header names the explainer,
the placebo, the arm, the case or its ground truth, or says whether the AI is right."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from explain.models import Explanation
from library.models import Case, CaseLabel
from studies import services
from studies.models import Arm, Enrollment, ReadingSession, Study, Trial
from studies.selectors import questions_for, trial_stages
from studies.services.reading import enrollment_consent, trial_answer, trial_reveal, trial_show

pytestmark = pytest.mark.django_db

PAYLOAD_SCRIPT = re.compile(
    r'<script id="trial-payload" type="application/json">(.*?)</script>', re.S
)
CSRF_VALUES = re.compile(r'(data-csrf-token="|name="csrfmiddlewaretoken" value=")[^"]*')
# Distinctive arm codes, so that a leaked code can be searched for (the default A-D are letters).
ARM_CODES = {"unaided": "QZUN", "ai": "QZAI", "ai_explainer": "QZEX", "placebo": "QZPL"}
FORBIDDEN = [
    "gradcam",
    "placebo",
    "ai_wrong",
    "ai_right",
    "explainer",
    *[c.lower() for c in ARM_CODES.values()],
]


# Helpers (also used by test_reader_api) -----------------------------------------------------


def enroll(coordinator, study: Study, reader, *, consent: bool = True) -> Enrollment:
    enrollment = services.reader_enroll(acting_user=coordinator, study=study, reader=reader)
    if consent:
        enrollment_consent(
            acting_user=reader, enrollment=enrollment, consent_version=study.consent_version
        )
    return enrollment


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def next_trial(enrollment: Enrollment) -> Trial | None:
    return (
        Trial.objects.filter(session__enrollment=enrollment)
        .exclude(state=Trial.State.DONE)
        .select_related("arm", "case", "session__enrollment__study")
        .order_by("session__index", "position")
        .first()
    )


def answers_for(trial: Trial, stage: str) -> dict:
    study = trial.session.enrollment.study
    values = {"diagnosis": "nodule", "confidence": 70, "likert": 4, "free_text": "ok"}
    return {q.key: values[q.kind] for q in questions_for(study=study, trial=trial, stage=stage)}


def complete(reader, trial: Trial) -> None:
    """Read a trial to the end through the services."""
    trial_show(acting_user=reader, trial=trial)
    study = trial.session.enrollment.study
    if len(trial_stages(trial=trial, study=study)) == 2:
        trial_answer(
            acting_user=reader,
            trial=trial,
            stage="first",
            answers=answers_for(trial, "first"),
            client_key=uuid.uuid4(),
        )
        trial_reveal(acting_user=reader, trial=trial)
    trial_answer(
        acting_user=reader,
        trial=trial,
        stage="final",
        answers=answers_for(trial, "final"),
        client_key=uuid.uuid4(),
    )


def advance_to(enrollment: Enrollment, kind: str) -> Trial:
    """Complete trials until the next one is under an arm of this kind."""
    while True:
        trial = next_trial(enrollment)
        if trial.arm.kind == kind:
            return trial
        complete(enrollment.reader, trial)


def embedded_payload(html: str) -> dict:
    found = PAYLOAD_SCRIPT.search(html)
    assert found, "the trial page embeds its payload"
    return json.loads(found.group(1))


def mark_arms(study: Study) -> None:
    for arm in study.arms.all():
        Arm.objects.filter(pk=arm.pk).update(code=ARM_CODES[arm.kind])


def without_csrf(html: str) -> str:
    return CSRF_VALUES.sub(r"\1", html)


def assert_blind(text: str, trial: Trial) -> None:
    lowered = without_csrf(text).lower()
    for word in [*FORBIDDEN, trial.case.key.lower()]:
        assert word not in lowered, f"{word!r} reached the reader"


def give_files(study: Study) -> None:
    """Stored files for every case and explanation of the study, under names that carry the case
    key and the explainer (so that a leaked name would show)."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 56
    for case in Case.objects.filter(collection__in=study.collections.all()):
        case.pixels_file.name = default_storage.save(
            f"cases/{case.key}/pixels.npy", ContentFile(b"\x93NUMPY" + b"\0" * 58)
        )
        case.display_file.name = default_storage.save(
            f"cases/{case.key}/display.png", ContentFile(png)
        )
        case.thumbnail_file.name = default_storage.save(
            f"cases/{case.key}/thumb.png", ContentFile(png)
        )
        case.save(update_fields=["pixels_file", "display_file", "thumbnail_file"])
    for explanation in Explanation.objects.filter(model=study.model).select_related("case"):
        folder = f"{explanation.explainer}{'-placebo' if explanation.placebo else ''}"
        explanation.overlay_file.name = default_storage.save(
            f"explanations/{folder}/{explanation.case.key}/overlay.png", ContentFile(png)
        )
        explanation.save(update_fields=["overlay_file"])


def file_url(trial: Trial, name: str) -> str:
    return f"/read/trials/{trial.uid}/files/{name}"


# Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def two_stage_study(coordinator, ready_study):
    services.study_update(
        acting_user=coordinator,
        study=ready_study,
        protocol="two_stage",
        instructions="Read each image, then answer.",
    )
    return services.study_open(acting_user=coordinator, study=ready_study)


@pytest.fixture
def reading(coordinator, two_stage_study, reader_a) -> Enrollment:
    return enroll(coordinator, two_stage_study, reader_a)


@pytest.fixture
def client_a(reader_a) -> Client:
    return client_for(reader_a)


# Reader home, consent, study home -----------------------------------------------------------


def test_the_reader_home_lists_the_readers_studies_with_progress_and_consent_state(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a, consent=False)
    page = client_a.get("/read/")
    assert page.status_code == 200
    html = page.content.decode()
    assert open_study.reader_facing_title in html and "0 of 12 cases" in html
    assert open_study.title not in html
    assert "needed" in html and "Read the consent" in html
    enrollment_consent(
        acting_user=reader_a, enrollment=enrollment, consent_version=open_study.consent_version
    )
    complete(reader_a, next_trial(enrollment))
    html = client_a.get("/read/").content.decode()
    assert "1 of 12 cases" in html and "given" in html
    assert f'href="/read/{open_study.pk}/next/"' in html and "Continue" in html


def test_the_reading_link_shows_only_for_users_with_enrollments(
    coordinator, open_study, reader_a, reader_b
):
    enroll(coordinator, open_study, reader_a, consent=False)
    assert 'href="/read/">Reading</a>' in client_for(reader_a).get("/read/").content.decode()
    assert 'href="/read/">Reading</a>' not in client_for(reader_b).get("/read/").content.decode()


def test_a_reader_who_has_not_consented_sees_the_consent_text_and_cannot_read(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a, consent=False)
    page = client_a.get(f"/read/{open_study.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "I agree to take part." in html and f"version {open_study.consent_version}" in html
    assert "I agree" in html and "Your sessions" not in html
    assert client_a.get(f"/read/{open_study.pk}/next/").url == f"/read/{open_study.pk}/"
    trial = next_trial(enrollment)
    assert client_a.get(f"/read/trials/{trial.uid}/").url == f"/read/{open_study.pk}/"
    trial.refresh_from_db()
    assert trial.state == Trial.State.PENDING


def test_agreeing_records_consent_and_shows_the_instructions_and_sessions(
    coordinator, two_stage_study, reader_a, client_a
):
    enrollment = enroll(coordinator, two_stage_study, reader_a, consent=False)
    answer = client_a.post(
        f"/read/{two_stage_study.pk}/", {"consent_version": two_stage_study.consent_version}
    )
    assert answer.status_code == 302 and answer.url == f"/read/{two_stage_study.pk}/"
    enrollment.refresh_from_db()
    assert (
        enrollment.consented_at is not None
        and enrollment.consent_version == two_stage_study.consent_version
    )
    html = client_a.get(f"/read/{two_stage_study.pk}/").content.decode()
    assert "Read each image, then answer." in html
    assert "Session 1" in html and "Session 2" in html and "0 of 6" in html
    assert f'href="/read/{two_stage_study.pk}/next/">Start</a>' in html


def test_consenting_to_an_outdated_text_is_refused_with_a_message(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a, consent=False)
    answer = client_a.post(
        f"/read/{open_study.pk}/", {"consent_version": open_study.consent_version + 1}
    )
    assert answer.status_code == 400
    assert "consent text changed" in answer.content.decode()
    enrollment.refresh_from_db()
    assert enrollment.consented_at is None


def test_a_reader_cannot_see_a_study_they_are_not_enrolled_in(
    coordinator, open_study, reader_a, reader_b
):
    enroll(coordinator, open_study, reader_a)
    client = client_for(reader_b)
    assert client.get(f"/read/{open_study.pk}/").status_code == 404
    assert client.get(f"/read/{open_study.pk}/next/").status_code == 404
    assert client.post(f"/read/{open_study.pk}/", {"consent_version": 1}).status_code == 404


# Next case ----------------------------------------------------------------------------------


def test_next_opens_the_readers_next_trial_and_moves_on_after_it_is_answered(
    reading, reader_a, client_a
):
    study = reading.study
    first = next_trial(reading)
    assert client_a.get(f"/read/{study.pk}/next/").url == f"/read/trials/{first.uid}/"
    complete(reader_a, first)
    second = next_trial(reading)
    assert second.pk != first.pk
    assert client_a.get(f"/read/{study.pk}/next/").url == f"/read/trials/{second.uid}/"


def test_a_locked_session_sends_the_reader_to_the_study_home_with_its_opening_date(
    reading, reader_a, client_a
):
    study = reading.study
    ReadingSession.objects.filter(enrollment=reading, index=1).update(unlock_after_days=7)
    html = client_a.get(f"/read/{study.pk}/").content.decode()
    assert "opens after the previous session" in html
    for _ in range(reading.sessions.get(index=0).trials.count()):
        complete(reader_a, next_trial(reading))
    opens = (reading.sessions.get(index=0).completed_at + timedelta(days=7)).strftime(
        "%Y-%m-%d %H:%M"
    )
    redirected = client_a.get(f"/read/{study.pk}/next/", follow=True)
    assert redirected.redirect_chain == [(f"/read/{study.pk}/", 302)]
    html = redirected.content.decode()
    assert f"Session 2 opens on {opens} UTC" in html
    assert f'href="/read/{study.pk}/next/"' not in html  # no Continue button while locked
    trial = next_trial(reading)
    blocked = client_a.get(f"/read/trials/{trial.uid}/")
    assert blocked.status_code == 409 and "not open yet" in blocked.content.decode()


def test_after_the_last_trial_next_says_the_reader_is_finished(
    coordinator, open_study, reader_a, client_a
):
    enrollment = enroll(coordinator, open_study, reader_a)
    while (trial := next_trial(enrollment)) is not None:
        complete(reader_a, trial)
    redirected = client_a.get(f"/read/{open_study.pk}/next/", follow=True)
    assert redirected.redirect_chain == [(f"/read/{open_study.pk}/", 302)]
    assert "You have read every case of this study" in redirected.content.decode()
    assert "finished" in client_a.get("/read/").content.decode()


# Trial page ---------------------------------------------------------------------------------


def test_the_trial_page_shows_the_trial_and_keeps_the_original_start_time_on_reload(
    reading, client_a
):
    trial = next_trial(reading)
    page = client_a.get(f"/read/trials/{trial.uid}/")
    assert page.status_code == 200
    html = page.content.decode()
    payload = embedded_payload(html)
    assert payload["trial"] == str(trial.uid) and payload["state"] == "shown"
    assert (
        payload["position"],
        payload["trials_in_session"],
        payload["session"],
        payload["sessions"],
    ) == (1, 6, 1, 2)
    assert "Case 1 of 6, session 1 of 2" in html
    assert (
        "studies/trial.js" in html and "studies/viewer/viewer.js" in html and "data-viewer" in html
    )
    assert f"/api/v1/reading/trials/{trial.uid}/answer/" in html
    trial.refresh_from_db()
    started = trial.started_at
    assert started is not None
    client_a.get(f"/read/trials/{trial.uid}/")
    trial.refresh_from_db()
    assert trial.started_at == started


def test_a_trial_of_another_reader_is_not_found(coordinator, reading, reader_b):
    enroll(coordinator, reading.study, reader_b)
    trial = next_trial(reading)
    client = client_for(reader_b)
    assert client.get(f"/read/trials/{trial.uid}/").status_code == 404
    assert client.get(file_url(trial, "display")).status_code == 404
    trial.refresh_from_db()
    assert trial.state == Trial.State.PENDING


def test_a_trial_that_is_not_next_cannot_be_opened(reading, client_a):
    later = Trial.objects.filter(session__enrollment=reading).order_by(
        "session__index", "position"
    )[2]
    page = client_a.get(f"/read/trials/{later.uid}/")
    assert page.status_code == 409
    assert "not your next trial" in page.content.decode()
    later.refresh_from_db()
    assert later.state == Trial.State.PENDING


def test_a_finished_trial_sends_the_reader_on_to_the_next_case(reading, reader_a, client_a):
    trial = next_trial(reading)
    complete(reader_a, trial)
    assert client_a.get(f"/read/trials/{trial.uid}/").url == f"/read/{reading.study.pk}/next/"


def test_a_closed_study_shows_a_clear_message_instead_of_reading(coordinator, reading, client_a):
    trial = next_trial(reading)
    services.study_close(acting_user=coordinator, study=reading.study)
    study = reading.study
    home = client_a.get(f"/read/{study.pk}/")
    assert home.status_code == 200 and "This study is closed" in home.content.decode()
    for url in (f"/read/{study.pk}/next/", f"/read/trials/{trial.uid}/"):
        page = client_a.get(url)
        assert page.status_code == 410
        assert "This study is closed" in page.content.decode()
    assert client_a.get(file_url(trial, "display")).status_code == 404
    trial.refresh_from_db()
    assert trial.state == Trial.State.PENDING


def test_before_the_unaided_answer_the_page_holds_neither_the_ai_output_nor_the_overlay(
    reading, client_a
):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    html = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
    payload = embedded_payload(html)
    assert payload["stage"] == "first" and payload["ai"] is None and payload["overlay_url"] is None
    assert "files/overlay" not in html and "positive_probability" not in html.replace(
        '"ai": null', ""
    )
    assert [q["key"] for q in payload["questions"]] == ["diagnosis", "confidence"]
    reader = reading.reader
    trial_answer(
        acting_user=reader,
        trial=Trial.objects.get(pk=trial.pk),
        stage="first",
        answers=answers_for(trial, "first"),
        client_key=uuid.uuid4(),
    )
    html = client_a.get(f"/read/trials/{trial.uid}/").content.decode()
    payload = embedded_payload(html)
    assert payload["stage"] == "reveal" and payload["ai"] is None and "files/overlay" not in html
    trial_reveal(acting_user=reader, trial=Trial.objects.get(pk=trial.pk))
    payload = embedded_payload(client_a.get(f"/read/trials/{trial.uid}/").content.decode())
    assert payload["stage"] == "final" and payload["ai"]["label"] in ("nodule", "normal")
    assert payload["overlay_url"] == file_url(trial, "overlay")


# Blinding -----------------------------------------------------------------------------------


def test_no_page_names_the_arm_explainer_case_or_truth_at_any_step(
    coordinator, two_stage_study, reader_a
):
    mark_arms(two_stage_study)
    give_files(two_stage_study)
    enrollment = enroll(coordinator, two_stage_study, reader_a, consent=False)
    client = client_for(reader_a)
    seen_kinds = set()
    assert_blind(
        client.get(f"/read/{two_stage_study.pk}/").content.decode(), next_trial(enrollment)
    )
    client.post(
        f"/read/{two_stage_study.pk}/", {"consent_version": two_stage_study.consent_version}
    )
    while (trial := next_trial(enrollment)) is not None:
        seen_kinds.add(trial.arm.kind)
        for url in ("/read/", f"/read/{two_stage_study.pk}/", f"/read/trials/{trial.uid}/"):
            assert_blind(client.get(url).content.decode(), trial)
        payload = embedded_payload(client.get(f"/read/trials/{trial.uid}/").content.decode())
        assert payload["feedback"] is None
        if len(trial_stages(trial=trial, study=two_stage_study)) == 2:
            trial_answer(
                acting_user=reader_a,
                trial=Trial.objects.get(pk=trial.pk),
                stage="first",
                answers=answers_for(trial, "first"),
                client_key=uuid.uuid4(),
            )
            trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
            page = client.get(f"/read/trials/{trial.uid}/")
            assert_blind(page.content.decode(), trial)
            for name in ("pixels", "display", "overlay"):
                served = client.get(file_url(trial, name))
                if name == "overlay" and not trial.arm.shows_explanation:
                    assert served.status_code == 404
                    continue
                assert served.status_code == 200
                assert_blind(json.dumps(dict(served.headers)), trial)
                assert "Content-Disposition" not in served.headers
        trial_answer(
            acting_user=reader_a,
            trial=Trial.objects.get(pk=trial.pk),
            stage="final",
            answers=answers_for(trial, "final"),
            client_key=uuid.uuid4(),
        )
    assert seen_kinds == set(Arm.Kind.values)


def test_the_trial_page_is_the_same_whatever_the_ground_truth_and_whether_the_ai_is_right(
    reading, reader_a, client_a
):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.PLACEBO)
    trial_show(acting_user=reader_a, trial=trial)
    trial_answer(
        acting_user=reader_a,
        trial=trial,
        stage="first",
        answers=answers_for(trial, "first"),
        client_key=uuid.uuid4(),
    )
    trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
    before = without_csrf(client_a.get(f"/read/trials/{trial.uid}/").content.decode())
    label = CaseLabel.objects.get(case=trial.case)
    # Flipping the label flips both the truth and whether the AI is right.
    label.name = "normal" if label.name == "nodule" else "nodule"
    label.save()
    after = without_csrf(client_a.get(f"/read/trials/{trial.uid}/").content.decode())
    assert embedded_payload(before)["ai"] is not None and embedded_payload(before)["overlay_url"]
    assert before == after


# Files --------------------------------------------------------------------------------------


def test_files_are_served_privately_without_a_name_and_with_an_etag(reading, client_a):
    give_files(reading.study)
    trial = next_trial(reading)
    client_a.get(f"/read/trials/{trial.uid}/")
    served = client_a.get(file_url(trial, "display"))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["Cache-Control"] == "private, max-age=86400"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in served.headers
    assert b"".join(served.streaming_content).startswith(b"\x89PNG")
    etag = served["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert trial.case.key not in etag
    again = client_a.get(file_url(trial, "display"), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    pixels = client_a.get(file_url(trial, "pixels"))
    assert pixels["Content-Type"] == "application/octet-stream" and pixels["ETag"] != etag


@pytest.mark.parametrize("name", ["thumbnail", "overlay", "similar-0", "..%2Fpixels", "heatmap"])
def test_unknown_or_not_yet_visible_files_are_not_found(reading, client_a, name):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    client_a.get(f"/read/trials/{trial.uid}/")
    assert client_a.get(file_url(trial, name)).status_code == 404


def test_the_overlay_is_served_only_after_the_reveal(reading, reader_a, client_a):
    give_files(reading.study)
    trial = advance_to(reading, Arm.Kind.AI_EXPLAINER)
    client_a.get(f"/read/trials/{trial.uid}/")
    assert client_a.get(file_url(trial, "overlay")).status_code == 404
    trial_answer(
        acting_user=reader_a,
        trial=Trial.objects.get(pk=trial.pk),
        stage="first",
        answers=answers_for(trial, "first"),
        client_key=uuid.uuid4(),
    )
    assert client_a.get(file_url(trial, "overlay")).status_code == 404
    trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
    assert client_a.get(file_url(trial, "overlay")).status_code == 200


def test_real_and_placebo_overlays_are_served_identically(reading, reader_a, client_a):
    give_files(reading.study)
    served = {}
    while len(served) < 2:
        trial = next_trial(reading)
        kind = trial.arm.kind
        if kind not in (Arm.Kind.AI_EXPLAINER, Arm.Kind.PLACEBO) or kind in served:
            complete(reader_a, trial)
            continue
        trial_show(acting_user=reader_a, trial=trial)
        trial_answer(
            acting_user=reader_a,
            trial=trial,
            stage="first",
            answers=answers_for(trial, "first"),
            client_key=uuid.uuid4(),
        )
        trial_reveal(acting_user=reader_a, trial=Trial.objects.get(pk=trial.pk))
        response = client_a.get(file_url(trial, "overlay"))
        assert response.status_code == 200
        served[kind] = (response, trial)
        trial_answer(
            acting_user=reader_a,
            trial=Trial.objects.get(pk=trial.pk),
            stage="final",
            answers=answers_for(trial, "final"),
            client_key=uuid.uuid4(),
        )
    (real, real_trial), (placebo, placebo_trial) = (
        served[Arm.Kind.AI_EXPLAINER],
        served[Arm.Kind.PLACEBO],
    )
    assert real["Content-Type"] == placebo["Content-Type"] == "image/png"
    assert sorted(real.headers) == sorted(placebo.headers)
    for name in ("Cache-Control", "X-Content-Type-Options", "Content-Length"):
        assert real[name] == placebo[name]
    assert_blind(json.dumps(dict(real.headers)), real_trial)
    assert_blind(json.dumps(dict(placebo.headers)), placebo_trial)
