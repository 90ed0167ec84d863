"""Asking the explanation engine for exactly what a study's arms show on the study's cases."""

from __future__ import annotations

from django.db import transaction

from core import audit
from core.errors import ServiceError
from explain import services as explain_services
from explain.models import PrecomputeJob
from library.models import Case
from studies.models import Arm, Study


def study_precompute(
    *, acting_user, study: Study, with_metrics: bool = False
) -> list[PrecomputeJob]:
    """Start one precompute job per collection the study's cases come from, for the predictions
    and the explanations (real and placebo) its arms need. Results that exist are skipped, so this
    is safe to repeat. With no broker configured the jobs run before this returns.

    Each job is audited by the engine; the study's own trail records that its precompute
    started and which jobs it made (job ids only: the explainers would unblind the arms)."""
    if study.status != Study.Status.DRAFT:
        raise ServiceError(
            f"study '{study.title}' is {study.status}; its outputs were checked when it opened"
        )
    if study.model_id is None:
        raise ServiceError("choose the study's model first")
    arms = list(study.arms.all())
    if not any(arm.shows_ai for arm in arms):
        raise ServiceError("no arm shows the AI's output; there is nothing to precompute")
    explainers, placebo = [], []
    for arm in arms:
        if arm.shows_explanation:
            entry = {"explainer": arm.explainer, "params": arm.params, "seed": arm.seed}
            (placebo if arm.kind == Arm.Kind.PLACEBO else explainers).append(entry)
    case_ids = list(study.study_cases.values_list("case_id", flat=True))
    if not case_ids:
        raise ServiceError("choose the study's cases first")
    jobs = []
    collections = (
        Case.objects.filter(pk__in=case_ids).values_list("collection", flat=True).distinct()
    )
    for collection in study.collections.filter(pk__in=collections).order_by("pk"):
        jobs.append(
            explain_services.precompute_start(
                acting_user=acting_user,
                model=study.model,
                collection=collection,
                explainers=explainers,
                placebo=placebo,
                case_ids=case_ids,
                with_metrics=with_metrics,
            )
        )
    with transaction.atomic():
        audit.record(
            acting_user=acting_user,
            action="study.precompute",
            obj=study,
            study=study,
            after={"jobs": [job.pk for job in jobs], "with_metrics": with_metrics},
        )
    return jobs
