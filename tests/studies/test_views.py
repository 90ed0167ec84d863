"""Coordinator workspace pages of the studies app and the invitation page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from core.models import AuditEntry
from core.permissions import COORDINATORS_GROUP
from studies import services
from studies.models import (
    Arm,
    Enrollment,
    Invitation,
    Question,
    ReaderProfile,
    Study,
    StudyCase,
    StudyRole,
)
from tests.studies.factories import add_explanations, add_predictions, make_collection, make_model

pytestmark = pytest.mark.django_db

STUDY_PAGES = ["", "edit/", "arms/", "questions/", "cases/", "readiness/", "people/", "progress/"]


def page(study: Study, suffix: str = "") -> str:
    return f"/studies/{study.pk}/{suffix}"


def other_coordinator() -> User:
    user = User.objects.create_user(username="other_coordinator", password="pw-other")
    user.groups.add(Group.objects.get_or_create(name=COORDINATORS_GROUP)[0])
    return user


def invite(study: Study, coordinator, email: str = "new.reader@example.org") -> str:
    return services.invitation_create(acting_user=coordinator, study=study, email=email)[1]


# Access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", STUDY_PAGES)
def test_every_study_page_renders_for_its_coordinator(coordinator_client, draft_study, suffix):
    response = coordinator_client.get(page(draft_study, suffix))
    assert response.status_code == 200
    assert draft_study.title in response.content.decode()


def test_the_study_list_shows_only_the_coordinators_own_studies_with_their_status(
    coordinator_client, draft_study, study_model
):
    theirs = services.study_create(acting_user=other_coordinator(), title="Someone else's study")
    response = coordinator_client.get("/studies/")
    content = response.content.decode()
    assert response.status_code == 200
    assert draft_study.title in content and theirs.title not in content
    assert 'class="badge badge-draft"' in content and "New study" in content


@pytest.mark.parametrize("persona", ["other", "reader_a", "outsider"])
@pytest.mark.parametrize("suffix", [*STUDY_PAGES, "reveal/"])
def test_people_without_a_role_in_the_study_do_not_see_that_it_exists(
    client, draft_study, reader_a, outsider, persona, suffix
):
    services.study_role_add(
        acting_user=draft_study.created_by, study=draft_study, user=reader_a, role="reader"
    )
    user = {"other": other_coordinator(), "reader_a": reader_a, "outsider": outsider}[persona]
    client.force_login(user)
    assert client.get(page(draft_study, suffix)).status_code == 404


def test_people_without_a_role_cannot_post_changes_either(client, draft_study):
    client.force_login(other_coordinator())
    response = client.post(page(draft_study, "arms/"), {"kind": "unaided"})
    assert response.status_code == 404
    assert draft_study.arms.count() == 4


@pytest.mark.parametrize("suffix", [*STUDY_PAGES, "reveal/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, draft_study, suffix):
    response = client.get(page(draft_study, suffix))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_only_coordinators_can_start_a_new_study(client, reader_a, coordinator_client):
    assert coordinator_client.get("/studies/new/").status_code == 200
    client.force_login(reader_a)
    assert client.get("/studies/new/").status_code == 404
    assert client.post("/studies/new/", {"title": "Mine"}).status_code == 404
    assert not Study.objects.filter(title="Mine").exists()


def test_the_statistician_sees_the_pages_without_forms_and_cannot_change_the_study(
    client, draft_study, coordinator, statistician
):
    services.study_role_add(acting_user=coordinator, study=draft_study, user=statistician, role="statistician")
    client.force_login(statistician)
    arms_page = client.get(page(draft_study, "arms/"))
    assert arms_page.status_code == 200 and "Add an arm" not in arms_page.content.decode()
    assert client.post(page(draft_study, "arms/"), {"kind": "unaided"}).status_code == 403
    assert client.post(page(draft_study, "open/"), {"confirm": "on"}).status_code == 403
    assert draft_study.arms.count() == 4


def test_a_coordinator_cannot_open_the_statisticians_reveal_page(coordinator_client, open_study):
    assert coordinator_client.get(page(open_study, "reveal/")).status_code == 403
    assert coordinator_client.post(page(open_study, "reveal/")).status_code == 403
    assert not AuditEntry.objects.filter(action="study.arms_reveal").exists()


# The whole configuration through the pages --------------------------------------------------


def test_a_coordinator_creates_configures_and_opens_a_study_through_the_pages(
    coordinator_client, reader_a
):
    model, collection = make_model("flow-net"), make_collection("flow-cases", cases=8)
    created = coordinator_client.post(
        "/studies/new/",
        {
            "title": "Flow study", "description": "Through the pages", "model": model.pk,
            "collections": [collection.pk], "design": "latin_square", "protocol": "single_stage",
            "sessions": 1, "washout_days": 0,
        },
    )
    study = Study.objects.get(title="Flow study")
    assert created.status_code == 302 and created["Location"] == page(study)
    assert StudyRole.objects.filter(study=study, role="coordinator", user__username="coordinator").exists()

    edited = coordinator_client.post(
        page(study, "edit/"),
        {
            "title": "Flow study", "description": "Through the pages", "instructions": "Read carefully.",
            "consent_text": "I agree.", "model": model.pk, "collections": [collection.pk],
            "design": "latin_square", "protocol": "two_stage", "sessions": 1, "washout_days": 0,
            "min_ai_wrong_share": "",
        },
    )
    assert edited.status_code == 302
    study.refresh_from_db()
    assert (study.consent_text, study.protocol, study.consent_version) == ("I agree.", "two_stage", 2)

    assert coordinator_client.post(page(study, "arms/"), {"kind": "unaided", "explainer": ""}).status_code == 302
    assert coordinator_client.post(
        page(study, "arms/"), {"kind": "ai_explainer", "explainer": "gradcam"}
    ).status_code == 302
    assert list(study.arms.values_list("code", "kind")) == [("A", "unaided"), ("B", "ai_explainer")]

    assert coordinator_client.post(page(study, "questions/defaults/")).status_code == 302
    assert coordinator_client.post(
        page(study, "questions/"),
        {"kind": "free_text", "key": "comment", "text": "Anything to add?", "applies_to": "all"},
    ).status_code == 302
    keys = list(study.questions.values_list("key", flat=True))
    assert keys[:2] == ["diagnosis", "confidence"] and keys[-1] == "comment" and len(keys) == 7

    assert coordinator_client.post(
        page(study, "cases/"), {"split": "", "main_count": 6, "training_count": 0, "attention_count": 0}
    ).status_code == 302
    assert study.study_cases.filter(role=StudyCase.Role.MAIN).count() == 6

    assert coordinator_client.post(
        page(study, "people/"), {"user": "reader_a", "role": "reader"}
    ).status_code == 302

    not_ready = coordinator_client.get(page(study))
    assert "have no precomputed prediction" in not_ready.content.decode()

    cases = list(collection.cases.all())
    add_predictions(model, cases, wrong={cases[1].pk})
    add_explanations(model, cases, "gradcam")
    ready = coordinator_client.get(page(study))
    assert "Nothing: the study is ready to open." in ready.content.decode()

    opened = coordinator_client.post(page(study, "open/"), {"confirm": "on"})
    assert opened.status_code == 302
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and study.frozen_config["arms"][1]["explainer"] == "gradcam"
    enrollment = Enrollment.objects.get(study=study, reader=reader_a)
    assert enrollment.sessions.get().trials.count() == 6

    progress = coordinator_client.get(page(study, "progress/")).content.decode()
    assert "reader_a" in progress and "0 / 6" in progress


# Problems are shown on the page, never a server error ---------------------------------------


def test_a_diagnosis_question_without_options_is_refused_with_the_reason(coordinator_client, coordinator):
    study = services.study_create(acting_user=coordinator, title="No model yet")
    response = coordinator_client.post(
        page(study, "questions/"),
        {"kind": "diagnosis", "key": "diagnosis", "text": "Finding?", "options": "", "applies_to": "all"},
    )
    assert response.status_code == 400
    assert "needs at least two options" in response.content.decode()
    assert not study.questions.exists()


def test_fields_of_another_kind_are_ignored_not_refused(coordinator_client, draft_study):
    """Issue 14 (10): options and a scale left over from an earlier try do not refuse a Likert item."""
    response = coordinator_client.post(
        page(draft_study, "questions/"),
        {"kind": "likert", "key": "ease", "text": "Easy?", "options": "a\nb", "scale": "scale7",
         "points": "7", "applies_to": "all"},
    )
    assert response.status_code == 302
    question = draft_study.questions.get(key="ease")
    assert (question.options, question.scale, question.points) == ([], "", 7)


def test_diagnosis_options_are_read_one_per_line(coordinator_client, draft_study):
    draft_study.questions.filter(key="diagnosis").delete()
    response = coordinator_client.post(
        page(draft_study, "questions/"),
        {"kind": "diagnosis", "key": "finding", "text": "Finding?", "options": "normal\n\n nodule \nmass",
         "applies_to": "all", "required": "on"},
    )
    assert response.status_code == 302
    assert draft_study.questions.get(key="finding").options == ["normal", "nodule", "mass"]


def test_removing_a_question_through_the_page(coordinator_client, draft_study):
    question = draft_study.questions.get(key="trust")
    assert coordinator_client.post(page(draft_study, f"questions/{question.pk}/remove/")).status_code == 302
    assert not Question.objects.filter(pk=question.pk).exists()


def test_opening_a_study_that_is_not_ready_lists_what_stops_it(coordinator_client, draft_study):
    response = coordinator_client.post(page(draft_study, "open/"), {"confirm": "on"})
    content = response.content.decode()
    assert response.status_code == 400
    assert "arm B: 12 of 12 cases have no precomputed prediction yet" in content
    draft_study.refresh_from_db()
    assert draft_study.status == Study.Status.DRAFT


def test_opening_without_ticking_the_confirmation_leaves_the_study_a_draft(coordinator_client, ready_study):
    response = coordinator_client.post(page(ready_study, "open/"), {})
    assert response.status_code == 400 and "confirmation" in response.content.decode()
    ready_study.refresh_from_db()
    assert ready_study.status == Study.Status.DRAFT


def test_adding_a_duplicate_arm_shows_the_problem(coordinator_client, draft_study):
    response = coordinator_client.post(page(draft_study, "arms/"), {"kind": "ai_explainer", "explainer": "gradcam"})
    assert response.status_code == 400
    assert "already has an arm with this condition" in response.content.decode()
    assert draft_study.arms.count() == 4


def test_an_explanation_arm_without_an_explainer_shows_the_problem(coordinator_client, draft_study):
    response = coordinator_client.post(page(draft_study, "arms/"), {"kind": "ai_explainer", "explainer": ""})
    assert response.status_code == 400 and "needs an explainer" in response.content.decode()


def test_the_arm_form_offers_only_the_models_supported_explainers(coordinator_client, draft_study, study_model):
    study_model.explainers["occlusion"] = {"supported": False, "reason": "too slow"}
    study_model.save()
    content = coordinator_client.get(page(draft_study, "arms/")).content.decode()
    assert 'value="saliency"' in content and 'value="occlusion"' not in content


def test_removing_an_arm_through_the_page(coordinator_client, draft_study):
    arm = draft_study.arms.get(code="D")
    assert coordinator_client.post(page(draft_study, f"arms/{arm.pk}/remove/")).status_code == 302
    assert list(draft_study.arms.values_list("code", flat=True)) == ["A", "B", "C"]


def test_choosing_cases_shows_the_counts_per_role(coordinator_client, draft_study):
    response = coordinator_client.post(
        page(draft_study, "cases/"), {"split": "", "main_count": 8, "training_count": 2, "attention_count": 1}
    )
    assert response.status_code == 302
    content = coordinator_client.get(page(draft_study, "cases/")).content.decode()
    assert re.search(r"main \(analysed\)</th><td>8<", content)
    assert re.search(r"training \(feedback shown, not analysed\)</th><td>2<", content)
    assert re.search(r"attention check \(flagged in exports\)</th><td>1<", content)


def test_asking_for_more_cases_than_there_are_shows_the_problem(coordinator_client, draft_study):
    response = coordinator_client.post(
        page(draft_study, "cases/"), {"split": "", "main_count": 20, "training_count": 0, "attention_count": 0}
    )
    assert response.status_code == 400
    assert "asked for 20 cases but only 12 are available" in response.content.decode()
    assert draft_study.study_cases.count() == 12


def test_the_readiness_page_shows_what_is_missing_and_links_the_precompute(coordinator_client, draft_study):
    content = coordinator_client.get(page(draft_study, "readiness/")).content.decode()
    assert "missing 12 prediction(s), 12 explanation(s)" in content
    assert 'href="/library/precompute/"' in content


def test_the_readiness_page_counts_the_cases_the_ai_gets_wrong(coordinator_client, ready_study):
    content = coordinator_client.get(page(ready_study, "readiness/")).content.decode()
    assert "3 of 12 main cases with known truth and a prediction (25%)" in content
    assert "missing" not in content


# Once open, the configuration is frozen and the arms blinded --------------------------------


def test_before_opening_the_draft_editor_shows_the_explainer_behind_an_arm(coordinator_client, draft_study):
    assert "gradcam" in coordinator_client.get(page(draft_study, "arms/")).content.decode()


def test_once_open_no_page_names_an_arms_explainer_except_the_statisticians_reveal(
    client, coordinator_client, open_study, coordinator, statistician
):
    services.study_role_add(acting_user=coordinator, study=open_study, user=statistician, role="statistician")
    for suffix in STUDY_PAGES:
        response = coordinator_client.get(page(open_study, suffix))
        assert response.status_code == 200
        assert "gradcam" not in response.content.decode().lower(), suffix
        assert "placebo" not in response.content.decode().lower(), suffix
    assert "gradcam" not in coordinator_client.get("/studies/").content.decode().lower()

    client.force_login(statistician)
    for suffix in [*STUDY_PAGES, "reveal/"]:
        assert "gradcam" not in client.get(page(open_study, suffix)).content.decode().lower(), suffix
    revealed = client.post(page(open_study, "reveal/"))
    assert revealed.status_code == 200 and "gradcam" in revealed.content.decode()
    entry = AuditEntry.objects.get(action="study.arms_reveal")
    assert entry.actor == statistician and entry.after == {"arms": ["A", "B", "C", "D"]}


def test_once_open_the_pages_say_the_configuration_is_frozen_and_hide_the_edit_forms(
    coordinator_client, open_study
):
    overview = coordinator_client.get(page(open_study)).content.decode()
    assert "configuration was frozen" in overview and "Open study" not in overview
    assert "Close study" in overview
    for suffix, form_heading in [("arms/", "Add an arm"), ("questions/", "Add a question"),
                                 ("cases/", "Choose the cases"), ("edit/", 'type="submit">Save')]:
        content = coordinator_client.get(page(open_study, suffix)).content.decode()
        assert "configuration was frozen" in content and form_heading not in content, suffix


def test_a_change_posted_to_an_open_study_is_refused_with_the_reason(coordinator_client, open_study):
    response = coordinator_client.post(
        page(open_study, "questions/"), {"kind": "free_text", "key": "late", "text": "Late?", "applies_to": "all"}
    )
    assert response.status_code == 400
    assert "configuration was frozen when it opened" in response.content.decode()
    arm = open_study.arms.get(code="A")
    assert coordinator_client.post(page(open_study, f"arms/{arm.pk}/remove/")).status_code == 400
    assert Arm.objects.filter(pk=arm.pk).exists()


def test_closing_an_open_study_through_the_overview(coordinator_client, open_study):
    assert coordinator_client.post(page(open_study, "close/"), {"confirm": "on"}).status_code == 302
    open_study.refresh_from_db()
    assert open_study.status == Study.Status.CLOSED
    again = coordinator_client.post(page(open_study, "close/"), {"confirm": "on"})
    assert again.status_code == 400 and "only an open study can be closed" in again.content.decode()


# People and invitations ---------------------------------------------------------------------


def test_adding_an_unknown_username_shows_the_problem(coordinator_client, draft_study):
    response = coordinator_client.post(page(draft_study, "people/"), {"user": "nobody", "role": "reader"})
    assert response.status_code == 400 and "no user named" in response.content.decode()


def test_a_reader_added_to_an_open_study_is_enrolled_and_shows_in_progress(coordinator_client, open_study, reader_b):
    response = coordinator_client.post(page(open_study, "people/"), {"user": "reader_b", "role": "reader"})
    assert response.status_code == 302
    enrollment = Enrollment.objects.get(study=open_study, reader=reader_b)
    total = sum(session.trials.count() for session in enrollment.sessions.all())
    assert total >= 12
    content = coordinator_client.get(page(open_study, "progress/")).content.decode()
    assert "reader_b" in content and f"0 / {total}" in content
    assert f'<progress max="{total}" value="0">' in content
    assert "1 / 2" in content  # the first of two sessions is unlocked


def test_an_enrolled_reader_cannot_be_removed_and_the_page_says_why(coordinator_client, open_study, reader_b):
    services.study_role_add(acting_user=open_study.created_by, study=open_study, user=reader_b, role="reader")
    response = coordinator_client.post(page(open_study, "people/remove/"), {"user": "reader_b", "role": "reader"})
    assert response.status_code == 400 and "readers cannot be removed" in response.content.decode()
    assert StudyRole.objects.filter(study=open_study, user=reader_b, role="reader").exists()


def test_a_reader_is_removed_from_a_draft_through_the_page(coordinator_client, draft_study, reader_b):
    services.study_role_add(acting_user=draft_study.created_by, study=draft_study, user=reader_b, role="reader")
    response = coordinator_client.post(page(draft_study, "people/remove/"), {"user": "reader_b", "role": "reader"})
    assert response.status_code == 302
    assert not StudyRole.objects.filter(study=draft_study, user=reader_b).exists()


def test_inviting_shows_the_link_once_and_lists_the_invitation_as_pending(coordinator_client, draft_study):
    response = coordinator_client.post(page(draft_study, "people/invite/"), {"email": "New.Reader@example.org"})
    assert response.status_code == 302 and response["Location"] == page(draft_study, "people/")
    content = coordinator_client.get(response["Location"]).content.decode()
    assert "Invitation sent to new.reader@example.org." in content
    token = re.search(r"/invite/([\w-]+)/", content).group(1)
    assert services.invitation_get_valid(token=token).email == "new.reader@example.org"
    later = coordinator_client.get(page(draft_study, "people/")).content.decode()
    assert token not in later
    assert "new.reader@example.org" in later and "badge-pending" in later
    assert Invitation.objects.count() == 1


def test_an_invalid_e_mail_address_shows_the_problem(coordinator_client, draft_study):
    response = coordinator_client.post(page(draft_study, "people/invite/"), {"email": "not-an-address"})
    assert response.status_code == 400 and "is not an e-mail address" in response.content.decode()
    assert not Invitation.objects.exists()


def test_revoking_an_invitation_marks_it_revoked(coordinator_client, draft_study, coordinator):
    token = invite(draft_study, coordinator)
    invitation = Invitation.objects.get()
    response = coordinator_client.post(page(draft_study, f"invitations/{invitation.pk}/revoke/"))
    assert response.status_code == 302
    assert "badge-revoked" in coordinator_client.get(page(draft_study, "people/")).content.decode()
    with pytest.raises(services.ServiceError):
        services.invitation_get_valid(token=token)


def test_invitation_states_are_listed(coordinator_client, draft_study, coordinator):
    invite(draft_study, coordinator, "pending@example.org")
    invite(draft_study, coordinator, "late@example.org")
    Invitation.objects.filter(email="late@example.org").update(expires_at=timezone.now() - timedelta(days=1))
    content = coordinator_client.get(page(draft_study, "people/")).content.decode()
    assert re.search(r"pending@example.org</td><td><span class=\"badge badge-pending\">", content)
    assert re.search(r"late@example.org</td><td><span class=\"badge badge-expired\">", content)


def test_an_invited_reader_sets_a_password_and_is_signed_in_with_the_reader_role(client, draft_study, coordinator):
    token = invite(draft_study, coordinator)
    form = client.get(f"/invite/{token}/")
    assert form.status_code == 200 and "new.reader@example.org" in form.content.decode()

    mismatch = client.post(f"/invite/{token}/", {"password": "a-long-passphrase-7", "password_again": "other"})
    assert mismatch.status_code == 400 and "the two passwords differ" in mismatch.content.decode()

    response = client.post(
        f"/invite/{token}/",
        {"password": "a-long-passphrase-7", "password_again": "a-long-passphrase-7",
         "years_experience": "12", "specialty": "thoracic radiology", "is_radiologist": "yes"},
    )
    assert response.status_code == 302 and response["Location"] == "/"
    reader = User.objects.get(username="new.reader@example.org")
    assert reader.check_password("a-long-passphrase-7")
    assert StudyRole.objects.filter(study=draft_study, user=reader, role="reader").exists()
    profile = ReaderProfile.objects.get(user=reader)
    assert (profile.years_experience, profile.specialty, profile.is_radiologist) == (12, "thoracic radiology", True)
    assert int(client.session["_auth_user_id"]) == reader.pk
    home = client.get("/", follow=True)  # the home page may send a reader on to their reading page
    assert home.status_code == 200 and "You are a reader in" in home.content.decode()


def test_a_weak_password_is_refused_on_the_invitation_page(client, draft_study, coordinator):
    token = invite(draft_study, coordinator)
    response = client.post(f"/invite/{token}/", {"password": "123", "password_again": "123"})
    assert response.status_code == 400 and "too short" in response.content.decode()
    assert not User.objects.filter(username="new.reader@example.org").exists()


def test_a_signed_in_user_accepts_an_invitation_with_one_click(client, draft_study, coordinator, reader_b):
    token = invite(draft_study, coordinator, "reader_b@example.org")
    client.force_login(reader_b)
    form = client.get(f"/invite/{token}/").content.decode()
    assert "Accept the invitation" in form and 'name="password"' not in form
    assert client.post(f"/invite/{token}/").status_code == 302
    assert StudyRole.objects.filter(study=draft_study, user=reader_b, role="reader").exists()


def test_a_used_invitation_link_says_it_was_used(client, draft_study, coordinator, reader_b):
    token = invite(draft_study, coordinator)
    services.invitation_accept(token=token, acting_user=reader_b)
    response = client.get(f"/invite/{token}/")
    assert response.status_code == 410 and "already used" in response.content.decode()
    posted = client.post(f"/invite/{token}/", {"password": "a-long-passphrase-7", "password_again": "a-long-passphrase-7"})
    assert posted.status_code == 410
    assert not User.objects.filter(username="new.reader@example.org").exists()


def test_an_expired_invitation_link_says_it_expired(client, draft_study, coordinator):
    token = invite(draft_study, coordinator)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    response = client.get(f"/invite/{token}/")
    assert response.status_code == 410 and "has expired" in response.content.decode()


def test_an_unknown_invitation_link_says_it_is_not_valid(client, db):
    response = client.get("/invite/made-up-token/")
    assert response.status_code == 410 and "not valid" in response.content.decode()
