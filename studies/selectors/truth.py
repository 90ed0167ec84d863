"""Ground truth and whether the AI is right, per case (for strata, readiness and feedback)."""

from __future__ import annotations

from explain.models import Prediction
from library.models import CaseLabel
from studies.models import (
    Study,
)


def case_truth(*, labels: dict[str, int], positive_class: str) -> bool | None:
    """Whether the model's positive finding is present: True/False, None when unknown
    (no labels at all, or the finding marked uncertain)."""
    if not labels:
        return None
    value = labels.get(positive_class)
    if value == CaseLabel.UNCERTAIN:
        return None
    return value == CaseLabel.POSITIVE


def case_ai_correctness(*, model, case_ids) -> dict[int, bool | None]:
    """case id -> whether the model's stored prediction matches the ground truth
    (None: no prediction yet, or the truth is unknown)."""
    case_ids = list(case_ids)
    labels: dict[int, dict[str, int]] = {pk: {} for pk in case_ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=case_ids).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    predicted = dict(
        Prediction.objects.filter(model=model, case_id__in=case_ids).values_list(
            "case_id", "predicted_class"
        )
    )
    result: dict[int, bool | None] = {}
    for pk in case_ids:
        truth = case_truth(labels=labels[pk], positive_class=model.positive_class)
        if pk not in predicted or truth is None:
            result[pk] = None
        else:
            result[pk] = (predicted[pk] == model.positive_class) == truth
    return result


def study_strata(*, study: Study, case_ids) -> dict[int, str] | None:
    """Randomization strata of main cases: ground truth x whether the AI is right, so that every
    reader reads positive and negative cases, and AI-wrong cases, under every arm."""
    if study.model_id is None:
        return None
    case_ids = list(case_ids)
    correctness = case_ai_correctness(model=study.model, case_ids=case_ids)
    labels: dict[int, dict[str, int]] = {pk: {} for pk in case_ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=case_ids).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    strata = {}
    for pk in case_ids:
        truth = case_truth(labels=labels[pk], positive_class=study.model.positive_class)
        truth_part = {True: "positive", False: "negative"}.get(truth, "unknown")
        ai_part = {True: "ai_right", False: "ai_wrong"}.get(correctness.get(pk), "ai_unknown")
        strata[pk] = f"{truth_part}/{ai_part}"
    return strata
