"""Whether readers see each case's clinical history is a factor of an arm: coordinators set it
when they add an arm and change it while the study is a draft (pages and API), every change is
audited, it is frozen when the study opens (a later change is a 400 that says why) and it is
recorded in the study's snapshot."""

from __future__ import annotations

import pytest

from core.errors import ServiceError
from core.models import AuditEntry
from studies import services
from studies.models import Arm
from tests.studies import api_helpers
from tests.studies.api_helpers import url

pytestmark = pytest.mark.django_db

api = api_helpers.api
FROZEN = "configuration was frozen when it opened"


def _arm(study, kind: str) -> Arm:
    return study.arms.get(kind=kind)


# Services -----------------------------------------------------------------------------------


def test_an_arm_hides_the_history_unless_it_is_asked_to_show_it(draft_study):
    assert not draft_study.arms.filter(shows_clinical_history=True).exists()


def test_the_same_condition_with_and_without_history_are_two_arms(coordinator, draft_study):
    arm = services.arm_add(
        acting_user=coordinator, study=draft_study, kind="unaided", shows_clinical_history=True
    )
    assert arm.shows_clinical_history and draft_study.arms.filter(kind="unaided").count() == 2
    entry = AuditEntry.objects.filter(action="study.arm_add").latest("pk")
    assert entry.after["shows_clinical_history"] is True
    with pytest.raises(ServiceError, match="already has an arm with this condition"):
        services.arm_add(
            acting_user=coordinator, study=draft_study, kind="unaided", shows_clinical_history=True
        )


def test_changing_it_on_a_draft_is_audited_with_before_and_after(coordinator, draft_study):
    arm = services.arm_update(
        acting_user=coordinator, arm=_arm(draft_study, "ai"), shows_clinical_history=True
    )
    assert Arm.objects.get(pk=arm.pk).shows_clinical_history
    entry = AuditEntry.objects.get(action="study.arm_update")
    assert entry.study_id == draft_study.pk
    assert entry.before["shows_clinical_history"] is False
    assert entry.after["shows_clinical_history"] is True
    assert entry.after["code"] == arm.code


def test_a_value_that_is_not_true_or_false_is_refused(coordinator, draft_study):
    with pytest.raises(ServiceError, match="true or false"):
        services.arm_update(
            acting_user=coordinator, arm=_arm(draft_study, "ai"), shows_clinical_history="yes"
        )


def test_it_is_frozen_when_the_study_opens_and_recorded_in_the_snapshot(
    coordinator, ready_study
):
    services.arm_update(
        acting_user=coordinator, arm=_arm(ready_study, "ai"), shows_clinical_history=True
    )
    study = services.study_open(acting_user=coordinator, study=ready_study)
    shown = {arm["kind"]: arm["shows_clinical_history"] for arm in study.frozen_config["arms"]}
    assert shown == {"unaided": False, "ai": True, "ai_explainer": False, "placebo": False}
    with pytest.raises(ServiceError, match=FROZEN):
        services.arm_update(
            acting_user=coordinator, arm=_arm(study, "ai"), shows_clinical_history=False
        )
    assert _arm(study, "ai").shows_clinical_history


# Pages --------------------------------------------------------------------------------------


def test_a_coordinator_adds_an_arm_that_shows_the_history_on_the_arms_page(
    coordinator_client, draft_study
):
    page = coordinator_client.get(f"/studies/{draft_study.pk}/arms/")
    assert b"Show clinical history" in page.content
    response = coordinator_client.post(
        f"/studies/{draft_study.pk}/arms/", {"kind": "ai", "shows_clinical_history": "on"}
    )
    assert response.status_code == 302
    assert draft_study.arms.filter(kind="ai", shows_clinical_history=True).exists()


def test_a_coordinator_shows_and_hides_the_history_of_an_arm_on_the_arms_page(
    coordinator_client, draft_study
):
    arm = _arm(draft_study, "unaided")
    toggle = f"/studies/{draft_study.pk}/arms/{arm.pk}/clinical-history/"
    assert coordinator_client.post(toggle, {"shows_clinical_history": "on"}).status_code == 302
    assert Arm.objects.get(pk=arm.pk).shows_clinical_history
    page = coordinator_client.get(f"/studies/{draft_study.pk}/arms/")
    assert b"Hide clinical history" in page.content
    assert coordinator_client.post(toggle, {}).status_code == 302
    assert not Arm.objects.get(pk=arm.pk).shows_clinical_history


