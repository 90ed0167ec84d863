"""Issue 14, the coordinator's side: reader-facing texts and warnings, empty explanations,
the statistician of a closed study and who may unblind, case selection that shows what it
chooses, AI-never-wrong numbers, the question form (kinds, edit, order), PRG on the people
page, the design checklist and 1-based reader numbers."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from core.models import AuditEntry
from explain.models import Explanation
from studies import services
from studies.models import Question, Study, StudyCase, StudyRole
from tests.studies.factories import add_explanations, add_predictions, make_collection, make_model

pytestmark = pytest.mark.django_db


def page(study: Study, suffix: str = "") -> str:
    return f"/studies/{study.pk}/{suffix}"


def text(response) -> str:
    return response.content.decode()


def details(study: Study, **changes) -> dict:
    values = {
        "title": study.title, "description": study.description, "reader_title": study.reader_title,
        "reader_description": study.reader_description, "instructions": study.instructions,
        "consent_text": study.consent_text, "model": study.model_id,
        "collections": list(study.collections.values_list("pk", flat=True)), "design": study.design,
        "protocol": study.protocol, "sessions": study.sessions, "washout_days": study.washout_days,
        "min_ai_wrong_share": "",
    }
    return {**values, **changes}


def never_wrong(study: Study, model, collection) -> Study:
    cases = list(collection.cases.all())
    add_predictions(model, cases)
    add_explanations(model, cases, "gradcam")
    add_explanations(model, cases, "gradcam", placebo=True)
    return study


# 1. Reader-facing title and text, warnings --------------------------------------------------


def test_the_forms_offer_reader_facing_texts_and_say_readers_see_only_them(coordinator_client, draft_study):
    for url in ("/studies/new/", page(draft_study, "edit/")):
        content = text(coordinator_client.get(url))
        assert 'name="reader_title"' in content and 'name="reader_description"' in content
        assert "Readers see only" in content and "never this" in content


def test_creating_with_a_reader_title_and_the_blinding_warning_after_saving(coordinator_client, draft_study):
    created = coordinator_client.post(
        "/studies/new/", {"title": "Protocol 7: Grad-CAM vs placebo", "reader_title": "Chest X-ray reading",
                          "reader_description": "Read chest radiographs.", "design": "latin_square",
                          "protocol": "single_stage", "sessions": 1, "washout_days": 0},
    )
    study = Study.objects.get(title="Protocol 7: Grad-CAM vs placebo")
    assert created.status_code == 302
    assert (study.reader_title, study.reader_description) == ("Chest X-ray reading", "Read chest radiographs.")

    saved = coordinator_client.post(
        page(draft_study, "edit/"),
        details(draft_study, reader_title="Lung study", reader_description="You will see Grad-CAM heatmaps."),
    )
    assert saved.status_code == 302 and saved["Location"] == page(draft_study, "edit/")
    after = text(coordinator_client.get(saved["Location"]))
    assert "Details saved." in after and 'data-testid="study-warnings"' in after
    assert "Grad-CAM" in after and "reader-facing description" in after
    draft_study.refresh_from_db()
    assert draft_study.reader_title == "Lung study"
    entry = AuditEntry.objects.filter(action="study.update").latest("pk")
    assert entry.after["reader_title"] == "Lung study"
    overview = text(coordinator_client.get(page(draft_study)))
    assert "The reader-facing description names an explainer (&#x27;Grad-CAM&#x27;)" in overview
    assert "reader-facing description" in overview and 'data-testid="open-warnings"' in overview


def test_warnings_do_not_stop_opening_and_are_recorded_with_it(coordinator_client, ready_study):
    services.study_update(acting_user=ready_study.created_by, study=ready_study, reader_title="")
    overview = text(coordinator_client.get(page(ready_study)))
    assert "no reader-facing title" in overview and "Nothing: the study is ready to open." in overview
    assert coordinator_client.post(page(ready_study, "open/"), {"confirm": "on"}).status_code == 302
    ready_study.refresh_from_db()
    assert ready_study.status == Study.Status.OPEN
    opened = AuditEntry.objects.get(action="study.open")
    assert any("no reader-facing title" in w for w in opened.after["warnings"])


def test_the_api_takes_reader_texts_and_answers_warnings(coordinator, ready_study):
    api = APIClient()
    api.force_authenticate(coordinator)
    changed = api.patch(
        f"/api/v1/studies/{ready_study.pk}/", {"reader_title": "Placebo study", "reader_description": "Plain."},
        format="json",
    )
    body = changed.json()
    assert changed.status_code == 200 and body["reader_title"] == "Placebo study"
    assert body["reader_description"] == "Plain."
    assert any("placebo" in w.lower() for w in body["warnings"])
    readiness = api.get(f"/api/v1/studies/{ready_study.pk}/readiness/").json()
    assert readiness["warnings"] == body["warnings"] and readiness["empty_explanations"] == []
    schema = api.get("/api/schema/").content.decode()
    assert "reader_title" in schema and "empty_explanations" in schema


# 2. Empty explanations on the readiness page ------------------------------------------------


def _empty_maps(study: Study, keys: list[str]) -> None:
    Explanation.objects.filter(case__key__in=keys, explainer="gradcam", placebo=False).update(
        highlighted_fraction=0.0
    )


def test_the_readiness_page_lists_empty_explanations_and_excludes_them(coordinator_client, ready_study):
    keys = ["study-cases-002", "study-cases-005"]
    _empty_maps(ready_study, keys)
    content = text(coordinator_client.get(page(ready_study, "readiness/")))
    table = content[content.index('data-testid="empty-explanations"'):]
    for key in keys:
        assert key in table
    assert "<strong>C</strong>" in table and "main (analysed)" in table
    assert "No region highlighted" in content
    ids = list(ready_study.study_cases.filter(case__key__in=keys).values_list("case_id", flat=True))

    response = coordinator_client.post(
        page(ready_study, "cases/exclude/"), {"case_ids": ids, "back": "readiness"}
    )
    assert response.status_code == 302 and response["Location"] == page(ready_study, "readiness/")
    assert not ready_study.study_cases.filter(case_id__in=ids).exists()
    assert ready_study.study_cases.count() == 10
    entry = AuditEntry.objects.filter(action="study.cases_set").latest("pk")
    assert entry.after["main"] == 10 and not set(ids) & set(entry.after["main_ids"])
    assert "highlight no region" not in text(coordinator_client.get(page(ready_study, "readiness/")))


def test_kept_empty_explanations_stay_a_warning_and_hide_their_arm_once_open(coordinator_client, ready_study):
    _empty_maps(ready_study, ["study-cases-002"])
    assert "highlight no region" in text(coordinator_client.get(page(ready_study)))
    services.study_open(acting_user=ready_study.created_by, study=ready_study)
    content = text(coordinator_client.get(page(ready_study, "readiness/")))
    table = content[content.index('data-testid="empty-explanations"'):]
    assert "study-cases-002" in table and "<strong>C</strong>" not in table.split("</table>")[0]
    assert "Exclude the ticked" not in content


def test_excluding_nothing_or_a_case_outside_the_study_says_why(coordinator_client, ready_study, study_collection):
    nothing = coordinator_client.post(page(ready_study, "cases/exclude/"), {"back": "readiness"})
    assert nothing.status_code == 400 and "tick at least one case" in text(nothing)
    bad = coordinator_client.post(page(ready_study, "cases/exclude/"), {"case_ids": ["x"]})
    assert bad.status_code == 400 and "whole numbers" in text(bad)
    outside = coordinator_client.post(page(ready_study, "cases/exclude/"), {"case_ids": [987654]})
    assert outside.status_code == 400 and "not in the study&#x27;s selection" in text(outside)


# 3. The statistician of a closed study; who may unblind -------------------------------------


def test_a_statistician_is_assigned_and_removed_on_a_closed_study(
    coordinator_client, coordinator, open_study, statistician, reader_b
):
    services.study_close(acting_user=coordinator, study=open_study)
    people = text(coordinator_client.get(page(open_study, "people/")))
    assert "Assign the statistician" in people and "Invite a reader" not in people
    assert re.search(r'<option value="statistician" selected>', people)

    added = coordinator_client.post(page(open_study, "people/"), {"user": "statistician", "role": "statistician"})
    assert added.status_code == 302
    assert StudyRole.objects.filter(study=open_study, user=statistician, role="statistician").exists()
    assert AuditEntry.objects.filter(action="study.role_add", after__role="statistician").exists()

    reader = coordinator_client.post(page(open_study, "people/"), {"user": "reader_b", "role": "reader"})
    assert reader.status_code == 400
    with pytest.raises(services.ServiceError, match="closed"):
        services.study_role_add(acting_user=coordinator, study=open_study, user=reader_b, role="reader")

    other = Client()
    other.force_login(statistician)
    revealed = other.post(page(open_study, "reveal/"))
    assert revealed.status_code == 200 and "gradcam" in text(revealed)

    removed = coordinator_client.post(page(open_study, "people/remove/"), {"user": "statistician", "role": "statistician"})
    assert removed.status_code == 302
    assert not StudyRole.objects.filter(study=open_study, role="statistician").exists()
    assert AuditEntry.objects.filter(action="study.role_remove", before__role="statistician").exists()


def test_the_reveal_refusal_is_a_clear_403_page(coordinator_client, client, open_study, site_admin):
    refused = coordinator_client.get(page(open_study, "reveal/"))
    assert refused.status_code == 403
    assert "Only the study's statistician can reveal the arms" in text(refused)
    assert "gradcam" not in text(refused).lower()

    client.force_login(site_admin)
    admin_page = client.get(page(open_study, "reveal/"))
    assert admin_page.status_code == 403 and "assign yourself the <strong>statistician</strong> role" in text(admin_page)
    assert client.post(page(open_study, "reveal/")).status_code == 403
    assert not AuditEntry.objects.filter(action="study.arms_reveal").exists()

    services.study_close(acting_user=open_study.created_by, study=open_study)
    assert client.post(page(open_study, "people/"), {"user": site_admin.username, "role": "statistician"}).status_code == 302
    revealed = client.post(page(open_study, "reveal/"))
    assert revealed.status_code == 200 and "gradcam" in text(revealed)
    assert AuditEntry.objects.get(action="study.arms_reveal").actor == site_admin


def test_a_statistician_still_cannot_be_a_reader(coordinator, open_study, reader_a):
    services.study_role_add(acting_user=coordinator, study=open_study, user=reader_a, role="reader")
    services.study_close(acting_user=coordinator, study=open_study)
    with pytest.raises(services.ServiceError, match="cannot also be one of its readers"):
        services.study_role_add(acting_user=coordinator, study=open_study, user=reader_a, role="statistician")


# 8. Case selection that shows what it chooses -----------------------------------------------


@pytest.fixture
def split_study(coordinator):
    model = make_model("split-net")
    collection = make_collection("split-cases", cases=12, split_every=3)  # 4 train, 8 test
    cases = list(collection.cases.order_by("pk"))
    add_predictions(model, cases, wrong={cases[1].pk})
    return services.study_create(
        acting_user=coordinator, title="Split study", model=model, collections=[collection], consent_text="ok"
    )


def test_the_split_is_a_select_of_the_collections_splits_with_counts(coordinator_client, split_study):
    content = text(coordinator_client.get(page(split_study, "cases/")))
    assert '<select name="split"' in content and 'name="split" maxlength' not in content
    assert re.search(r'<option value="test"[^>]*>test \(8 cases\)</option>', content)
    assert re.search(r'<option value="train"[^>]*>train \(4 cases\)</option>', content)
    assert "every split (12 cases)" in content

    chosen = coordinator_client.post(
        page(split_study, "cases/"), {"split": "test", "main_count": 4, "training_count": 0, "attention_count": 0}
    )
    assert chosen.status_code == 302
    assert set(split_study.study_cases.values_list("case__split", flat=True)) == {"test"}
    unknown = coordinator_client.post(
        page(split_study, "cases/"), {"split": "valid", "main_count": 4, "training_count": 0, "attention_count": 0}
    )
    assert unknown.status_code == 400 and "Select a valid choice" in text(unknown)


def test_the_chosen_cases_are_listed_with_role_truth_and_the_ais_correctness(coordinator_client, split_study):
    services.study_cases_select(acting_user=split_study.created_by, study=split_study, split="test", main_count=8)
    content = text(coordinator_client.get(page(split_study, "cases/")))
    listed = content[content.index('data-testid="chosen-cases"'):content.index('data-testid="pick-cases"')]
    assert listed.count('name="case_ids"') == 8
    assert "split-cases-001" in listed and "nodule" in listed and "normal" in listed
    row = re.search(r"split-cases-001</label>.*?</tr>", listed, re.S).group(0)
    assert "wrong" in row  # the AI is wrong on case 1
    assert listed.count('class="ok">right') == 7


def test_cases_are_picked_by_hand_and_by_key_and_excluded(coordinator_client, split_study):
    collection = split_study.collections.get()
    by_pk = collection.cases.get(key="split-cases-000")
    picked = coordinator_client.post(
        page(split_study, "cases/add/"),
        {"role": "main", "case_ids": [by_pk.pk], "keys": "split-cases-004, split-cases-005\nsplit-cases-007"},
    )
    assert picked.status_code == 302
    assert sorted(split_study.study_cases.values_list("case__key", flat=True)) == [
        "split-cases-000", "split-cases-004", "split-cases-005", "split-cases-007"
    ]
    training = coordinator_client.post(page(split_study, "cases/add/"), {"role": "training", "keys": "split-cases-007"})
    assert training.status_code == 302
    assert split_study.study_cases.get(case__key="split-cases-007").role == StudyCase.Role.TRAINING

    unknown = coordinator_client.post(page(split_study, "cases/add/"), {"role": "main", "keys": "nope-1"})
    assert unknown.status_code == 400 and "not in the study&#x27;s collections: nope-1" in text(unknown)
    empty = coordinator_client.post(page(split_study, "cases/add/"), {"role": "main"})
    assert empty.status_code == 400 and "pick at least one case" in text(empty)

    excluded = coordinator_client.post(page(split_study, "cases/exclude/"), {"case_ids": [by_pk.pk]})
    assert excluded.status_code == 302 and excluded["Location"] == page(split_study, "cases/")
    assert split_study.study_cases.count() == 3
    assert AuditEntry.objects.filter(action="study.cases_set").count() == 3  # add, re-role, exclude

    available = text(coordinator_client.get(page(split_study, "cases/") + "?split=train"))
    pick = available[available.index('data-testid="pick-cases"'):]
    assert "split-cases-000" in pick and "split-cases-001" not in pick  # 001 is a test case


# 9. The AI is never wrong -------------------------------------------------------------------


def test_readiness_and_opening_warn_with_numbers_when_the_ai_is_never_wrong(
    coordinator_client, draft_study, study_model, study_collection
):
    never_wrong(draft_study, study_model, study_collection)
    readiness = text(coordinator_client.get(page(draft_study, "readiness/")))
    assert "The AI is wrong on 0 of 12 main cases with known truth" in readiness
    assert 'data-testid="ai-never-wrong"' in readiness
    overview = text(coordinator_client.get(page(draft_study)))
    open_form = overview[overview.index('data-testid="open-form"'):]
    assert "The AI is wrong on 0 of 12 main cases" in open_form
    assert coordinator_client.post(page(draft_study, "open/"), {"confirm": "on"}).status_code == 302


# 10. Questions, people, checklist -----------------------------------------------------------


def test_the_question_form_marks_each_kind_specific_field_and_loads_its_script(coordinator_client, draft_study):
    content = text(coordinator_client.get(page(draft_study, "questions/")))
    assert 'data-question-kind=""' in content
    assert re.search(r'name="scale"[^>]*data-question-kinds="confidence"', content)
    assert re.search(r'name="points"[^>]*data-question-kinds="likert"', content)
    assert re.search(r'name="options"[^>]*data-question-kinds="diagnosis ordinal"', content)
    assert "js/question-form.js" in content and "<script>" not in content


def test_after_an_error_the_form_keeps_no_value_of_another_kind(coordinator_client, draft_study):
    refused = coordinator_client.post(
        page(draft_study, "questions/"),
        {"kind": "likert", "key": "ease", "text": "", "scale": "scale7", "options": "a\nb", "points": "7",
         "applies_to": "all"},
    )
    content = text(refused)
    assert refused.status_code == 400
    assert '<option value="scale7" selected>' not in content and ">a\nb</textarea>" not in content
    assert '<option value="7" selected>' in content  # the Likert item's own field is kept
    fixed = coordinator_client.post(
        page(draft_study, "questions/"),
        {"kind": "likert", "key": "ease", "text": "Easy?", "points": "7", "applies_to": "all"},
    )
    assert fixed.status_code == 302 and draft_study.questions.get(key="ease").points == 7


def test_a_question_is_edited_in_a_draft(coordinator_client, draft_study):
    question = draft_study.questions.get(key="trust")
    form = text(coordinator_client.get(page(draft_study, f"questions/{question.pk}/edit/")))
    assert "I trust the AI&#x27;s output for this case." in form and '<option value="likert" selected>' in form
    saved = coordinator_client.post(
        page(draft_study, f"questions/{question.pk}/edit/"),
        {"kind": "confidence", "key": "trust_level", "text": "How much do you trust it?", "scale": "scale5",
         "points": "7", "anchor_low": "low", "applies_to": "ai"},
    )
    assert saved.status_code == 302
    question.refresh_from_db()
    assert (question.key, question.kind, question.scale, question.points, question.anchors) == (
        "trust_level", "confidence", "scale5", None, []
    )
    assert AuditEntry.objects.filter(action="study.question_update").exists()
    bad = coordinator_client.post(
        page(draft_study, f"questions/{question.pk}/edit/"),
        {"kind": "confidence", "key": "Bad Key", "text": "x", "applies_to": "all"},
    )
    assert bad.status_code == 400 and "must start with a letter" in text(bad)


def test_questions_move_up_and_down_and_the_move_is_audited(coordinator_client, draft_study):
    keys = lambda: list(draft_study.questions.values_list("key", flat=True))  # noqa: E731
    before = keys()
    confidence = draft_study.questions.get(key="confidence")
    assert coordinator_client.post(page(draft_study, f"questions/{confidence.pk}/move/"), {"direction": "up"}).status_code == 302
    assert keys()[:2] == ["confidence", "diagnosis"]
    assert coordinator_client.post(page(draft_study, f"questions/{confidence.pk}/move/"), {"direction": "up"}).status_code == 302
    assert keys()[:2] == ["confidence", "diagnosis"]  # already first
    assert coordinator_client.post(page(draft_study, f"questions/{confidence.pk}/move/"), {"direction": "down"}).status_code == 302
    assert keys() == before
    entries = list(AuditEntry.objects.filter(action="study.question_move").order_by("pk"))
    assert len(entries) == 2  # the move that changed nothing is not recorded
    entry = entries[0]
    assert entry.before["order"] == before and entry.after["moved"] == "confidence"
    bad = coordinator_client.post(page(draft_study, f"questions/{confidence.pk}/move/"), {"direction": "sideways"})
    assert bad.status_code == 400


def test_questions_cannot_be_edited_or_moved_once_open(coordinator_client, open_study):
    question = open_study.questions.get(key="confidence")
    moved = coordinator_client.post(page(open_study, f"questions/{question.pk}/move/"), {"direction": "up"})
    assert moved.status_code == 400 and "frozen" in text(moved)
    edited = coordinator_client.post(
        page(open_study, f"questions/{question.pk}/edit/"),
        {"kind": "confidence", "key": "confidence", "text": "Changed", "applies_to": "all"},
    )
    assert edited.status_code == 400 and "frozen" in text(edited)
    assert Question.objects.get(pk=question.pk).text != "Changed"


def test_the_role_select_defaults_to_reader(coordinator_client, draft_study):
    content = text(coordinator_client.get(page(draft_study, "people/")))
    assert '<option value="reader" selected>' in content
    assert '<option value="coordinator" selected>' not in content


def test_reloading_after_an_invitation_sends_nothing_again(
    coordinator_client, draft_study, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent = coordinator_client.post(page(draft_study, "people/invite/"), {"email": "r@example.org"}, follow=True)
    assert sent.redirect_chain == [(page(draft_study, "people/"), 302)]
    assert "data-select-on-focus" in text(sent) and len(mailoutbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        reloaded = coordinator_client.get(page(draft_study, "people/"))
    assert "data-select-on-focus" not in text(reloaded) and len(mailoutbox) == 1
    assert draft_study.invitations.count() == 1


def test_the_design_step_is_done_once_chosen(coordinator_client, coordinator):
    study = services.study_create(acting_user=coordinator, title="Fresh")
    content = text(coordinator_client.get(page(study)))
    design = re.search(r'<li class="(step-\w+)">\s*<span[^>]*>.</span>\s*<a [^>]*>Design</a>', content)
    assert design.group(1) == "step-done"


def test_the_progress_table_counts_readers_from_one(coordinator_client, open_study, reader_a):
    services.study_role_add(acting_user=open_study.created_by, study=open_study, user=reader_a, role="reader")
    content = text(coordinator_client.get(page(open_study, "progress/")))
    assert re.search(r'<td class="muted">1</td>\s*<td>reader_a</td>', content)


def test_the_invitation_page_and_e_mail_name_the_reader_facing_title_only(
    client, coordinator, draft_study, mailoutbox, django_capture_on_commit_callbacks
):
    services.study_update(
        acting_user=coordinator, study=draft_study, reader_title="Chest X-ray reading",
        reader_description="Read some radiographs.", description="Internal: Grad-CAM vs placebo",
    )
    with django_capture_on_commit_callbacks(execute=True):
        _, token = services.invitation_create(acting_user=coordinator, study=draft_study, email="r@example.org")
    mail = mailoutbox[0]
    assert "Chest X-ray reading" in mail.subject + mail.body and draft_study.title not in mail.subject + mail.body
    content = text(client.get(f"/invite/{token}/"))
    assert "Chest X-ray reading" in content and "Read some radiographs." in content
    assert draft_study.title not in content and "Grad-CAM" not in content


def test_changing_a_questions_kind_drops_the_old_kinds_fields(coordinator, draft_study):
    question = draft_study.questions.get(key="trust")  # a 5-point Likert item with anchors
    services.question_update(acting_user=coordinator, question=question, kind="confidence")
    question.refresh_from_db()
    assert (question.kind, question.scale, question.points, question.anchors) == ("confidence", "slider100", None, [])
    with pytest.raises(services.ServiceError, match="only confidence questions have a scale"):
        services.question_update(acting_user=coordinator, question=question, kind="likert", scale="scale5")


def test_the_api_moves_questions_and_adds_and_excludes_cases(coordinator, split_study):
    api = APIClient()
    api.force_authenticate(coordinator)
    base = f"/api/v1/studies/{split_study.pk}/"
    added = api.post(base + "cases/add/", {"keys": ["split-cases-001", "split-cases-002"]}, format="json")
    assert added.status_code == 200 and added.json() == {"main": 2, "training": 0, "attention": 0}
    case = split_study.collections.get().cases.get(key="split-cases-003")
    training = api.post(base + "cases/add/", {"case_ids": [case.pk], "role": "training"}, format="json")
    assert training.json() == {"main": 2, "training": 1, "attention": 0}
    unknown = api.post(base + "cases/add/", {"keys": ["nope"]}, format="json")
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]
    excluded = api.post(base + "cases/exclude/", {"case_ids": [case.pk]}, format="json")
    assert excluded.json() == {"main": 2, "training": 0, "attention": 0}

    services.questions_add_defaults(acting_user=coordinator, study=split_study)
    moved = api.post(base + "questions/confidence/move/", {"direction": "up"}, format="json")
    assert moved.status_code == 200 and [q["key"] for q in moved.json()][:2] == ["confidence", "diagnosis"]
    bad = api.post(base + "questions/confidence/move/", {"direction": "left"}, format="json")
    assert bad.status_code == 400
