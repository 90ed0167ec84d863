"""REST endpoints of the studies app (mounted under /api/v1/).

A study exists, for a user, only if `selectors.study_can_view` says so (its coordinators, its
statistician, site admins): everyone else gets the same 404 as for a study that does not
exist. Writes need `selectors.study_can_manage` (403 otherwise). Arms are shown blinded (see
`studies.serializers`); only the statistician's audited reveal names the explainers.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import bad_request_response
from core.permissions import IsCoordinator
from studies import selectors, services
from studies.models import Study
from studies.serializers import (
    ArmAddSerializer,
    ArmSerializer,
    ArmUpdateSerializer,
    CaseCountsSerializer,
    CaseIdsSerializer,
    CasesAddSerializer,
    CaseSelectSerializer,
    CasesExcludeSerializer,
    DetailSerializer,
    QuestionAddSerializer,
    QuestionMoveSerializer,
    QuestionSerializer,
    QuestionUpdateSerializer,
    ReadinessSerializer,
    RevealedArmSerializer,
    StudyCreateSerializer,
    StudyDetailSerializer,
    StudyListSerializer,
    StudyUpdateSerializer,
)

STUDYNOT_FOUND = "no such study"

# Error answers every study endpoint can give, for the schema.
NOT_FOUND = {404: OpenApiResponse(DetailSerializer, description="no such study (or not yours)")}
READ_ERRORS = {403: DetailSerializer, **NOT_FOUND}
WRITE_ERRORS = {
    400: bad_request_response("bad input or a frozen configuration"),
    403: OpenApiResponse(DetailSerializer, description="not a coordinator of this study"),
    **NOT_FOUND,
}


def study_for_request(request, study_id: int, *, manage: bool = False) -> Study:
    """The study, if the user may see it (404 otherwise, as if it did not exist); with
    `manage`, also if they may change it (403 otherwise)."""
    study = Study.objects.select_related("model").filter(pk=study_id).first()
    if study is None or not selectors.study_can_view(study=study, user=request.user):
        raise NotFound(STUDYNOT_FOUND)
    if manage and not selectors.study_can_manage(study=study, user=request.user):
        raise PermissionDenied("only the study's coordinators can change it")
    return study


def _detail(request, study: Study, *, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(
        StudyDetailSerializer(study, context={"request": request}).data, status=status_code
    )


def valid_payload(serializer_class, request, **kwargs) -> dict:
    payload = serializer_class(data=request.data, **kwargs)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)


class IsStudyCreator(IsCoordinator):
    message = "only coordinators can create studies"


class StudyApi(APIView):
    """The studies API takes JSON bodies only."""

    parser_classes = [JSONParser]


# Studies ------------------------------------------------------------------------------------


class StudyListApi(StudyApi):
    def get_permissions(self):
        return [IsStudyCreator()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        summary="Studies you coordinate (site admins: every study)",
        responses=StudyListSerializer(many=True),
    )
    def get(self, request):
        studies = selectors.study_list_for_user(user=request.user)
        return Response(StudyListSerializer(studies, many=True).data)

    @extend_schema(
        summary="Create a draft study (you become its coordinator)",
        request=StudyCreateSerializer,
        responses={201: StudyDetailSerializer, 400: bad_request_response(), 403: DetailSerializer},
    )
    def post(self, request):
        data = valid_payload(StudyCreateSerializer, request)
        study = services.study_create(acting_user=request.user, **data)
        return _detail(request, study, status_code=status.HTTP_201_CREATED)


class StudyDetailApi(StudyApi):
    @extend_schema(
        summary="A study: configuration, blinded arms, questions, case counts, problems",
        responses={200: StudyDetailSerializer, **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return _detail(request, study_for_request(request, study_id))

    @extend_schema(
        summary="Change a draft study (model by id, collections by ids)",
        request=StudyUpdateSerializer,
        responses={200: StudyDetailSerializer, **WRITE_ERRORS},
    )
    def patch(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(StudyUpdateSerializer, request)
        study = services.study_update(acting_user=request.user, study=study, **data)
        return _detail(request, study)


class StudyReadinessApi(StudyApi):
    @extend_schema(
        summary="What stops the study from opening, warnings, empty explanations, per-arm outputs,"
        " AI-wrong cases",
        responses={200: ReadinessSerializer, **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = study_for_request(request, study_id)
        draft = study.status == Study.Status.DRAFT
        return Response(
            {
                "problems": selectors.study_problems(study=study) if draft else [],
                "warnings": selectors.study_warnings(study=study) if draft else [],
                "empty_explanations": selectors.study_empty_explanation_rows(study=study),
                "arms": selectors.arm_readiness(study=study),
                "ai_wrong": selectors.study_ai_wrong(study=study),
            }
        )


class StudyOpenApi(StudyApi):
    @extend_schema(
        summary="Open a valid draft: freeze its configuration, enroll its readers",
        request=None,
        responses={200: StudyDetailSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        study = services.study_open(acting_user=request.user, study=study)
        return _detail(request, study)


class StudyCloseApi(StudyApi):
    @extend_schema(
        summary="Close an open study (no new reads start)",
        request=None,
        responses={200: StudyDetailSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        study = services.study_close(acting_user=request.user, study=study)
        return _detail(request, study)


class StudyPrecomputeApi(StudyApi):
    @extend_schema(
        summary="Precompute what the arms show on the study's cases (existing results are reused)",
        request=None,
        responses={
            202: inline_serializer(
                "StudyPrecomputeJobs",
                {
                    "jobs": serializers.ListField(
                        child=serializers.IntegerField(),
                        help_text="precompute job ids; progress at /api/v1/precompute/{id}/",
                    )
                },
            ),
            **WRITE_ERRORS,
        },
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        jobs = services.study_precompute(acting_user=request.user, study=study)
        return Response({"jobs": [job.pk for job in jobs]}, status=202)


# Arms ---------------------------------------------------------------------------------------


class ArmListApi(StudyApi):
    @extend_schema(
        summary="The study's arms, blinded",
        responses={200: ArmSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = study_for_request(request, study_id)
        arms = study.arms.order_by("code")
        return Response(ArmSerializer(arms, many=True, context={"study": study}).data)

    @extend_schema(
        summary="Add an arm to a draft (it gets the next free code)",
        request=ArmAddSerializer,
        responses={201: ArmSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(ArmAddSerializer, request)
        arm = services.arm_add(acting_user=request.user, study=study, **data)
        return Response(
            ArmSerializer(arm, context={"study": study}).data, status=status.HTTP_201_CREATED
        )


class ArmDetailApi(StudyApi):
    @staticmethod
    def _arm(study: Study, code: str):
        arm = study.arms.filter(code=code).first()
        if arm is None:
            raise NotFound(f"the study has no arm {code!r}")
        return arm

    @extend_schema(
        summary="Change whether a draft's arm shows readers the cases' clinical history",
        request=ArmUpdateSerializer,
        responses={200: ArmSerializer, **WRITE_ERRORS},
    )
    def patch(self, request, study_id: int, code: str):
        study = study_for_request(request, study_id, manage=True)
        arm = self._arm(study, code)
        data = valid_payload(ArmUpdateSerializer, request)
        arm = services.arm_update(acting_user=request.user, arm=arm, **data)
        return Response(ArmSerializer(arm, context={"study": study}).data)

    @extend_schema(summary="Remove an arm from a draft", responses={204: None, **WRITE_ERRORS})
    def delete(self, request, study_id: int, code: str):
        study = study_for_request(request, study_id, manage=True)
        services.arm_remove(acting_user=request.user, arm=self._arm(study, code))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ArmRevealApi(StudyApi):
    @extend_schema(
        summary="Statistician only: what each arm is (every reveal is audited)",
        request=None,
        responses={200: RevealedArmSerializer(many=True), **READ_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id)
        try:
            arms = services.study_arms_reveal(acting_user=request.user, study=study)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(arms)


# Questions ----------------------------------------------------------------------------------


def _question(study: Study, key: str):
    question = study.questions.filter(key=key).first()
    if question is None:
        raise NotFound(f"the study has no question {key!r}")
    return question


class QuestionListApi(StudyApi):
    @extend_schema(
        summary="The study's questions, in order",
        responses={200: QuestionSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = study_for_request(request, study_id)
        return Response(QuestionSerializer(study.questions.all(), many=True).data)

    @extend_schema(
        summary="Add a question to a draft",
        request=QuestionAddSerializer,
        responses={201: QuestionSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(QuestionAddSerializer, request)
        question = services.question_add(acting_user=request.user, study=study, **data)
        return Response(QuestionSerializer(question).data, status=status.HTTP_201_CREATED)


class QuestionDetailApi(StudyApi):
    @extend_schema(
        summary="Change a question of a draft",
        request=QuestionUpdateSerializer,
        responses={200: QuestionSerializer, **WRITE_ERRORS},
    )
    def patch(self, request, study_id: int, key: str):
        study = study_for_request(request, study_id, manage=True)
        question = _question(study, key)
        data = valid_payload(QuestionUpdateSerializer, request)
        question = services.question_update(acting_user=request.user, question=question, **data)
        return Response(QuestionSerializer(question).data)

    @extend_schema(summary="Remove a question from a draft", responses={204: None, **WRITE_ERRORS})
    def delete(self, request, study_id: int, key: str):
        study = study_for_request(request, study_id, manage=True)
        question = _question(study, key)
        services.question_remove(acting_user=request.user, question=question)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QuestionMoveApi(StudyApi):
    @extend_schema(
        summary="Move a question of a draft one place up or down (audited)",
        request=QuestionMoveSerializer,
        responses={200: QuestionSerializer(many=True), **WRITE_ERRORS},
    )
    def post(self, request, study_id: int, key: str):
        study = study_for_request(request, study_id, manage=True)
        question = _question(study, key)
        data = valid_payload(QuestionMoveSerializer, request)
        services.question_move(acting_user=request.user, question=question, **data)
        return Response(QuestionSerializer(study.questions.all(), many=True).data)


class QuestionDefaultsApi(StudyApi):
    @extend_schema(
        summary="Add the standard questions the study does not have yet",
        description="A diagnosis on the model's labels, a 0-100 confidence slider and the"
        " default Likert set. Answers the questions added (none when all exist).",
        request=None,
        responses={201: QuestionSerializer(many=True), **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        added = services.questions_add_defaults(acting_user=request.user, study=study)
        return Response(QuestionSerializer(added, many=True).data, status=status.HTTP_201_CREATED)


# Cases --------------------------------------------------------------------------------------


class StudyCasesApi(StudyApi):
    @extend_schema(
        summary="The study's case ids per role",
        responses={200: CaseIdsSerializer, **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = study_for_request(request, study_id)
        return Response(selectors.study_case_ids(study=study))

    @extend_schema(
        summary="Replace the case selection of a draft with these case ids",
        request=CaseIdsSerializer,
        responses={200: CaseCountsSerializer, **WRITE_ERRORS},
    )
    def put(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(CaseIdsSerializer, request)
        counts = services.study_cases_set(acting_user=request.user, study=study, **data)
        return Response(counts)


class StudyCasesSelectApi(StudyApi):
    @extend_schema(
        summary="Choose the cases of a draft from its collections, reproducibly from its seed",
        request=CaseSelectSerializer,
        responses={200: CaseCountsSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(CaseSelectSerializer, request)
        counts = services.study_cases_select(acting_user=request.user, study=study, **data)
        return Response(counts)


class StudyCasesAddApi(StudyApi):
    @extend_schema(
        summary="Add cases to a draft's selection by id or key, in one role (the rest stays)",
        request=CasesAddSerializer,
        responses={200: CaseCountsSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(CasesAddSerializer, request)
        counts = services.study_cases_add(acting_user=request.user, study=study, **data)
        return Response(counts)


class StudyCasesExcludeApi(StudyApi):
    @extend_schema(
        summary="Take cases out of a draft's selection (e.g. those with an empty explanation)",
        request=CasesExcludeSerializer,
        responses={200: CaseCountsSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(CasesExcludeSerializer, request)
        counts = services.study_cases_exclude(acting_user=request.user, study=study, **data)
        return Response(counts)
