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
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import bad_request_response
from core.errors import ServiceError
from core.permissions import IsCoordinator
from studies import selectors, services
from studies.models import Study
from studies.serializers import (
    ArmAddSerializer,
    ArmSerializer,
    CaseCountsSerializer,
    CaseIdsSerializer,
    CasesAddSerializer,
    CaseSelectSerializer,
    CasesExcludeSerializer,
    DetailSerializer,
    InvitationAcceptedSerializer,
    InvitationAcceptSerializer,
    InvitationCreatedSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    ProgressSerializer,
    QuestionAddSerializer,
    QuestionMoveSerializer,
    QuestionSerializer,
    QuestionUpdateSerializer,
    ReaderSerializer,
    ReadinessSerializer,
    RevealedArmSerializer,
    RoleAddSerializer,
    RoleSerializer,
    StudyCreateSerializer,
    StudyDetailSerializer,
    StudyListSerializer,
    StudyUpdateSerializer,
)

STUDY_NOT_FOUND = "no such study"

# Error answers every study endpoint can give, for the schema.
_NOT_FOUND = {404: OpenApiResponse(DetailSerializer, description="no such study (or not yours)")}
_READ_ERRORS = {403: DetailSerializer, **_NOT_FOUND}
_WRITE_ERRORS = {
    400: bad_request_response("bad input or a frozen configuration"),
    403: OpenApiResponse(DetailSerializer, description="not a coordinator of this study"),
    **_NOT_FOUND,
}


def _problems(exc: ServiceError) -> Response:
    return Response({"detail": "; ".join(exc.problems), "problems": exc.problems}, status=400)


def _study(request, study_id: int, *, manage: bool = False) -> Study:
    """The study, if the user may see it (404 otherwise, as if it did not exist); with
    `manage`, also if they may change it (403 otherwise)."""
    study = Study.objects.select_related("model").filter(pk=study_id).first()
    if study is None or not selectors.study_can_view(study=study, user=request.user):
        raise NotFound(STUDY_NOT_FOUND)
    if manage and not selectors.study_can_manage(study=study, user=request.user):
        raise PermissionDenied("only the study's coordinators can change it")
    return study


