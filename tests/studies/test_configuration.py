"""Configuring a draft study: details, arms, questions, cases, roles, and their audit trail."""

from __future__ import annotations

import pytest

from core.errors import ServiceError
from core.models import AuditEntry
from studies import services
from studies.models import Arm, Question, Study, StudyCase, StudyRole
from tests.studies.factories import add_predictions, make_collection


def _audit(action: str, study: Study):
    return AuditEntry.objects.filter(action=action, object_type="studies.study", object_id=str(study.pk))


def test_only_coordinators_can_create_studies(outsider):
    with pytest.raises(ServiceError, match="only coordinators"):
        services.study_create(acting_user=outsider, title="x")


def test_creating_a_study_makes_its_creator_coordinator_and_records_seed(coordinator):
    study = services.study_create(acting_user=coordinator, title="First")
    assert study.status == Study.Status.DRAFT
    assert StudyRole.objects.filter(study=study, user=coordinator, role="coordinator").exists()
    entry = _audit("study.create", study).get()
    assert entry.actor == coordinator
    assert entry.after["seed"] == study.seed


def test_study_fields_are_checked_with_every_problem_listed(coordinator):
    with pytest.raises(ServiceError) as caught:
        services.study_create(
            acting_user=coordinator, title=" ", design="crossover", sessions=0, washout_days=-1,
            min_ai_wrong_share=1.5,
        )
    text = " ".join(caught.value.problems)
    assert len(caught.value.problems) == 5
    for fragment in ("title", "unknown design", "sessions", "washout_days", "min_ai_wrong_share"):
        assert fragment in text


def test_update_records_only_what_changed(coordinator, draft_study):
    services.study_update(acting_user=coordinator, study=draft_study, title="Renamed", sessions=2)
    entry = _audit("study.update", draft_study).get()
    assert entry.before == {"title": "Heatmap reader study"}
    assert entry.after == {"title": "Renamed"}


def test_changing_the_consent_text_raises_its_version(coordinator, draft_study):
    version = draft_study.consent_version
    services.study_update(acting_user=coordinator, study=draft_study, consent_text="New wording.")
    draft_study.refresh_from_db()
    assert draft_study.consent_version == version + 1
    services.study_update(acting_user=coordinator, study=draft_study, consent_text="New wording.")
    draft_study.refresh_from_db()
    assert draft_study.consent_version == version + 1


def test_arms_get_consecutive_neutral_codes(draft_study):
    assert list(draft_study.arms.values_list("code", "kind")) == [
        ("A", "unaided"), ("B", "ai"), ("C", "ai_explainer"), ("D", "placebo")
    ]


def test_an_arm_stores_the_explainers_canonical_configuration(draft_study):
    arm = draft_study.arms.get(code="C")
    assert arm.explainer == "gradcam"
    assert len(arm.param_hash) == 64


def test_an_explainer_arm_without_explainer_is_refused(coordinator, draft_study):
    with pytest.raises(ServiceError, match="needs an explainer"):
        services.arm_add(acting_user=coordinator, study=draft_study, kind="ai_explainer")


def test_an_unaided_arm_with_an_explainer_is_refused(coordinator, draft_study):
    with pytest.raises(ServiceError, match="shows no explanation"):
        services.arm_add(acting_user=coordinator, study=draft_study, kind="unaided", explainer="gradcam")


def test_an_explainer_the_model_cannot_run_is_refused_with_the_reason(coordinator, draft_study):
    with pytest.raises(ServiceError, match="unknown explainer 'lime'"):
        services.arm_add(acting_user=coordinator, study=draft_study, kind="ai_explainer", explainer="lime")


def test_the_same_condition_twice_is_refused(coordinator, draft_study):
    with pytest.raises(ServiceError, match="already has an arm"):
        services.arm_add(acting_user=coordinator, study=draft_study, kind="ai_explainer", explainer="gradcam")


def test_a_removed_arms_code_is_reused(coordinator, draft_study):
    services.arm_remove(acting_user=coordinator, arm=draft_study.arms.get(code="B"))
    arm = services.arm_add(acting_user=coordinator, study=draft_study, kind="ai_explainer", explainer="occlusion")
    assert arm.code == "B"
    assert _audit("study.arm_remove", draft_study).get().before["code"] == "B"


def test_default_questions_include_the_likert_set(draft_study):
    keys = list(draft_study.questions.values_list("key", flat=True))
    assert keys == ["diagnosis", "confidence", "clarity", "usefulness", "trust", "region_agreement"]
    diagnosis = draft_study.questions.get(key="diagnosis")
    assert diagnosis.options == ["normal", "nodule"]  # the model's labels
    assert draft_study.questions.get(key="clarity").applies_to == Question.AppliesTo.EXPLANATION
    assert draft_study.questions.get(key="clarity").points == 5
    assert draft_study.questions.get(key="trust").stage == Question.Stage.FINAL


def test_adding_the_defaults_twice_adds_nothing(coordinator, draft_study):
    assert services.questions_add_defaults(acting_user=coordinator, study=draft_study) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kind": "diagnosis", "key": "dx2", "text": "Dx?", "options": ["only one"]}, "at least two options"),
        ({"kind": "diagnosis", "key": "dx3", "text": "Dx?", "options": ["a", "a"]}, "different"),
        ({"kind": "likert", "key": "l1", "text": "Rate", "points": 4}, "5 or 7 points"),
        ({"kind": "likert", "key": "l2", "text": "Rate", "anchors": ["low"]}, "two anchors"),
        ({"kind": "confidence", "key": "c2", "text": "Sure?", "scale": "scale10"}, "confidence scale"),
        ({"kind": "free_text", "key": "Bad Key", "text": "Comments"}, "must start with a letter"),
        ({"kind": "free_text", "key": "note", "text": ""}, "text is required"),
        ({"kind": "ranking", "key": "r", "text": "Rank"}, "unknown kind"),
        ({"kind": "free_text", "key": "diagnosis", "text": "again"}, "already has a question"),
        ({"kind": "free_text", "key": "n2", "text": "x", "options": ["a", "b"]}, "only diagnosis"),
    ],
)
def test_bad_questions_get_clear_messages(coordinator, draft_study, values, message):
    with pytest.raises(ServiceError, match=message):
        services.question_add(acting_user=coordinator, study=draft_study, **values)


