"""The studies API's people endpoints: invitations, roles, readers' progress (see `studies.api`
for the rules every endpoint follows)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core.api import bad_request_response
from studies import selectors, services
from studies.api import READ_ERRORS, WRITE_ERRORS, StudyApi, study_for_request, valid_payload
from studies.serializers_people import (
    InvitationAcceptedSerializer,
    InvitationAcceptSerializer,
    InvitationCreatedSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    ProgressSerializer,
    ReaderSerializer,
    RoleAddSerializer,
    RoleSerializer,
)

# People -------------------------------------------------------------------------------------


class InvitationListApi(StudyApi):
    @extend_schema(
        summary="The study's invitations (never their links)",
        responses={200: InvitationSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = study_for_request(request, study_id)
        invitations = study.invitations.select_related("created_by", "user")
        return Response(InvitationSerializer(invitations, many=True).data)

    @extend_schema(
        summary="Invite a reader by e-mail; the link is in this response only",
        request=InvitationCreateSerializer,
        responses={201: InvitationCreatedSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(InvitationCreateSerializer, request)
        invitation, token = services.invitation_create(
            acting_user=request.user, study=study, **data
        )
        body = {**InvitationSerializer(invitation).data, "link": services.invitation_link(token)}
        return Response(body, status=status.HTTP_201_CREATED)


class InvitationRevokeApi(StudyApi):
    @extend_schema(
        summary="Withdraw an unused invitation",
        request=None,
        responses={200: InvitationSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int, invitation_id: int):
        study = study_for_request(request, study_id, manage=True)
        invitation = study.invitations.filter(pk=invitation_id).first()
        if invitation is None:
            raise NotFound("the study has no such invitation")
        invitation = services.invitation_revoke(acting_user=request.user, invitation=invitation)
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
        data = valid_payload(InvitationAcceptSerializer, request)
        signed_in = request.user.is_authenticated
        study = services.invitation_get_valid(token=data["token"]).study
        reader = services.invitation_accept(acting_user=request.user if signed_in else None, **data)
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
        responses={200: RoleSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        study = study_for_request(request, study_id)
        roles = study.roles.select_related("user").order_by("role", "user__username")
        return Response(RoleSerializer(roles, many=True).data)

    @extend_schema(
        summary="Give a user a role (a reader added to an open study is enrolled at once)",
        request=RoleAddSerializer,
        responses={201: RoleSerializer, **WRITE_ERRORS},
    )
    def post(self, request, study_id: int):
        study = study_for_request(request, study_id, manage=True)
        data = valid_payload(RoleAddSerializer, request)
        user = services.user_by_username(data["username"])
        member = services.study_role_add(
            acting_user=request.user, study=study, user=user, role=data["role"]
        )
        return Response(RoleSerializer(member).data, status=status.HTTP_201_CREATED)


class RoleDetailApi(StudyApi):
    @extend_schema(summary="Take a role away", responses={204: None, **WRITE_ERRORS})
    def delete(self, request, study_id: int, username: str, role: str):
        study = study_for_request(request, study_id, manage=True)
        user = services.user_by_username(username)
        services.study_role_remove(acting_user=request.user, study=study, user=user, role=role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StudyProgressApi(StudyApi):
    @extend_schema(
        summary="Per enrolled reader: trials and sessions done, last activity",
        responses={200: ProgressSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return Response(selectors.study_progress(study=study_for_request(request, study_id)))


class StudyReadersApi(StudyApi):
    @extend_schema(
        summary="Readers with the reader role, enrolled or waiting, with their profiles",
        responses={200: ReaderSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request, study_id: int):
        return Response(selectors.study_readers(study=study_for_request(request, study_id)))
