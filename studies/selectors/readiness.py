"""Whether each arm has what it shows, empty explanations, and the AI-wrong share."""

from __future__ import annotations

from explain.models import Prediction
from studies.models import (
    Study,
    StudyCase,
    Trial,
)
from studies.selectors.configuration import arm_blinded_kind, arm_condition, study_case_ids
from studies.selectors.explanations import arm_explanations, explanation_is_empty
from studies.selectors.truth import case_ai_correctness


def arm_readiness(*, study: Study) -> list[dict]:
    """Per arm: how many of the study's cases have what the arm shows (prediction, explanation)."""
    case_ids = [pk for ids in study_case_ids(study=study).values() for pk in ids]
    total = len(case_ids)
    predicted = (
        Prediction.objects.filter(model=study.model, case_id__in=case_ids).count()
        if study.model_id
        else 0
    )
    rows = []
    for arm in study.arms.order_by("code"):
        needs = []
        if arm.shows_ai:
            needs.append(("prediction", predicted))
        if arm.shows_explanation:
            explained = arm_explanations(
                arm=arm, model_id=study.model_id, case_ids=case_ids
            ).count()
            needs.append(("explanation", explained))
        missing = {name: total - present for name, present in needs if present < total}
        rows.append(
            {
                "code": arm.code,
                "kind": arm_blinded_kind(kind=arm.kind, study=study),
                "condition": arm_condition(arm=arm, study=study),
                "cases": total,
                "ready": not missing,
                "missing": missing,
                "present": dict(needs),
            }
        )
    return rows


def study_ai_wrong(*, study: Study) -> dict:
    """How many main cases the AI gets wrong, and, once readers are enrolled, how many scheduled
    main trials per arm show a wrong AI output."""
    main = study_case_ids(study=study)[StudyCase.Role.MAIN]
    correctness = case_ai_correctness(model=study.model, case_ids=main) if study.model_id else {}
    wrong = sorted(pk for pk, ok in correctness.items() if ok is False)
    known = sum(1 for ok in correctness.values() if ok is not None)
    per_arm = []
    for arm in study.arms.order_by("code"):
        trials = Trial.objects.filter(arm=arm, kind=Trial.Kind.MAIN)
        per_arm.append(
            {
                "code": arm.code,
                "shows_ai": arm.shows_ai,
                "trials": trials.count(),
                "ai_wrong_trials": trials.filter(case_id__in=wrong).count(),
            }
        )
    return {
        "main_cases": len(main),
        "cases_with_known_correctness": known,
        "ai_wrong_cases": len(wrong),
        "ai_wrong_share": (len(wrong) / known) if known else None,
        "min_ai_wrong_share": study.min_ai_wrong_share,
        "per_arm": per_arm,
    }


def study_empty_explanations(*, study: Study) -> list[dict]:
    """Every (heatmap arm, study case) whose precomputed map is empty, in arm and case order:
    ``{"arm": code, "case_id", "case_key", "role", "highlighted_fraction"}``. Readers see a
    neutral "no region highlighted" state for these; the coordinator may exclude the cases."""
    if study.model_id is None:
        return []
    roles = dict(study.study_cases.values_list("case_id", "role"))
    rows = []
    for arm in study.arms.order_by("code"):
        if not arm.shows_heatmap:
            continue
        explanations = (
            arm_explanations(arm=arm, model_id=study.model_id, case_ids=roles)
            .select_related("case")
            .order_by("case_id")
        )
        for explanation in explanations:
            if explanation_is_empty(explanation=explanation):
                rows.append(
                    {
                        "arm": arm.code,
                        "case_id": explanation.case_id,
                        "case_key": explanation.case.key,
                        "role": roles[explanation.case_id],
                        "highlighted_fraction": explanation.highlighted_fraction,
                    }
                )
    return rows


def study_empty_explanation_rows(*, study: Study) -> list[dict]:
    """`study_empty_explanations` as the coordinator's readiness page shows them: one row per
    case (the arms listed only while the study is a draft; afterwards they could unblind)."""
    rows: dict[int, dict] = {}
    for item in study_empty_explanations(study=study):
        row = rows.setdefault(
            item["case_id"],
            {
                "case_id": item["case_id"],
                "case_key": item["case_key"],
                "role": item["role"],
                "arms": [],
            },
        )
        row["arms"].append(item["arm"])
    if study.status != Study.Status.DRAFT:
        for row in rows.values():
            row["arms"] = []
    return list(rows.values())