def _detail(request, study: Study, *, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(
        StudyDetailSerializer(study, context={"request": request}).data, status=status_code
    )


def _payload(serializer_class, request, **kwargs) -> dict:
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
        data = _payload(StudyCreateSerializer, request)
        try:
            study = services.study_create(acting_user=request.user, **data)
        except ServiceError as exc:
            return _problems(exc)
        return _detail(request, study, status_code=status.HTTP_201_CREATED)


class StudyDetailApi(StudyApi):
    @extend_schema(
        summary="A study: configuration, blinded arms, questions, case counts, problems",
        responses={200: StudyDetailSerializer, **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return _detail(request, _study(request, study_id))

    @extend_schema(
        summary="Change a draft study (model by id, collections by ids)",
        request=StudyUpdateSerializer,
        responses={200: StudyDetailSerializer, **_WRITE_ERRORS},
    )
    def patch(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(StudyUpdateSerializer, request)
        try:
            study = services.study_update(acting_user=request.user, study=study, **data)
        except ServiceError as exc:
            return _problems(exc)
        return _detail(request, study)


class StudyReadinessApi(StudyApi):
    @extend_schema(
        summary="What stops the study from opening, warnings, empty explanations, per-arm outputs,"
        " AI-wrong cases",
        responses={200: ReadinessSerializer, **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = _study(request, study_id)
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
        responses={200: StudyDetailSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        try:
            study = services.study_open(acting_user=request.user, study=study)
        except ServiceError as exc:
            return _problems(exc)
        return _detail(request, study)


class StudyCloseApi(StudyApi):
    @extend_schema(
        summary="Close an open study (no new reads start)",
        request=None,
        responses={200: StudyDetailSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        try:
            study = services.study_close(acting_user=request.user, study=study)
        except ServiceError as exc:
            return _problems(exc)
        return _detail(request, study)


class StudyPrecomputeApi(StudyApi):
    @extend_schema(
        summary="Precompute what the arms show on the study's cases (existing results are reused)",
        request=None,
        responses={202: inline_serializer("StudyPrecomputeJobs", {"jobs": serializers.ListField(
            child=serializers.IntegerField(), help_text="precompute job ids; progress at /api/v1/precompute/{id}/"
        )}), **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        try:
            jobs = services.study_precompute(acting_user=request.user, study=study)
        except ServiceError as exc:
            return _problems(exc)
        return Response({"jobs": [job.pk for job in jobs]}, status=202)


# Arms ---------------------------------------------------------------------------------------


class ArmListApi(StudyApi):
    @extend_schema(
        summary="The study's arms, blinded",
        responses={200: ArmSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = _study(request, study_id)
        arms = study.arms.order_by("code")
        return Response(ArmSerializer(arms, many=True, context={"study": study}).data)

    @extend_schema(
        summary="Add an arm to a draft (it gets the next free code)",
        request=ArmAddSerializer,
        responses={201: ArmSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(ArmAddSerializer, request)
        try:
            arm = services.arm_add(acting_user=request.user, study=study, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(
            ArmSerializer(arm, context={"study": study}).data, status=status.HTTP_201_CREATED
        )


class ArmDetailApi(StudyApi):
    @extend_schema(summary="Remove an arm from a draft", responses={204: None, **_WRITE_ERRORS})
    def delete(self, request, study_id: int, code: str):
        study = _study(request, study_id, manage=True)
        arm = study.arms.filter(code=code).first()
        if arm is None:
            raise NotFound(f"the study has no arm {code!r}")
        try:
            services.arm_remove(acting_user=request.user, arm=arm)
        except ServiceError as exc:
            return _problems(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ArmRevealApi(StudyApi):
    @extend_schema(
        summary="Statistician only: what each arm is (every reveal is audited)",
        request=None,
        responses={200: RevealedArmSerializer(many=True), **_READ_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id)
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
        responses={200: QuestionSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = _study(request, study_id)
        return Response(QuestionSerializer(study.questions.all(), many=True).data)

    @extend_schema(
        summary="Add a question to a draft",
        request=QuestionAddSerializer,
        responses={201: QuestionSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(QuestionAddSerializer, request)
        try:
            question = services.question_add(acting_user=request.user, study=study, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(QuestionSerializer(question).data, status=status.HTTP_201_CREATED)


class QuestionDetailApi(StudyApi):
    @extend_schema(
        summary="Change a question of a draft",
        request=QuestionUpdateSerializer,
        responses={200: QuestionSerializer, **_WRITE_ERRORS},
    )
    def patch(self, request, study_id: int, key: str):
        study = _study(request, study_id, manage=True)
        question = _question(study, key)
        data = _payload(QuestionUpdateSerializer, request)
        try:
            question = services.question_update(acting_user=request.user, question=question, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(QuestionSerializer(question).data)

    @extend_schema(summary="Remove a question from a draft", responses={204: None, **_WRITE_ERRORS})
    def delete(self, request, study_id: int, key: str):
        study = _study(request, study_id, manage=True)
        question = _question(study, key)
        try:
            services.question_remove(acting_user=request.user, question=question)
        except ServiceError as exc:
            return _problems(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QuestionMoveApi(StudyApi):
    @extend_schema(
        summary="Move a question of a draft one place up or down (audited)",
        request=QuestionMoveSerializer,
        responses={200: QuestionSerializer(many=True), **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int, key: str):
        study = _study(request, study_id, manage=True)
        question = _question(study, key)
        data = _payload(QuestionMoveSerializer, request)
        try:
            services.question_move(acting_user=request.user, question=question, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(QuestionSerializer(study.questions.all(), many=True).data)


class QuestionDefaultsApi(StudyApi):
    @extend_schema(
        summary="Add the standard questions the study does not have yet",
        description="A diagnosis on the model's labels, a 0-100 confidence slider and the"
        " default Likert set. Answers the questions added (none when all exist).",
        request=None,
        responses={201: QuestionSerializer(many=True), **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        try:
            added = services.questions_add_defaults(acting_user=request.user, study=study)
        except ServiceError as exc:
            return _problems(exc)
        return Response(QuestionSerializer(added, many=True).data, status=status.HTTP_201_CREATED)


# Cases --------------------------------------------------------------------------------------


class StudyCasesApi(StudyApi):
    @extend_schema(
        summary="The study's case ids per role",
        responses={200: CaseIdsSerializer, **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = _study(request, study_id)
        return Response(selectors.study_case_ids(study=study))

    @extend_schema(
        summary="Replace the case selection of a draft with these case ids",
        request=CaseIdsSerializer,
        responses={200: CaseCountsSerializer, **_WRITE_ERRORS},
    )
    def put(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(CaseIdsSerializer, request)
        try:
            counts = services.study_cases_set(acting_user=request.user, study=study, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(counts)


class StudyCasesSelectApi(StudyApi):
    @extend_schema(
        summary="Choose the cases of a draft from its collections, reproducibly from its seed",
        request=CaseSelectSerializer,
        responses={200: CaseCountsSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(CaseSelectSerializer, request)
        try:
            counts = services.study_cases_select(acting_user=request.user, study=study, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(counts)


class StudyCasesAddApi(StudyApi):
    @extend_schema(
        summary="Add cases to a draft's selection by id or key, in one role (the rest stays)",
        request=CasesAddSerializer,
        responses={200: CaseCountsSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(CasesAddSerializer, request)
        try:
            counts = services.study_cases_add(acting_user=request.user, study=study, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(counts)


class StudyCasesExcludeApi(StudyApi):
    @extend_schema(
        summary="Take cases out of a draft's selection (e.g. those with an empty explanation)",
        request=CasesExcludeSerializer,
        responses={200: CaseCountsSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(CasesExcludeSerializer, request)
        try:
            counts = services.study_cases_exclude(acting_user=request.user, study=study, **data)
        except ServiceError as exc:
            return _problems(exc)
        return Response(counts)


# People -------------------------------------------------------------------------------------


class InvitationListApi(StudyApi):
    @extend_schema(
        summary="The study's invitations (never their links)",
        responses={200: InvitationSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = _study(request, study_id)
        invitations = study.invitations.select_related("created_by", "user")
        return Response(InvitationSerializer(invitations, many=True).data)

    @extend_schema(
        summary="Invite a reader by e-mail; the link is in this response only",
        request=InvitationCreateSerializer,
        responses={201: InvitationCreatedSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(InvitationCreateSerializer, request)
        try:
            invitation, token = services.invitation_create(
                acting_user=request.user, study=study, **data
            )
        except ServiceError as exc:
            return _problems(exc)
        body = {**InvitationSerializer(invitation).data, "link": services.invitation_link(token)}
        return Response(body, status=status.HTTP_201_CREATED)


class InvitationRevokeApi(StudyApi):
    @extend_schema(
        summary="Withdraw an unused invitation",
        request=None,
        responses={200: InvitationSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int, invitation_id: int):
        study = _study(request, study_id, manage=True)
        invitation = study.invitations.filter(pk=invitation_id).first()
        if invitation is None:
            raise NotFound("the study has no such invitation")
        try:
            invitation = services.invitation_revoke(acting_user=request.user, invitation=invitation)
        except ServiceError as exc:
            return _problems(exc)
        return Response(InvitationSerializer(invitation).data)


class InvitationAcceptApi(StudyApi):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Use an invitation: create the reader's account (or use the signed-in one)",
        description="Without a session, a reader account named after the invited address is"
        " created with `password`; with one, the invitation joins the signed-in account. The"
        " reader gets the reader role, and a schedule at once when the study is open.",
        request=InvitationAcceptSerializer,
        responses={201: InvitationAcceptedSerializer, 400: bad_request_response()},
    )
    def post(self, request):
        data = _payload(InvitationAcceptSerializer, request)
        signed_in = request.user.is_authenticated
        try:
            study = services.invitation_get_valid(token=data["token"]).study
            reader = services.invitation_accept(
                acting_user=request.user if signed_in else None, **data
            )
        except ServiceError as exc:
            return _problems(exc)
        body = {
            "username": reader.get_username(),
            "study": study.pk,
            "study_title": study.reader_facing_title,
            "enrolled": reader.enrollments.filter(study=study).exists(),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class RoleListApi(StudyApi):
    @extend_schema(
        summary="Who has which role in the study",
        responses={200: RoleSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = _study(request, study_id)
        roles = study.roles.select_related("user").order_by("role", "user__username")
        return Response(RoleSerializer(roles, many=True).data)

    @extend_schema(
        summary="Give a user a role (a reader added to an open study is enrolled at once)",
        request=RoleAddSerializer,
        responses={201: RoleSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = _study(request, study_id, manage=True)
        data = _payload(RoleAddSerializer, request)
        try:
            user = services.user_by_username(data["username"])
            member = services.study_role_add(
                acting_user=request.user, study=study, user=user, role=data["role"]
            )
        except ServiceError as exc:
            return _problems(exc)
        return Response(RoleSerializer(member).data, status=status.HTTP_201_CREATED)


class RoleDetailApi(StudyApi):
    @extend_schema(summary="Take a role away", responses={204: None, **_WRITE_ERRORS})
    def delete(self, request, study_id: int, username: str, role: str):
        study = _study(request, study_id, manage=True)
        try:
            user = services.user_by_username(username)
            services.study_role_remove(acting_user=request.user, study=study, user=user, role=role)
        except ServiceError as exc:
            return _problems(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StudyProgressApi(StudyApi):
    @extend_schema(
        summary="Per enrolled reader: trials and sessions done, last activity",
        responses={200: ProgressSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return Response(selectors.study_progress(study=_study(request, study_id)))


class StudyReadersApi(StudyApi):
    @extend_schema(
        summary="Readers with the reader role, enrolled or waiting, with their profiles",
        responses={200: ReaderSerializer(many=True), **_READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return Response(selectors.study_readers(study=_study(request, study_id)))
