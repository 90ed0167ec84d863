"""Opening, freezing and closing a study; enrollment with frozen schedules; the audited reveal."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import ServiceError
from core.models import AuditEntry
from explain.models import Explanation
from studies import randomization, selectors, services
from studies.models import Enrollment, ReadingSession, Study, Trial


def _actions(study: Study) -> list[str]:
    return list(
        AuditEntry.objects.filter(object_type="studies.study", object_id=str(study.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_a_study_whose_explanations_are_missing_cannot_open(coordinator, draft_study):
    with pytest.raises(ServiceError) as caught:
        services.study_open(acting_user=coordinator, study=draft_study)
    problems = caught.value.problems
    assert any("arm B: 12 of 12 cases have no precomputed prediction" in p for p in problems)
    assert any("arm C: 12 of 12 cases have no precomputed explanation" in p for p in problems)
    assert any(p.startswith("arm D") and "explanation" in p for p in problems)
    assert not any(p.startswith("arm A") for p in problems)  # unaided needs nothing
    draft_study.refresh_from_db()
    assert draft_study.status == Study.Status.DRAFT


def test_a_placebo_arm_needs_the_placebo_explanations_not_the_real_ones(coordinator, ready_study, study_model):
    Explanation.objects.filter(model=study_model, placebo=True).first().delete()
    problems = selectors.study_problems(study=ready_study)
    assert problems == ["arm D: 1 of 12 cases have no precomputed explanation yet (run the precompute for this model and collection)"]


def test_an_empty_study_lists_every_problem(coordinator):
    study = services.study_create(acting_user=coordinator, title="Empty")
    problems = selectors.study_problems(study=study)
    text = "\n".join(problems)
    for fragment in ("consent text", "choose the model", "collection", "no arms", "no questions", "no main cases"):
        assert fragment in text


def test_washout_with_a_single_session_is_a_problem(coordinator, ready_study):
    services.study_update(acting_user=coordinator, study=ready_study, design="fully_crossed", sessions=4, washout_days=14)
    assert selectors.study_problems(study=ready_study) == []
    for arm in ready_study.arms.exclude(code="A"):
        services.arm_remove(acting_user=coordinator, arm=arm)
    problems = selectors.study_problems(study=ready_study)
    assert any("washout" in p.lower() for p in problems), problems


def test_fully_crossed_sessions_must_be_a_multiple_of_the_arms(coordinator, ready_study):
    services.study_update(acting_user=coordinator, study=ready_study, design="fully_crossed", sessions=3)
    problems = selectors.study_problems(study=ready_study)
    assert any("multiple" in p for p in problems), problems


def test_a_likert_item_for_explanations_needs_an_arm_that_shows_one(coordinator, ready_study):
    for arm in ready_study.arms.filter(code__in=["C", "D"]):
        services.arm_remove(acting_user=coordinator, arm=arm)
    problems = selectors.study_problems(study=ready_study)
    assert any("question clarity applies to arms that show an explanation, but no arm does" in p for p in problems)


def test_the_minimum_share_of_ai_wrong_cases_is_checked(coordinator, ready_study):
    services.study_update(acting_user=coordinator, study=ready_study, min_ai_wrong_share=0.5)
    problems = selectors.study_problems(study=ready_study)
    assert any("the AI is wrong on 3 of 12" in p and "below the required 50%" in p for p in problems), problems


def test_opening_freezes_the_configuration(coordinator, open_study):
    assert open_study.status == Study.Status.OPEN
    assert open_study.frozen_config["arms"][2]["explainer"] == "gradcam"
    assert open_study.frozen_config["schedule_algorithm"] == randomization.ALGORITHM_VERSION
    with pytest.raises(ServiceError, match="frozen"):
        services.study_update(acting_user=coordinator, study=open_study, title="Changed")
    with pytest.raises(ServiceError, match="frozen"):
        services.arm_add(acting_user=coordinator, study=open_study, kind="ai_explainer", explainer="occlusion")
    with pytest.raises(ServiceError, match="frozen"):
        services.question_remove(acting_user=coordinator, question=open_study.questions.first())
    with pytest.raises(ServiceError, match="frozen"):
        services.study_cases_set(acting_user=coordinator, study=open_study, main=[])


def test_opening_twice_is_refused(coordinator, open_study):
    with pytest.raises(ServiceError, match="already open"):
        services.study_open(acting_user=coordinator, study=open_study)


def test_every_lifecycle_transition_is_audited(coordinator, open_study):
    services.study_close(acting_user=coordinator, study=open_study)
    actions = _actions(open_study)
    assert actions[0] == "study.create"
    assert actions[-2:] == ["study.open", "study.close"]
    close = AuditEntry.objects.get(action="study.close")
    assert (close.before, close.after, close.actor) == ({"status": "open"}, {"status": "closed"}, coordinator)


def test_only_an_open_study_can_close(coordinator, draft_study):
    with pytest.raises(ServiceError, match="only an open study can be closed"):
        services.study_close(acting_user=coordinator, study=draft_study)


def test_readers_added_before_opening_are_enrolled_when_it_opens(coordinator, ready_study, reader_a, reader_b):
    services.study_role_add(acting_user=coordinator, study=ready_study, user=reader_a, role="reader")
    services.study_role_add(acting_user=coordinator, study=ready_study, user=reader_b, role="reader")
    assert not Enrollment.objects.exists()
    services.study_open(acting_user=coordinator, study=ready_study)
    assert list(ready_study.enrollments.values_list("reader__username", "reader_index")) == [
        ("reader_a", 0), ("reader_b", 1)
    ]


def test_a_readers_stored_schedule_is_the_one_the_seed_regenerates(coordinator, open_study, reader_a):
    services.study_role_add(acting_user=coordinator, study=open_study, user=reader_a, role="reader")
    enrollment = Enrollment.objects.get(study=open_study, reader=reader_a)
    regenerated = randomization.generate_schedule(
        design=open_study.design,
        cases=list(open_study.study_cases.values_list("case_id", flat=True)),
        arms=["A", "B", "C", "D"],
        seed=open_study.seed,
        reader_index=enrollment.reader_index,
        sessions=open_study.sessions,
        strata=selectors.study_strata(
            study=open_study, case_ids=open_study.study_cases.values_list("case_id", flat=True)
        ),
    )
    assert enrollment.schedule == regenerated.to_dict()
    stored = [
        (t.session.index, t.position, t.case_id, t.arm.code, t.kind)
        for t in Trial.objects.filter(session__enrollment=enrollment).select_related("session", "arm")
        .order_by("session__index", "position")
    ]
    planned = [(s.index, t.position, t.case, t.arm, t.kind) for s in regenerated.sessions for t in s.trials]
    assert stored == planned


def test_latin_square_readers_see_every_arm_nearly_equally(coordinator, open_study, reader_a, reader_b):
    for reader in (reader_a, reader_b):
        services.study_role_add(acting_user=coordinator, study=open_study, user=reader, role="reader")
    for enrollment in open_study.enrollments.all():
        counts = Counter(Trial.objects.filter(session__enrollment=enrollment).values_list("arm__code", flat=True))
        assert sorted(counts) == ["A", "B", "C", "D"]
        assert max(counts.values()) - min(counts.values()) <= 1
        assert sum(counts.values()) == 12


def test_enrolling_twice_keeps_the_first_schedule(coordinator, open_study, reader_a):
    first = services.reader_enroll(acting_user=coordinator, study=open_study, reader=reader_a)
    again = services.reader_enroll(acting_user=coordinator, study=open_study, reader=reader_a)
    assert first.pk == again.pk
    assert Trial.objects.filter(session__enrollment=first).count() == 12


def test_readers_cannot_be_enrolled_in_a_draft_or_closed_study(coordinator, draft_study, reader_a):
    with pytest.raises(ServiceError, match="when the study opens"):
        services.reader_enroll(acting_user=coordinator, study=draft_study, reader=reader_a)


def test_an_enrolled_reader_cannot_be_removed(coordinator, open_study, reader_a):
    services.study_role_add(acting_user=coordinator, study=open_study, user=reader_a, role="reader")
    with pytest.raises(ServiceError, match="frozen schedule"):
        services.study_role_remove(acting_user=coordinator, study=open_study, user=reader_a, role="reader")


def test_the_statistician_can_reveal_the_arms_and_the_reveal_is_audited(coordinator, open_study, statistician):
    services.study_role_add(acting_user=coordinator, study=open_study, user=statistician, role="statistician")
    arms = services.study_arms_reveal(acting_user=statistician, study=open_study)
    assert [(a["code"], a["explainer"]) for a in arms] == [("A", ""), ("B", ""), ("C", "gradcam"), ("D", "gradcam")]
    entry = AuditEntry.objects.get(action="study.arms_reveal")
    assert entry.actor == statistician


def test_a_coordinator_cannot_reveal_the_arms(coordinator, open_study):
    with pytest.raises(PermissionError):
        services.study_arms_reveal(acting_user=coordinator, study=open_study)
    assert not AuditEntry.objects.filter(action="study.arms_reveal").exists()


def test_coordinators_see_arm_conditions_only_while_drafting(draft_study, coordinator):
    arm = draft_study.arms.get(code="C")
    assert "gradcam" in selectors.arm_condition(arm=arm, study=draft_study)
    draft_study.status = Study.Status.OPEN
    assert "gradcam" not in selectors.arm_condition(arm=arm, study=draft_study)
    placebo = draft_study.arms.get(code="D")
    assert selectors.arm_condition(arm=placebo, study=draft_study) == selectors.arm_condition(arm=arm, study=draft_study)


def test_ai_wrong_trials_are_counted_per_arm(coordinator, open_study, reader_a, reader_b):
    for reader in (reader_a, reader_b):
        services.study_role_add(acting_user=coordinator, study=open_study, user=reader, role="reader")
    summary = selectors.study_ai_wrong(study=open_study)
    assert summary["ai_wrong_cases"] == 3
    assert sum(row["ai_wrong_trials"] for row in summary["per_arm"]) == 6  # 2 readers x 3 cases
    assert sum(row["trials"] for row in summary["per_arm"]) == 24
    # AI-wrong cases are a stratum: each reader sees them spread over the arms
    assert max(row["ai_wrong_trials"] for row in summary["per_arm"]) <= 2


def test_sessions_unlock_after_the_previous_one_and_the_washout(coordinator, ready_study, reader_a):
    services.study_update(acting_user=coordinator, study=ready_study, design="fully_crossed", sessions=4, washout_days=7)
    services.study_open(acting_user=coordinator, study=ready_study)
    enrollment = services.reader_enroll(acting_user=coordinator, study=ready_study, reader=reader_a)
    rows = selectors.enrollment_sessions(enrollment=enrollment)
    assert [r["unlocked"] for r in rows] == [True, False, False, False]
    first = ReadingSession.objects.get(enrollment=enrollment, index=0)
    first.completed_at = timezone.now() - timedelta(days=3)
    first.save()
    rows = selectors.enrollment_sessions(enrollment=enrollment)
    assert rows[1]["unlocked"] is False
    assert rows[1]["unlocks_at"] == first.completed_at + timedelta(days=7)
    first.completed_at = timezone.now() - timedelta(days=8)
    first.save()
    assert selectors.enrollment_sessions(enrollment=enrollment)[1]["unlocked"] is True


def test_progress_counts_done_trials_per_reader(coordinator, open_study, reader_a):
    services.study_role_add(acting_user=coordinator, study=open_study, user=reader_a, role="reader")
    trials = Trial.objects.filter(session__enrollment__reader=reader_a).order_by("session__index", "position")
    Trial.objects.filter(pk__in=[t.pk for t in trials[:5]]).update(completed_at=timezone.now())
    (row,) = selectors.study_progress(study=open_study)
    assert (row["reader"], row["trials_done"], row["trials_total"]) == ("reader_a", 5, 12)
    assert row["sessions_total"] == 2 and row["sessions_unlocked"] == 1


def test_strata_combine_ground_truth_and_the_ais_correctness(open_study):
    strata = selectors.study_strata(study=open_study, case_ids=open_study.study_cases.values_list("case_id", flat=True))
    assert set(strata.values()) == {"positive/ai_right", "negative/ai_right", "positive/ai_wrong", "negative/ai_wrong"}


def test_each_reader_reads_positive_and_negative_cases_under_every_arm(coordinator, open_study, reader_a, reader_b):
    for reader in (reader_a, reader_b):
        services.study_role_add(acting_user=coordinator, study=open_study, user=reader, role="reader")
    for trial_arm, labels in _truth_by_arm(open_study).items():
        assert labels == {True, False}, trial_arm


def _truth_by_arm(study):
    found: dict[tuple[int, str], set] = {}
    for trial in Trial.objects.filter(session__enrollment__study=study).select_related("arm", "session__enrollment"):
        positive = trial.case.labels.filter(name="nodule", value=1).exists()
        found.setdefault((trial.session.enrollment.reader_index, trial.arm.code), set()).add(positive)
    return found
