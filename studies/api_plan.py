"""REST endpoints of a study's pre-registered analysis plan and data-quality rules (mounted
under /api/v1/; see `studies.services.plan` for their shape). A draft's coordinators PUT them
(an empty object clears them); once the study opens they are frozen, and GET shows the frozen
ones with the plan's SHA-256."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiTypes, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from studies import services
from studies.api import READ_ERRORS, WRITE_ERRORS, StudyApi, study_for_request
from studies.models import Study

PlanSerializer = inline_serializer(
    "AnalysisPlanState",
    {
        "analysis_plan": serializers.JSONField(),
        "analysis_plan_sha256": serializers.CharField(allow_null=True),
        "frozen": serializers.BooleanField(),
    },
)
RulesSerializer = inline_serializer(
    "QualityRulesState",
    {"quality_rules": serializers.JSONField(), "frozen": serializers.BooleanField()},
)


def _frozen(study: Study) -> dict | None:
    return None if study.status == Study.Status.DRAFT else (study.frozen_config or {})


def _plan_state(study: Study) -> dict:
    frozen = _frozen(study)
    if frozen is None:
        return {"analysis_plan": study.analysis_plan, "analysis_plan_sha256": None, "frozen": False}
    return {
        "analysis_plan": frozen.get("analysis_plan", {}),
        "analysis_plan_sha256": frozen.get("analysis_plan_sha256"),
        "frozen": True,
    }


def _rules_state(study: Study) -> dict:
    frozen = _frozen(study)
    rules = study.quality_rules if frozen is None else frozen.get("quality_rules", {})
    return {"quality_rules": rules, "frozen": frozen is not None}


class AnalysisPlanApi(StudyApi):
    @extend_schema(
        summary="The study's pre-registered analysis plan (frozen, with its hash, once open)",
        responses={200: PlanSerializer, **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return Response(_plan_state(study_for_request(request, study_id)))

    @extend_schema(
        summary="Fix a draft's analysis plan ({} removes it)",
        request=OpenApiTypes.OBJECT,
        responses={200: PlanSerializer, **WRITE_ERRORS},
    )
    def put(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        study = services.study_analysis_plan_set(
            acting_user=request.user, study=study, plan=request.data
        )
        return Response(_plan_state(study))


class QualityRulesApi(StudyApi):
    @extend_schema(
        summary="The study's attention-check exclusion rule and fast-read threshold",
        responses={200: RulesSerializer, **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return Response(_rules_state(study_for_request(request, study_id)))

    @extend_schema(
        summary="Fix a draft's data-quality rules ({} removes them)",
        request=OpenApiTypes.OBJECT,
        responses={200: RulesSerializer, **WRITE_ERRORS},
    )
    def put(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        study = services.study_quality_rules_set(
            acting_user=request.user, study=study, rules=request.data
        )
        return Response(_rules_state(study))
