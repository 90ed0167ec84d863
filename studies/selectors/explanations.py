"""The precomputed explanations an arm shows, and whether one highlights nothing."""

from __future__ import annotations

from django.db.models import QuerySet

from explain.compute import heatmaps
from explain.models import Explanation
from studies.models import SIMILAR_CASES, Arm


def arm_explanations(*, arm: Arm, model_id: int | None, case_ids) -> QuerySet[Explanation]:
    """The explanations of these cases that the arm shows: its explainer and parameters, real
    or placebo, computed for the study's model."""
    return Explanation.objects.filter(
        model_id=model_id,
        case_id__in=case_ids,
        explainer=arm.explainer,
        placebo=arm.kind == Arm.Kind.PLACEBO,
        param_hash=arm.param_hash,
    )


def explanation_is_empty(*, explanation: Explanation) -> bool:
    """Whether the overlay of ``explanation`` highlights (next to) nothing (heatmaps.EMPTY_RULE).
    Similar-cases explanations are never empty in this sense."""
    if explanation.explainer == SIMILAR_CASES:
        return False
    return heatmaps.is_empty(fraction=explanation.highlighted_fraction, raw_max=explanation.raw_max)
