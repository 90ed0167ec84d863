"""A study's configuration as coordinators see it: its cases by role and the blinded view of its
arms."""

from __future__ import annotations

from studies.models import (
    Arm,
    Study,
    StudyCase,
)


def study_case_ids(*, study: Study) -> dict[str, list[int]]:
    roles: dict[str, list[int]] = {role: [] for role in StudyCase.Role.values}
    for case_id, role in study.study_cases.order_by("case_id").values_list("case_id", "role"):
        roles[role].append(case_id)
    return roles


BLINDED_KIND = "explanation"


def arm_blinded_kind(*, kind: str, study: Study) -> str:
    """The arm kind a coordinator may see: the real kind in a draft; once the study opened,
    `explanation` for both the explainer and the placebo arms."""
    if study.status != Study.Status.DRAFT and kind in (Arm.Kind.AI_EXPLAINER, Arm.Kind.PLACEBO):
        return BLINDED_KIND
    return kind


def arm_condition(*, arm: Arm, study: Study) -> str:
    """What the coordinator sees of an arm: its condition while the study is a draft (they are
    configuring it), only its kind once the configuration is frozen."""
    if study.status == Study.Status.DRAFT and arm.explainer:
        return f"{Arm.Kind(arm.kind).label}: {arm.explainer}"
    return (
        Arm.Kind(arm.kind).label
        if arm.kind in (Arm.Kind.UNAIDED, Arm.Kind.AI)
        else "AI prediction and explanation"
    )
