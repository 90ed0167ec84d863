"""Issue 14's coordinator journey in Debian's chromium: a coordinator builds a study through the
pages and meets every fix on the way.

Creates a study with a reader-facing title and text (and sees the blinding warning while that
text says "Grad-CAM"), adds arms and questions (the form shows only the chosen kind's fields; an
error, then the fix, without a stale value of another kind; a question edited and moved up),
picks cases from a split select and by hand, sees the readiness warning that the AI is never
wrong (with numbers; after excluding a case whose heatmap highlights nothing) and again on the
open confirmation, opens, invites a reader (a reload sends
nothing again), closes, and assigns a statistician to the closed study.

The study's predictions and explanations are rows made by the test factories (no model run).
Screenshots are left in var/test-artifacts/ (or $XRS_TEST_ARTIFACTS) as coordinator-journey-*.png.
"""

from __future__ import annotations

import re

import pytest

from core.models import AuditEntry
from explain.models import Explanation
from studies.models import Invitation, Study, StudyCase, StudyRole
from tests.studies.factories import add_explanations, add_predictions, make_collection, make_model

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def library(db):
    """A model and a collection of 12 cases (4 'train', 8 'test') on which the AI is never wrong,
    with Grad-CAM explanations for every case."""
    model = make_model("journey-net")
    collection = make_collection("journey-cases", cases=12, split_every=3)
    cases = list(collection.cases.order_by("pk"))
    add_predictions(model, cases)
    add_explanations(model, cases, "gradcam")
    return model, collection


class Journey:
    def __init__(self, page, base_url: str, artifacts):
        self.page, self.base_url, self.artifacts = page, base_url, artifacts

    def go(self, path: str):
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.ok, (path, response and response.status)
        return response

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"coordinator-journey-{name}.png"), full_page=True)

    def submit(self, name: str, *, within=None):
        scope = within or self.page
        with self.page.expect_navigation():
            scope.get_by_role("button", name=name).click()

    def text(self, selector: str = "main") -> str:
        return self.page.locator(selector).inner_text()


