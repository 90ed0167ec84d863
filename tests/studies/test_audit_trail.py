"""A study's audit trail: every write service scopes its row to the study; the study's
coordinators, site admins and statistician read it (filters, pages) and export it as CSV (itself
audited); nobody else learns it exists; arm conditions stay blinded once the study is open."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from analysis import services as analysis_services
from analysis.models import StudyReport
from core import audit
from core.models import AuditEntry
from core.permissions import COORDINATORS_GROUP
from studies import selectors, services
from studies.models import Enrollment, Question, Trial
from studies.services import reading
from tests.studies.factories import add_explanations, add_predictions

pytestmark = pytest.mark.django_db


def page_url(study, tail: str = "") -> str:
    return f"/studies/{study.pk}/audit/{tail}"


def csv_url(study) -> str:
    return f"/studies/{study.pk}/audit.csv"


def read_csv(response) -> list[list[str]]:
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def other_coordinator(db) -> User:
    user = User.objects.create_user(username="other_coordinator", password="pw-other")
    user.groups.add(Group.objects.get_or_create(name=COORDINATORS_GROUP)[0])
    return user


@pytest.fixture
def with_statistician(draft_study, coordinator, statistician):
    services.study_role_add(acting_user=coordinator, study=draft_study, user=statistician, role="statistician")
    return draft_study


# Every write service of a study scopes its audit row to the study -----------------------------

# Services exported by studies.services that write nothing (or nothing about one study).
NOT_STUDY_WRITES = {
    "DEFAULT_LIKERT", "ServiceError", "invitation_get_valid", "invitation_link", "user_by_username",
    "reader_profile_update",  # the reader's own profile, not a study's
}
READING_WRITES = {"enrollment_consent", "trial_show", "trial_reveal", "trial_answer"}
ANALYSIS_WRITES = {"report_request", "report_download"}
# Rows written along the way that belong to no study (the engine's jobs are shared by studies).
UNSCOPED_ACTIONS = {"precompute.start"}


def _answers(trial: Trial, stage: str) -> dict:
    values = {"diagnosis": "nodule", "confidence": 70, "likert": 4, "free_text": "ok"}
    return {
        q.key: values[q.kind]
        for q in selectors.questions_for(study=trial.session.enrollment.study, trial=trial, stage=stage)
    }


def _next_trial(enrollment) -> Trial:
    return (
        Trial.objects.filter(session__enrollment=enrollment).exclude(state="done")
        .select_related("arm", "session__enrollment__study").order_by("session__index", "position").first()
    )


def test_every_write_service_of_a_study_records_a_row_in_the_studys_trail(
    coordinator, statistician, reader_a, study_model, study_collection, monkeypatch, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # the report is requested (and audited), not built: nothing is sent to a worker
    monkeypatch.setattr("analysis.services.enqueue_on_commit", lambda *args, **kwargs: None)
    walked: dict[str, set[str]] = {}
    study = None

    def step(name: str, call, *, expect: str | set[str]):
        nonlocal study
        last = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        result = call()
        if study is None:
            study = result
        rows = AuditEntry.objects.filter(pk__gt=last).exclude(action__startswith="auth.")
        rows = rows.exclude(action__in=UNSCOPED_ACTIONS)
        actions = set(rows.values_list("action", flat=True))
        assert actions >= ({expect} if isinstance(expect, str) else expect), (name, actions)
        assert set(rows.values_list("study_id", flat=True)) == {study.pk}, (name, list(rows.values()))
        walked[name] = actions
        return result

    step("study_create", lambda: services.study_create(
        acting_user=coordinator, title="Walked", model=study_model, collections=[study_collection],
        consent_text="I agree.", design="latin_square"), expect="study.create")
    step("study_update", lambda: services.study_update(acting_user=coordinator, study=study, protocol="two_stage"),
         expect="study.update")
    step("arm_add", lambda: services.arm_add(acting_user=coordinator, study=study, kind="unaided"),
         expect="study.arm_add")
    services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    services.arm_add(acting_user=coordinator, study=study, kind="placebo", explainer="gradcam")
    extra = services.arm_add(acting_user=coordinator, study=study, kind="ai")
    step("arm_update", lambda: services.arm_update(acting_user=coordinator, arm=extra, shows_clinical_history=True),
         expect="study.arm_update")
    step("arm_remove", lambda: services.arm_remove(acting_user=coordinator, arm=extra), expect="study.arm_remove")
    step("questions_add_defaults", lambda: services.questions_add_defaults(acting_user=coordinator, study=study),
         expect="study.question_add")
    step("question_add", lambda: services.question_add(
        acting_user=coordinator, study=study, key="comment", kind=Question.Kind.FREE_TEXT, text="Anything else?",
        required=False), expect="study.question_add")
    comment = study.questions.get(key="comment")
    step("question_update", lambda: services.question_update(
        acting_user=coordinator, question=comment, text="Any other remark?"), expect="study.question_update")
    step("question_remove", lambda: services.question_remove(acting_user=coordinator, question=comment),
         expect="study.question_remove")
    confidence = study.questions.get(key="confidence")
    step("question_move", lambda: services.question_move(acting_user=coordinator, question=confidence, direction="up"),
         expect="study.question_move")
    step("study_analysis_plan_set", lambda: services.study_analysis_plan_set(
        acting_user=coordinator, study=study, plan={
            "primary_endpoint": "auc", "fom": "empirical_auc", "comparisons": [["B", "A"]],
            "alpha": 0.05, "test": "or_rrrc"}), expect="study.analysis_plan")
    step("study_quality_rules_set", lambda: services.study_quality_rules_set(
        acting_user=coordinator, study=study, rules={"attention_max_failures": 1,
                                                     "fast_read_seconds": 2.0}),
         expect="study.quality_rules")
    step("study_questionnaires_set", lambda: services.study_questionnaires_set(
        acting_user=coordinator, study=study,
        questionnaires=[{"instrument": "sus", "after": "last_session"}]),
         expect="study.questionnaires_set")
    cases = list(study_collection.cases.order_by("pk"))
    step("study_cases_set", lambda: services.study_cases_set(
        acting_user=coordinator, study=study, main=[c.pk for c in cases[:4]]), expect="study.cases_set")
    step("study_cases_add", lambda: services.study_cases_add(
        acting_user=coordinator, study=study, keys=[cases[5].key]), expect="study.cases_set")
    step("study_cases_exclude", lambda: services.study_cases_exclude(
        acting_user=coordinator, study=study, case_ids=[cases[5].pk]), expect="study.cases_set")
    step("study_cases_select", lambda: services.study_cases_select(
        acting_user=coordinator, study=study, main_count=4), expect="study.cases_set")
    step("study_role_add", lambda: services.study_role_add(
        acting_user=coordinator, study=study, user=statistician, role="statistician"), expect="study.role_add")
    step("study_role_remove", lambda: services.study_role_remove(
        acting_user=coordinator, study=study, user=statistician, role="statistician"), expect="study.role_remove")
    services.study_role_add(acting_user=coordinator, study=study, user=statistician, role="statistician")
    add_predictions(study_model, cases)
    add_explanations(study_model, cases, "gradcam")
    add_explanations(study_model, cases, "gradcam", placebo=True)
    step("study_precompute", lambda: services.study_precompute(acting_user=coordinator, study=study),
         expect="study.precompute")
    step("study_open", lambda: services.study_open(acting_user=coordinator, study=study), expect="study.open")
    step("reader_enroll", lambda: services.reader_enroll(acting_user=coordinator, study=study, reader=reader_a),
         expect="study.enroll")
    step("invitation_create", lambda: services.invitation_create(
        acting_user=coordinator, study=study, email="first@example.org"), expect="study.invite")
    first = study.invitations.get(email="first@example.org")
    step("invitation_revoke", lambda: services.invitation_revoke(acting_user=coordinator, invitation=first),
         expect="study.invitation_revoke")
    _, token = services.invitation_create(acting_user=coordinator, study=study, email="second@example.org")
    step("invitation_accept", lambda: services.invitation_accept(token=token, password="A-long-Passw0rd!"),
         expect={"study.invitation_accept", "study.role_add", "study.enroll"})
    enrollment = Enrollment.objects.get(study=study, reader=reader_a)
    step("enrollment_consent", lambda: reading.enrollment_consent(
        acting_user=reader_a, enrollment=enrollment, consent_version=study.consent_version), expect="reader.consent")
    trial = _next_trial(enrollment)
    while not trial.arm.shows_ai:  # reach a two-stage trial
        reading.trial_show(acting_user=reader_a, trial=trial)
        reading.trial_answer(acting_user=reader_a, trial=trial, stage="final", answers=_answers(trial, "final"),
                             client_key=uuid.uuid4())
        trial = _next_trial(enrollment)
    step("trial_show", lambda: reading.trial_show(acting_user=reader_a, trial=trial), expect="trial.show")
    trial.refresh_from_db()
    reading.trial_answer(acting_user=reader_a, trial=trial, stage="first", answers=_answers(trial, "first"),
                         client_key=uuid.uuid4())
    trial.refresh_from_db()
    step("trial_reveal", lambda: reading.trial_reveal(acting_user=reader_a, trial=trial), expect="trial.reveal")
    trial.refresh_from_db()
    step("trial_answer", lambda: reading.trial_answer(
        acting_user=reader_a, trial=trial, stage="final", answers=_answers(trial, "final"), client_key=uuid.uuid4()),
        expect="trial.answer")
    trial = _next_trial(enrollment)
    while trial is not None:  # finish the reader's only session: the SUS is then due
        reading.trial_show(acting_user=reader_a, trial=trial)
        trial.refresh_from_db()
        if trial.arm.shows_ai:
            reading.trial_answer(acting_user=reader_a, trial=trial, stage="first",
                                 answers=_answers(trial, "first"), client_key=uuid.uuid4())
            trial.refresh_from_db()
            reading.trial_reveal(acting_user=reader_a, trial=trial)
            trial.refresh_from_db()
        reading.trial_answer(acting_user=reader_a, trial=trial, stage="final",
                             answers=_answers(trial, "final"), client_key=uuid.uuid4())
        trial = _next_trial(enrollment)
    step("questionnaire_submit", lambda: services.questionnaire_submit(
        acting_user=reader_a, enrollment=enrollment, instrument="sus", session_index=0,
        answers={f"sus_{i}": 3 for i in range(1, 11)}, client_key=uuid.uuid4()),
        expect="reader.questionnaire")
    step("study_arms_reveal", lambda: services.study_arms_reveal(acting_user=statistician, study=study),
         expect="study.arms_reveal")
    step("report_request", lambda: analysis_services.report_request(acting_user=coordinator, study=study),
         expect="report.request")
    report = StudyReport.objects.create(study=study, status=StudyReport.Status.DONE, csv_file="reports/x/responses.csv")
    step("report_download", lambda: analysis_services.report_download(acting_user=coordinator, report=report, kind="csv"),
         expect="report.download")
    step("study_audit_export", lambda: list(services.study_audit_export(acting_user=coordinator, study=study)),
         expect="study.audit_export")
    step("study_close", lambda: services.study_close(acting_user=coordinator, study=study), expect="study.close")

    expected = (set(services.__all__) - NOT_STUDY_WRITES) | READING_WRITES | ANALYSIS_WRITES
    assert set(walked) == expected, "a study write service is missing from this walk"
    # Nothing written along the way about this study escaped its trail.
    loose = AuditEntry.objects.filter(study_id__isnull=True).exclude(action__startswith="auth.")
    assert set(loose.values_list("action", flat=True)) <= UNSCOPED_ACTIONS


# Who may see the trail ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["coordinator", "site_admin", "statistician"])
def test_the_studys_coordinators_site_admins_and_statistician_see_the_trail(
    request, client, with_statistician, persona
):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(page_url(with_statistician))
    assert response.status_code == 200
    assert b"study.create" in response.content and b"study.arm_add" in response.content
    assert client.get(csv_url(with_statistician)).status_code == 200


@pytest.mark.parametrize("persona", ["reader_a", "outsider", "other_coordinator"])
def test_readers_other_coordinators_and_outsiders_get_404(request, client, coordinator, draft_study, persona):
    user = request.getfixturevalue(persona)
    if persona == "reader_a":
        services.study_role_add(acting_user=coordinator, study=draft_study, user=user, role="reader")
    client.force_login(user)
    assert client.get(page_url(draft_study)).status_code == 404
    assert client.get(csv_url(draft_study)).status_code == 404
    assert not AuditEntry.objects.filter(action="study.audit_export").exists()


def test_signed_out_visitors_are_sent_to_the_login_page(client, draft_study):
    for url in (page_url(draft_study), csv_url(draft_study)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_export_service_refuses_someone_who_may_not_see_the_study(draft_study, outsider):
    with pytest.raises(PermissionError):
        services.study_audit_export(acting_user=outsider, study=draft_study)
    assert not AuditEntry.objects.filter(action="study.audit_export").exists()


def test_the_trail_is_linked_from_the_study_pages(coordinator_client, draft_study):
    response = coordinator_client.get(f"/studies/{draft_study.pk}/")
    assert f'href="{page_url(draft_study)}"'.encode() in response.content


def test_the_trail_holds_only_this_studys_rows(coordinator_client, coordinator, draft_study, study_model):
    other = services.study_create(acting_user=coordinator, title="Another study", model=study_model)
    services.study_update(acting_user=coordinator, study=other, description="other-study-marker")
    with transaction.atomic():
        audit.record(acting_user=coordinator, action="unscoped.thing", after={"marker": "unscoped-marker"})
    content = coordinator_client.get(page_url(draft_study)).content
    assert b"other-study-marker" not in content and b"unscoped" not in content
    rows = read_csv(coordinator_client.get(csv_url(draft_study)))
    assert all("Another study" not in row and "unscoped.thing" not in row for row in rows)


# Reading the trail: filters and pages -----------------------------------------------------------


def _fill(study, user, count: int, action: str = "test.filler"):
    with transaction.atomic():
        for index in range(count):
            audit.record(acting_user=user, action=action, study=study, after={"n": index})


def test_the_trail_is_paged_newest_first(coordinator_client, coordinator, draft_study):
    _fill(draft_study, coordinator, 60)
    total = AuditEntry.objects.filter(study_id=draft_study.pk).count()
    first = coordinator_client.get(page_url(draft_study))
    assert first.context["page"].paginator.count == total
    assert len(first.context["rows"]) == 50
    assert first.context["rows"][0]["after"] == '{"n": 59}'
    last_page = first.context["page"].paginator.num_pages
    last = coordinator_client.get(page_url(draft_study) + f"?page={last_page}")
    assert last.context["rows"][-1]["action"] == "study.create"
    assert b"Newer" in last.content
    # A page number out of range shows the last page instead of failing.
    assert coordinator_client.get(page_url(draft_study) + "?page=999").status_code == 200


def test_the_trail_filters_by_action_user_and_date(coordinator_client, coordinator, statistician, with_statistician):
    study = with_statistician
    services.study_arms_reveal(acting_user=statistician, study=study)
    by_action = coordinator_client.get(page_url(study) + "?action=study.arm_add")
    assert {r["action"] for r in by_action.context["rows"]} == {"study.arm_add"}
    assert len(by_action.context["rows"]) == 4
    by_user = coordinator_client.get(page_url(study) + "?actor=statistician")
    assert [r["action"] for r in by_user.context["rows"]] == ["study.arms_reveal"]
    today = timezone.localdate()
    in_range = coordinator_client.get(page_url(study) + f"?since={today}&until={today}")
    assert in_range.context["page"].paginator.count == AuditEntry.objects.filter(study_id=study.pk).count()
    tomorrow = today + timedelta(days=1)
    later = coordinator_client.get(page_url(study) + f"?since={tomorrow}")
    assert later.context["page"].paginator.count == 0 and b"No rows match the filters" in later.content
    yesterday = today - timedelta(days=1)
    earlier = coordinator_client.get(page_url(study) + f"?until={yesterday}")
    assert earlier.context["page"].paginator.count == 0


def test_page_links_keep_the_filters(coordinator_client, coordinator, draft_study):
    _fill(draft_study, coordinator, 60)
    response = coordinator_client.get(page_url(draft_study) + "?action=test.filler")
    assert b"?action=test.filler&amp;page=2" in response.content
    assert f"{csv_url(draft_study)}?action=test.filler".encode() in response.content


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", b"Enter a valid date"),
        ("since=2026-02-10&until=2026-02-01", b"the end of the date range is before its start"),
        ("action=no.such.action", b"Select a valid choice"),
        ("actor=nobody", b"Select a valid choice"),
    ],
)
def test_bad_filters_answer_400_with_a_message(coordinator_client, draft_study, query, message):
    page = coordinator_client.get(page_url(draft_study) + "?" + query)
    assert page.status_code == 400 and message in page.content
    export = coordinator_client.get(csv_url(draft_study) + "?" + query)
    assert export.status_code == 400 and message in export.content
    assert not AuditEntry.objects.filter(action="study.audit_export").exists()


def test_the_trail_pages_are_read_only(coordinator_client, draft_study):
    assert coordinator_client.post(page_url(draft_study)).status_code == 405
    assert coordinator_client.post(csv_url(draft_study)).status_code == 405


# The CSV export ---------------------------------------------------------------------------------


def test_the_export_streams_a_csv_with_a_header_and_is_itself_audited(coordinator_client, coordinator, draft_study):
    response = coordinator_client.get(csv_url(draft_study), REMOTE_ADDR="203.0.113.50")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="study-{draft_study.pk}-audit.csv"' in response["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0] == ["at", "actor", "ip", "action", "object_type", "object_id", "object", "before", "after"]
    body = rows[1:]
    assert len(body) == AuditEntry.objects.filter(study_id=draft_study.pk).count()
    assert body[0][3] == "study.audit_export" and body[0][2] == "203.0.113.50"  # newest first
    assert body[-1][3] == "study.create" and body[-1][1] == "coordinator"
    export = AuditEntry.objects.get(action="study.audit_export")
    assert export.study_id == draft_study.pk and export.actor == coordinator and export.after == {}


def test_the_export_applies_the_filters_and_records_them(coordinator_client, draft_study):
    today = timezone.localdate().isoformat()
    response = coordinator_client.get(csv_url(draft_study) + f"?action=study.arm_add&since={today}")
    rows = read_csv(response)
    assert [row[3] for row in rows[1:]] == ["study.arm_add"] * 4
    assert AuditEntry.objects.get(action="study.audit_export").after == {"action": "study.arm_add", "since": today}


def test_the_export_keeps_spreadsheets_from_running_formulas(coordinator_client, coordinator, study_model):
    study = services.study_create(acting_user=coordinator, title="=HYPERLINK(\"http://x\")", model=study_model)
    rows = read_csv(coordinator_client.get(csv_url(study)))
    create = next(row for row in rows if row[3] == "study.create")
    assert create[6] == "'=HYPERLINK(\"http://x\")"


# Blinding -----------------------------------------------------------------------------------------


def test_a_drafts_trail_shows_the_arm_conditions_being_configured(coordinator_client, draft_study):
    assert b"gradcam" in coordinator_client.get(page_url(draft_study)).content


@pytest.mark.parametrize("persona", ["coordinator", "statistician"])
def test_once_open_the_trail_names_no_arm_condition(request, client, coordinator, statistician, ready_study, persona):
    services.study_role_add(acting_user=coordinator, study=ready_study, user=statistician, role="statistician")
    services.study_open(acting_user=coordinator, study=ready_study)
    client.force_login(request.getfixturevalue(persona))
    pages = [client.get(page_url(ready_study) + f"?page={n}").content.decode() for n in (1, 2)]
    exported = b"".join(client.get(csv_url(ready_study)).streaming_content).decode()
    for text in (*pages, exported):
        assert "gradcam" not in text and "placebo" not in text and "param_hash" not in text
    assert "explanation" in exported  # the blinded kind of the explanation arms
    stored = AuditEntry.objects.get(action="study.open")
    assert "gradcam" in str(stored.after)  # the trail itself keeps everything


def test_empty_filters_are_no_filters(coordinator_client, draft_study):
    response = coordinator_client.get(page_url(draft_study) + "?action=&actor=&since=&until=")
    assert response.status_code == 200 and response.context["query"] == ""
    assert response.context["page"].paginator.count == AuditEntry.objects.filter(study_id=draft_study.pk).count()