def test_a_diagnosis_question_without_options_and_without_model_is_refused(coordinator):
    study = services.study_create(acting_user=coordinator, title="No model")
    with pytest.raises(ServiceError, match="at least two options"):
        services.question_add(acting_user=coordinator, study=study, kind="diagnosis", key="dx", text="Dx?")


def test_question_updates_are_checked_and_audited(coordinator, draft_study):
    question = draft_study.questions.get(key="clarity")
    services.question_update(acting_user=coordinator, question=question, points=7, anchors=["never", "always"])
    question.refresh_from_db()
    assert (question.points, question.anchors) == (7, ["never", "always"])
    entry = _audit("study.question_update", draft_study).get()
    assert entry.before["points"] == 5 and entry.after["points"] == 7
    with pytest.raises(ServiceError, match="5 or 7"):
        services.question_update(acting_user=coordinator, question=question, points=3)


def test_case_selection_is_reproducible_and_splits_roles(coordinator, draft_study):
    first = services.study_cases_select(
        acting_user=coordinator, study=draft_study, main_count=6, training_count=2, attention_count=1
    )
    chosen = sorted(draft_study.study_cases.values_list("case_id", "role"))
    second = services.study_cases_select(
        acting_user=coordinator, study=draft_study, main_count=6, training_count=2, attention_count=1
    )
    assert first == second == {"main": 6, "training": 2, "attention": 1}
    assert sorted(draft_study.study_cases.values_list("case_id", "role")) == chosen


def test_case_selection_can_be_limited_to_a_split(coordinator, draft_study, study_collection):
    study_collection.cases.filter(pk__in=list(study_collection.cases.values_list("pk", flat=True))[:4]).update(
        split="train"
    )
    counts = services.study_cases_select(acting_user=coordinator, study=draft_study, split="test")
    assert counts["main"] == 8
    assert not draft_study.study_cases.filter(case__split="train").exists()


def test_asking_for_more_cases_than_exist_is_refused(coordinator, draft_study):
    with pytest.raises(ServiceError, match="only 12 are available"):
        services.study_cases_select(acting_user=coordinator, study=draft_study, main_count=12, training_count=1)


def test_case_selection_meets_the_minimum_share_of_ai_wrong_cases(
    coordinator, draft_study, study_model, study_collection
):
    cases = list(study_collection.cases.order_by("pk"))
    add_predictions(study_model, cases, wrong={cases[1].pk, cases[5].pk, cases[9].pk})
    services.study_update(acting_user=coordinator, study=draft_study, min_ai_wrong_share=0.5)
    services.study_cases_select(acting_user=coordinator, study=draft_study, main_count=4)
    main = set(draft_study.study_cases.filter(role="main").values_list("case_id", flat=True))
    assert len(main) == 4
    assert len(main & {cases[1].pk, cases[5].pk, cases[9].pk}) >= 2


def test_cases_outside_the_studys_collections_are_refused(coordinator, draft_study):
    other = make_collection("elsewhere", cases=2)
    foreign = list(other.cases.values_list("pk", flat=True))
    with pytest.raises(ServiceError, match="not in the study's collections"):
        services.study_cases_set(acting_user=coordinator, study=draft_study, main=foreign)


def test_a_case_cannot_have_two_roles(coordinator, draft_study, study_collection):
    pk = study_collection.cases.first().pk
    with pytest.raises(ServiceError, match="only one role"):
        services.study_cases_set(acting_user=coordinator, study=draft_study, main=[pk], training=[pk])
    assert draft_study.study_cases.count() == 12  # the failed call changed nothing


def test_removing_a_collection_drops_its_cases_from_the_selection(coordinator, draft_study):
    services.study_update(acting_user=coordinator, study=draft_study, collections=[])
    assert not StudyCase.objects.filter(study=draft_study).exists()


def test_only_coordinators_can_be_given_the_coordinator_role(coordinator, draft_study, outsider):
    with pytest.raises(ServiceError, match="not a coordinator"):
        services.study_role_add(acting_user=coordinator, study=draft_study, user=outsider, role="coordinator")


def test_the_last_coordinator_cannot_be_removed(coordinator, draft_study):
    with pytest.raises(ServiceError, match="at least one coordinator"):
        services.study_role_remove(acting_user=coordinator, study=draft_study, user=coordinator, role="coordinator")


def test_role_changes_are_audited(coordinator, draft_study, statistician):
    services.study_role_add(acting_user=coordinator, study=draft_study, user=statistician, role="statistician")
    services.study_role_remove(acting_user=coordinator, study=draft_study, user=statistician, role="statistician")
    assert _audit("study.role_add", draft_study).get().after == {"user": "statistician", "role": "statistician"}
    assert _audit("study.role_remove", draft_study).exists()


def test_arm_kinds_tell_what_they_show():
    assert not Arm(kind="unaided").shows_ai
    assert Arm(kind="ai").shows_ai and not Arm(kind="ai").shows_explanation
    assert Arm(kind="placebo").shows_explanation
