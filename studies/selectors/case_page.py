"""The coordinator's case page: splits, chosen cases and the cases still available."""

from __future__ import annotations

from django.db.models import Count

from explain.models import Prediction
from library.models import Case, CaseLabel
from studies.models import (
    Study,
    StudyCase,
)
from studies.selectors.truth import case_ai_correctness

AVAILABLE_CASES_SHOWN = 200


def study_case_splits(*, study: Study) -> list[dict]:
    """The splits of the study's collections with their case counts, by name ("" = no split)."""
    rows = (
        Case.objects.filter(collection__in=study.collections.all())
        .values("split")
        .annotate(cases=Count("id"))
        .order_by("split")
    )
    return [{"split": row["split"], "cases": row["cases"]} for row in rows]


def _case_facts(*, study: Study, cases: list) -> list[dict]:
    """Key, split, ground truth and the AI's prediction and correctness of these cases (what a
    coordinator choosing cases needs; it says nothing about arms)."""
    ids = [case.pk for case in cases]
    labels: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=ids).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    predictions = (
        {p.case_id: p for p in Prediction.objects.filter(model=study.model, case_id__in=ids)}
        if study.model_id
        else {}
    )
    correctness = case_ai_correctness(model=study.model, case_ids=ids) if study.model_id else {}
    rows = []
    for case in cases:
        found = sorted(
            name for name, value in labels[case.pk].items() if value == CaseLabel.POSITIVE
        )
        uncertain = sorted(
            name for name, value in labels[case.pk].items() if value == CaseLabel.UNCERTAIN
        )
        prediction = predictions.get(case.pk)
        rows.append(
            {
                "case_id": case.pk,
                "key": case.key,
                "split": case.split,
                "truth": ", ".join(found)
                + (f" (uncertain: {', '.join(uncertain)})" if uncertain else ""),
                "prediction": prediction.predicted_class if prediction else "",
                "probability": prediction.positive_probability if prediction else None,
                "ai_correct": correctness.get(case.pk),
            }
        )
    return rows


def study_case_rows(*, study: Study) -> list[dict]:
    """The chosen cases, by role then key, each with its facts (`_case_facts`) and `role`."""
    chosen = list(study.study_cases.select_related("case"))
    order = {role: index for index, role in enumerate(StudyCase.Role.values)}
    chosen.sort(key=lambda sc: (order[sc.role], sc.case.key))
    roles = {sc.case_id: sc.role for sc in chosen}
    rows = _case_facts(study=study, cases=[sc.case for sc in chosen])
    for row in rows:
        row["role"] = roles[row["case_id"]]
        row["role_label"] = StudyCase.Role(row["role"]).label
    return rows


def study_available_cases(
    *, study: Study, split: str | None = None, limit: int = AVAILABLE_CASES_SHOWN
) -> dict:
    """Cases of the study's collections not chosen yet (optionally of one split), by key: at most
    `limit` rows with their facts, and how many there are in all."""
    cases = Case.objects.filter(collection__in=study.collections.all()).exclude(
        pk__in=study.study_cases.values("case_id")
    )
    if split is not None:
        cases = cases.filter(split=split)
    total = cases.count()
    shown = list(cases.order_by("key", "pk")[:limit])
    return {"rows": _case_facts(study=study, cases=shown), "total": total, "shown": len(shown)}
