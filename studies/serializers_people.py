"""Input and output shapes of the studies API's people endpoints: roles, invitations, readers
and their progress."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from studies.models import Invitation, StudyRole
from studies.serializers import StrictSerializer

INVITATION_STATES = ["pending", "accepted", "revoked", "expired"]


class ProgressSerializer(serializers.Serializer):
    reader = serializers.CharField()
    reader_index = serializers.IntegerField()
    trials_total = serializers.IntegerField()
    trials_done = serializers.IntegerField()
    sessions_total = serializers.IntegerField()
    sessions_unlocked = serializers.IntegerField()
    sessions_done = serializers.IntegerField()
    last_activity = serializers.DateTimeField(allow_null=True)
    consented = serializers.BooleanField()


class ReaderSerializer(serializers.Serializer):
    username = serializers.CharField()
    enrolled = serializers.BooleanField()
    years_experience = serializers.IntegerField(allow_null=True)
    specialty = serializers.CharField(allow_blank=True)
    is_radiologist = serializers.BooleanField(allow_null=True)


# People -------------------------------------------------------------------------------------


class RoleSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = StudyRole
        fields = ["username", "role", "added_at"]
        read_only_fields = fields


class RoleAddSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=StudyRole.Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation without its token (only its hash is stored)."""

    state = serializers.SerializerMethodField()
    created_by = serializers.CharField(
        source="created_by.username", default=None, allow_null=True, read_only=True
    )
    user = serializers.CharField(
        source="user.username", default=None, allow_null=True, read_only=True
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "state",
            "created_at",
            "created_by",
            "expires_at",
            "accepted_at",
            "revoked_at",
            "user",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=INVITATION_STATES))
    def get_state(self, invitation: Invitation) -> str:
        if invitation.accepted_at:
            return "accepted"
        if invitation.revoked_at:
            return "revoked"
        if invitation.expires_at <= timezone.now():
            return "expired"
        return "pending"


class InvitationCreatedSerializer(InvitationSerializer):
    link = serializers.CharField(
        read_only=True,
        help_text="the one-time link to send the reader; shown in this response only",
    )

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "link"]
        read_only_fields = fields


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.CharField(max_length=254)
    valid_days = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="1 to 90 (default: the site's)"
    )


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=200)
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        style={"input_type": "password"},
        help_text="the new account's password (not needed when signed in)",
    )
    years_experience = serializers.IntegerField(required=False, allow_null=True)
    specialty = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    is_radiologist = serializers.BooleanField(required=False, allow_null=True)


class InvitationAcceptedSerializer(serializers.Serializer):
    username = serializers.CharField()
    study = serializers.IntegerField(help_text="id of the study the reader joined")
    study_title = serializers.CharField()
    enrolled = serializers.BooleanField(
        help_text="whether the reader already has a schedule (the study is open)"
    )
