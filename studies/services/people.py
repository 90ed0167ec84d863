"""Inviting readers: one-time, expiring links; accepting one creates the reader's account
(or attaches the invitation to the signed-in account) and gives them the reader role."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core import audit
from core.errors import ServiceError
from studies.models import Invitation, ReaderProfile, Study, StudyRole
from studies.services.roles import study_role_add


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_link(token: str) -> str:
    return settings.SITE_URL + reverse("studies:invitation-accept", kwargs={"token": token})


def invitation_create(
    *, acting_user, study: Study, email: str, valid_days: int | None = None
) -> tuple[Invitation, str]:
    """Invite a reader by e-mail. Returns the invitation and the token (shown or sent once;
    only its hash is stored). The e-mail is sent after the transaction commits; it names the
    study by its reader-facing title (never the internal one)."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError(f"{email!r} is not an e-mail address") from None
    if study.status == Study.Status.CLOSED:
        raise ServiceError(f"study '{study.title}' is closed; it takes no new readers")
    days = settings.INVITATION_VALID_DAYS if valid_days is None else valid_days
    if days < 1 or days > 90:
        raise ServiceError("an invitation is valid for 1 to 90 days")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        now = timezone.now()
        Invitation.objects.filter(
            study=study, email=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            study=study,
            email=email,
            token_hash=token_hash(token),
            created_by=acting_user,
            expires_at=now + timedelta(days=days),
        )
        audit.record(
            acting_user=acting_user,
            action="study.invite",
            obj=study,
            study=study,
            after={"email": email, "expires_at": invitation.expires_at.isoformat()},
        )
        link = invitation_link(token)
        transaction.on_commit(
            lambda: send_mail(
                subject=f"Invitation to the reader study '{study.reader_facing_title}'",
                message=(
                    f"You are invited to take part as a reader in the study '{study.reader_facing_title}'.\n\n"
                    f"Open this link to accept and set your password (valid until "
                    f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC, usable once):\n\n{link}\n"
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[email],
            )
        )
    return invitation, token


def invitation_revoke(*, acting_user, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        updated = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if not updated:
            raise ServiceError("the invitation was already used or revoked")
        invitation.refresh_from_db()
        audit.record(
            acting_user=acting_user,
            action="study.invitation_revoke",
            obj=invitation.study,
            study=invitation.study,
            after={"email": invitation.email},
        )
    return invitation


def invitation_get_valid(*, token: str) -> Invitation:
    """The invitation behind a token, or a ServiceError saying why it cannot be used."""
    invitation = (
        Invitation.objects.select_related("study")
        .filter(token_hash=token_hash(token or ""))
        .first()
    )
    if invitation is None:
        raise ServiceError("this invitation link is not valid")
    if invitation.accepted_at is not None:
        raise ServiceError(
            "this invitation link was already used; sign in with your account instead"
        )
    if invitation.revoked_at is not None:
        raise ServiceError("this invitation was withdrawn; ask the study coordinator for a new one")
    if invitation.expires_at <= timezone.now():
        raise ServiceError(
            "this invitation link has expired; ask the study coordinator for a new one"
        )
    if invitation.study.status == Study.Status.CLOSED:
        raise ServiceError(f"the study '{invitation.study.reader_facing_title}' is closed")
    return invitation


def _profile_problems(years_experience, specialty, is_radiologist) -> list[str]:
    problems = []
    if years_experience is not None and (
        isinstance(years_experience, bool)
        or not isinstance(years_experience, int)
        or not 0 <= years_experience <= 70
    ):
        problems.append("years of experience must be a whole number from 0 to 70")
    if specialty is not None and len(specialty) > 100:
        problems.append("the specialty must be at most 100 characters")
    if is_radiologist is not None and not isinstance(is_radiologist, bool):
        problems.append("'is radiologist' must be yes or no")
    return problems


def invitation_accept(
    *,
    token: str,
    acting_user=None,
    password: str | None = None,
    years_experience: int | None = None,
    specialty: str | None = None,
    is_radiologist: bool | None = None,
):
    """Use an invitation once. Without a signed-in `acting_user`, a reader account named after
    the invited address is created with `password`. Returns the reader."""
    invitation = invitation_get_valid(token=token)
    problems = _profile_problems(years_experience, specialty, is_radiologist)
    User = get_user_model()
    signed_in = acting_user is not None and acting_user.is_authenticated
    if not signed_in:
        if (
            User.objects.filter(username__iexact=invitation.email).exists()
            or User.objects.filter(email__iexact=invitation.email).exists()
        ):
            problems.append(
                f"an account for {invitation.email} already exists; sign in first, then open the link again"
            )
        elif not password:
            problems.append("choose a password")
        else:
            candidate = User(username=invitation.email, email=invitation.email)
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                problems += list(exc.messages)
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(accepted_at=timezone.now())
        if not claimed:
            raise ServiceError("this invitation link was already used")
        if signed_in:
            reader = acting_user
        else:
            reader = User.objects.create_user(
                username=invitation.email, email=invitation.email, password=password
            )
        Invitation.objects.filter(pk=invitation.pk).update(user=reader)
        profile, _ = ReaderProfile.objects.get_or_create(user=reader)
        for field, value in (
            ("years_experience", years_experience),
            ("specialty", specialty),
            ("is_radiologist", is_radiologist),
        ):
            if value is not None:
                setattr(profile, field, value)
        profile.save()
        audit.record(
            acting_user=reader,
            action="study.invitation_accept",
            obj=invitation.study,
            study=invitation.study,
            after={
                "email": invitation.email,
                "reader": reader.get_username(),
                "new_account": not signed_in,
            },
        )
        study_role_add(
            acting_user=reader, study=invitation.study, user=reader, role=StudyRole.Role.READER
        )
    return reader


def reader_profile_update(
    *, acting_user, years_experience=None, specialty=None, is_radiologist=None
) -> ReaderProfile:
    problems = _profile_problems(years_experience, specialty, is_radiologist)
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        profile, _ = ReaderProfile.objects.select_for_update().get_or_create(user=acting_user)
        before = {
            f: getattr(profile, f) for f in ("years_experience", "specialty", "is_radiologist")
        }
        profile.years_experience = years_experience
        profile.specialty = specialty or ""
        profile.is_radiologist = is_radiologist
        profile.save()
        audit.record(
            acting_user=acting_user,
            action="reader.profile_update",
            obj=profile,
            before=before,
            after={f: getattr(profile, f) for f in before},
        )
    return profile