def test_a_coordinator_builds_opens_closes_and_staffs_a_study(
    live_server, coordinator, statistician, library, new_page, artifacts_dir, mailoutbox
):
    model, collection = library
    journey = Journey(new_page(user=coordinator, base_url=live_server.url), live_server.url, artifacts_dir)
    page = journey.page

    # Details: an internal and a reader-facing title; the reader text names an explainer.
    journey.go("/studies/new/")
    page.fill("#id_title", "Protocol 14: Grad-CAM versus unaided")
    page.fill("#id_reader_title", "Chest X-ray reading study")
    page.fill("#id_reader_description", "You will read chest radiographs, some with Grad-CAM heatmaps.")
    page.select_option("#id_model", label=model.name)
    page.select_option("#id_collections", label=collection.name)
    assert "Readers see only" in journey.text("main form")
    journey.submit("Create draft")
    study = Study.objects.get(title="Protocol 14: Grad-CAM versus unaided")
    warnings = page.get_by_test_id("study-warnings")
    assert "The reader-facing description names an explainer ('Grad-CAM')" in warnings.inner_text()
    design = page.locator(".checklist li", has_text="Design")
    assert "step-done" in design.get_attribute("class")  # the design was chosen when creating
    journey.shot("1-created-with-blinding-warning")

    journey.go(f"/studies/{study.pk}/edit/")
    page.fill("#id_reader_description", "You will read chest radiographs and answer a few questions.")
    page.fill("#id_consent_text", "I agree to take part.")
    journey.submit("Save")
    assert page.url.endswith(f"/studies/{study.pk}/edit/") and "Details saved." in journey.text()
    assert "names an explainer" not in journey.text()
    journey.shot("1b-details-saved")

    # Arms.
    journey.go(f"/studies/{study.pk}/arms/")
    page.select_option("#id_kind", "unaided")
    journey.submit("Add arm")
    page.select_option("#id_kind", "ai_explainer")
    page.select_option("#id_explainer", "gradcam")
    journey.submit("Add arm")
    assert list(study.arms.values_list("code", "kind")) == [("A", "unaided"), ("B", "ai_explainer")]

    # Questions: the defaults, then one of our own with kind-dependent fields.
    journey.go(f"/studies/{study.pk}/questions/")
    journey.submit("Add default questions")
    page.select_option("#id_kind", "confidence")
    assert page.locator("#id_scale").is_visible() and not page.locator("#id_points").is_visible()
    page.select_option("#id_scale", "scale7")
    page.select_option("#id_kind", "likert")  # changed their mind: the scale no longer applies
    assert not page.locator("#id_scale").is_visible() and page.locator("#id_points").is_visible()
    assert not page.locator("#id_options").is_visible()
    page.fill("#id_key", "Ease")
    page.fill("#id_text", "Reading this case was easy.")
    page.select_option("#id_points", "7")
    journey.submit("Add question")  # an upper-case key: refused, with the reason
    assert "question key 'Ease' must start with a letter" in journey.text()
    assert "scale" not in journey.text(".problems")  # the earlier scale is not held against it
    journey.shot("2-question-error")
    assert page.locator("#id_kind").input_value() == "likert"
    assert page.locator("#id_points").input_value() == "7"
    assert page.locator("#id_scale").input_value() == ""  # no stale scale from the earlier try
    page.fill("#id_key", "ease")
    journey.submit("Add question")
    ease = study.questions.get(key="ease")
    assert (ease.kind, ease.points, ease.scale) == ("likert", 7, "")

    page.get_by_role("link", name="Edit ease").click()
    page.wait_for_load_state()
    assert not page.locator("#id_scale").is_visible() and page.locator("#id_points").input_value() == "7"
    page.fill("#id_text", "This case was easy to read.")
    journey.shot("3a-question-edit")
    journey.submit("Save question")
    ease.refresh_from_db()
    assert ease.text == "This case was easy to read."
    before = list(study.questions.values_list("key", flat=True))
    journey.submit("Move ease up")
    after = list(study.questions.values_list("key", flat=True))
    assert after.index("ease") == before.index("ease") - 1
    journey.shot("3-questions")

    # Cases: the seeded selection from a split chosen in a select, then by hand.
    journey.go(f"/studies/{study.pk}/cases/")
    split_labels = page.locator("#id_split option").all_inner_texts()
    assert "test (8 cases)" in split_labels and "train (4 cases)" in split_labels
    page.select_option("#id_split", label="test (8 cases)")
    page.fill("#id_main_count", "6")
    journey.submit("Choose cases")
    chosen = page.get_by_test_id("chosen-cases")
    assert chosen.locator("tbody tr").count() == 6 and "right" in chosen.inner_text()
    page.select_option("#available-split", "train")
    journey.submit("Show")
    pick = page.get_by_test_id("pick-cases")
    pick.get_by_label("Add journey-cases-003").check()
    page.select_option("#id_role", "training")
    journey.submit("Add the picked cases", within=pick)
    assert study.study_cases.get(case__key="journey-cases-003").role == StudyCase.Role.TRAINING
    pick = page.get_by_test_id("pick-cases")
    pick.locator("#id_keys").fill("journey-cases-006")
    page.select_option("#id_role", "attention")
    journey.submit("Add the picked cases", within=pick)
    assert study.study_cases.get(case__key="journey-cases-006").role == StudyCase.Role.ATTENTION

    assert page.locator("#available-split").input_value() == "train"  # still the split shown
    journey.shot("4-cases")

    # Readiness: one Grad-CAM map highlights nothing; the coordinator excludes its case.
    empty_key = study.study_cases.filter(role=StudyCase.Role.MAIN).order_by("case__key")[0].case.key
    Explanation.objects.filter(case__key=empty_key, explainer="gradcam").update(highlighted_fraction=0.0)
    journey.go(f"/studies/{study.pk}/readiness/")
    empty = page.get_by_test_id("empty-explanations")
    assert empty_key in empty.inner_text() and "B" in empty.locator("tbody td").nth(1).inner_text()
    assert "highlight no region" in page.get_by_test_id("study-warnings").inner_text()
    journey.shot("5-readiness-empty-explanation")
    journey.submit("Exclude the ticked cases from the study", within=empty)
    assert page.url.endswith(f"/studies/{study.pk}/readiness/")
    assert not study.study_cases.filter(case__key=empty_key).exists()

    # ...and is warned, with numbers, that the AI is never wrong.
    assert "The AI is wrong on 0 of 5 main cases with known truth" in page.get_by_test_id("study-warnings").inner_text()
    assert "highlight no region" not in page.get_by_test_id("study-warnings").inner_text()
    assert page.get_by_test_id("ai-never-wrong").is_visible()
    journey.shot("6-readiness")

    # Open: the warning again on the confirmation, and opening still allowed.
    journey.go(f"/studies/{study.pk}/")
    open_form = page.get_by_test_id("open-form")
    assert "The AI is wrong on 0 of 5 main cases" in open_form.inner_text()
    journey.shot("7-open-confirmation")
    open_form.locator("#confirm-open").check()
    journey.submit("Open study")
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN

    # Invite a reader; reloading the page does not send it again.
    journey.go(f"/studies/{study.pk}/people/")
    assert page.locator("#id_role").input_value() == "reader"
    page.fill("#id_email", "new.reader@example.org")
    journey.submit("Invite")
    assert page.url.endswith(f"/studies/{study.pk}/people/")
    assert re.search(r"/invite/[\w-]+/", page.locator("input[data-select-on-focus]").input_value())
    page.reload()
    page.wait_for_load_state()
    assert Invitation.objects.filter(study=study).count() == 1 and len(mailoutbox) == 1
    assert page.locator("input[data-select-on-focus]").count() == 0  # the link was shown once

    # Close, then assign the statistician who will unblind the analysis.
    journey.go(f"/studies/{study.pk}/")
    page.locator("#confirm-close").check()
    journey.submit("Close study")
    study.refresh_from_db()
    assert study.status == Study.Status.CLOSED
    journey.go(f"/studies/{study.pk}/people/")
    page.fill("#id_user", statistician.username)
    assert page.locator("#id_role").input_value() == "statistician"
    journey.submit("Assign")
    assert StudyRole.objects.filter(study=study, user=statistician, role="statistician").exists()
    assert "statistician is now statistician (unblinded) of this study." in journey.text()
    assert AuditEntry.objects.filter(study_id=study.pk, action="study.role_add", after__role="statistician").exists()
    journey.shot("8-closed-with-statistician")

    # The coordinator's own reveal attempt is a clear 403 page.
    response = page.goto(f"{live_server.url}/studies/{study.pk}/reveal/")
    assert response.status == 403 and "Only the study's statistician can reveal the arms" in journey.text()
    journey.shot("9-reveal-refused")