def test_the_arms_page_refuses_a_change_once_the_study_opened(coordinator_client, open_study):
    arm = _arm(open_study, "unaided")
    response = coordinator_client.post(
        f"/studies/{open_study.pk}/arms/{arm.pk}/clinical-history/",
        {"shows_clinical_history": "on"},
    )
    assert response.status_code == 400 and FROZEN in response.content.decode()
    assert not Arm.objects.get(pk=arm.pk).shows_clinical_history


def test_the_statistician_may_not_change_it(client, draft_study, coordinator, statistician):
    services.study_role_add(
        acting_user=coordinator, study=draft_study, user=statistician, role="statistician"
    )
    client.force_login(statistician)
    arm = _arm(draft_study, "unaided")
    response = client.post(
        f"/studies/{draft_study.pk}/arms/{arm.pk}/clinical-history/",
        {"shows_clinical_history": "on"},
    )
    assert response.status_code == 403
    assert not Arm.objects.get(pk=arm.pk).shows_clinical_history


# API ----------------------------------------------------------------------------------------


def test_the_api_adds_lists_and_changes_it(api, draft_study):
    added = api.post(
        url(draft_study, "arms/"), {"kind": "ai", "shows_clinical_history": True}, format="json"
    )
    assert added.status_code == 201 and added.json()["shows_clinical_history"] is True
    code = added.json()["code"]
    listed = {a["code"]: a["shows_clinical_history"] for a in api.get(url(draft_study, "arms/")).json()}
    assert listed[code] is True and list(listed.values()).count(True) == 1
    unaided = _arm(draft_study, "unaided").code
    changed = api.patch(
        url(draft_study, f"arms/{unaided}/"), {"shows_clinical_history": True}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["shows_clinical_history"] is True
    same_as_new = api.patch(  # the AI arm without history would become the one just added
        url(draft_study, f"arms/{_arm_code(draft_study, 'ai', False)}/"),
        {"shows_clinical_history": True},
        format="json",
    )
    assert same_as_new.status_code == 400
    assert "already has an arm with this condition" in same_as_new.json()["detail"]


def _arm_code(study, kind: str, shows: bool) -> str:
    return study.arms.get(kind=kind, shows_clinical_history=shows).code


@pytest.mark.parametrize(
    "body", [{}, {"shows_clinical_history": "maybe"}, {"shows_clinical_history": True, "kind": "ai"}]
)
def test_the_api_refuses_a_bad_change_with_a_400(api, draft_study, body):
    code = _arm(draft_study, "ai").code
    response = api.patch(url(draft_study, f"arms/{code}/"), body, format="json")
    assert response.status_code == 400
    assert not _arm(draft_study, "ai").shows_clinical_history


def test_the_api_refuses_a_change_once_the_study_opened_and_says_why(api, open_study):
    code = _arm(open_study, "ai").code
    response = api.patch(
        url(open_study, f"arms/{code}/"), {"shows_clinical_history": True}, format="json"
    )
    assert response.status_code == 400 and FROZEN in response.json()["detail"]
    added = api.post(
        url(open_study, "arms/"), {"kind": "ai", "shows_clinical_history": True}, format="json"
    )
    assert added.status_code == 400 and FROZEN in added.json()["detail"]


def test_an_unknown_arm_is_a_404(api, draft_study):
    response = api.patch(url(draft_study, "arms/ZZ/"), {"shows_clinical_history": True}, format="json")
    assert response.status_code == 404


def test_opening_warns_when_an_arm_shows_history_that_cases_lack(coordinator):
    from studies.selectors.checklist import study_warnings
    from tests.studies.factories import make_collection, make_model

    collection = make_collection("history-warning", cases=3)
    study = services.study_create(acting_user=coordinator, title="Warned", model=make_model(),
                                  collections=[collection], consent_text="I agree.")
    services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    assert not any("clinical history" in w for w in study_warnings(study=study))
    services.study_cases_set(acting_user=coordinator, study=study,
                             main=list(collection.cases.values_list("pk", flat=True)))
    services.arm_add(acting_user=coordinator, study=study, kind="unaided",
                     shows_clinical_history=True)
    (warning,) = [w for w in study_warnings(study=study) if "clinical history" in w]
    assert warning.startswith("3 case(s) have no clinical history, but an arm shows it")
