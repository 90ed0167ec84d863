"""Inviting readers: one-time expiring links, account creation, profile, enrollment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone

from core.errors import ServiceError
from core.models import AuditEntry
from studies import services
from studies.models import Enrollment, Invitation, ReaderProfile, StudyRole

PASSWORD = "a-long-enough-passphrase-42"


def _invite(coordinator, study, email="new.reader@hospital.example", **kwargs):
    return services.invitation_create(acting_user=coordinator, study=study, email=email, **kwargs)


def test_an_invitation_sends_a_link_and_stores_only_the_tokens_hash(coordinator, draft_study, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = _invite(coordinator, draft_study)
    assert token not in invitation.token_hash
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.reader@hospital.example"]
    assert services.invitation_link(token) in message.body
    assert f"/invite/{token}/" in message.body
    assert AuditEntry.objects.filter(action="study.invite").get().after["email"] == "new.reader@hospital.example"


def test_no_mail_is_sent_when_the_invitation_is_not_stored(coordinator, draft_study, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ServiceError, match="not an e-mail"):
        _invite(coordinator, draft_study, email="not-an-address")
    assert mail.outbox == []
    assert not Invitation.objects.exists()


def test_accepting_creates_a_reader_account_with_profile(coordinator, draft_study):
    _, token = _invite(coordinator, draft_study)
    reader = services.invitation_accept(
        token=token, password=PASSWORD, years_experience=6, specialty="thoracic", is_radiologist=True
    )
    assert reader.username == "new.reader@hospital.example"
    assert reader.check_password(PASSWORD)
    assert StudyRole.objects.filter(study=draft_study, user=reader, role="reader").exists()
    profile = ReaderProfile.objects.get(user=reader)
    assert (profile.years_experience, profile.specialty, profile.is_radiologist) == (6, "thoracic", True)
    assert not Enrollment.objects.exists()  # a draft study enrolls readers when it opens


def test_accepting_an_invitation_to_an_open_study_enrolls_at_once(coordinator, open_study):
    _, token = _invite(coordinator, open_study)
    reader = services.invitation_accept(token=token, password=PASSWORD)
    enrollment = Enrollment.objects.get(study=open_study, reader=reader)
    assert enrollment.sessions.count() == 2


def test_an_invitation_link_works_only_once(coordinator, draft_study):
    _, token = _invite(coordinator, draft_study)
    services.invitation_accept(token=token, password=PASSWORD)
    with pytest.raises(ServiceError, match="already used"):
        services.invitation_accept(token=token, password=PASSWORD)
    assert User.objects.filter(username="new.reader@hospital.example").count() == 1


def test_an_expired_invitation_is_refused(coordinator, draft_study):
    invitation, token = _invite(coordinator, draft_study)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ServiceError, match="expired"):
        services.invitation_accept(token=token, password=PASSWORD)
    assert not User.objects.filter(username="new.reader@hospital.example").exists()


def test_a_new_invitation_to_the_same_address_revokes_the_old_one(coordinator, draft_study):
    _, old = _invite(coordinator, draft_study)
    _, new = _invite(coordinator, draft_study)
    with pytest.raises(ServiceError, match="withdrawn"):
        services.invitation_accept(token=old, password=PASSWORD)
    services.invitation_accept(token=new, password=PASSWORD)


def test_a_revoked_invitation_is_refused(coordinator, draft_study):
    invitation, token = _invite(coordinator, draft_study)
    services.invitation_revoke(acting_user=coordinator, invitation=invitation)
    with pytest.raises(ServiceError, match="withdrawn"):
        services.invitation_accept(token=token, password=PASSWORD)
    with pytest.raises(ServiceError, match="already used or revoked"):
        services.invitation_revoke(acting_user=coordinator, invitation=invitation)


def test_an_unknown_token_is_refused(db):
    with pytest.raises(ServiceError, match="not valid"):
        services.invitation_accept(token="made-up", password=PASSWORD)


def test_a_weak_password_is_refused_and_nothing_is_stored(coordinator, draft_study):
    invitation, token = _invite(coordinator, draft_study)
    with pytest.raises(ServiceError) as caught:
        services.invitation_accept(token=token, password="123")
    assert caught.value.problems
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert not User.objects.filter(username="new.reader@hospital.example").exists()


def test_an_existing_account_must_sign_in_to_accept(coordinator, draft_study, reader_a):
    _, token = _invite(coordinator, draft_study, email=reader_a.email)
    with pytest.raises(ServiceError, match="sign in first"):
        services.invitation_accept(token=token, password=PASSWORD)
    reader = services.invitation_accept(token=token, acting_user=reader_a)
    assert reader == reader_a
    assert StudyRole.objects.filter(study=draft_study, user=reader_a, role="reader").exists()


def test_bad_profile_values_are_refused(coordinator, draft_study):
    _, token = _invite(coordinator, draft_study)
    with pytest.raises(ServiceError, match="years of experience"):
        services.invitation_accept(token=token, password=PASSWORD, years_experience=-2)


def test_a_closed_study_takes_no_invitations(coordinator, open_study):
    _, token = _invite(coordinator, open_study)
    services.study_close(acting_user=coordinator, study=open_study)
    with pytest.raises(ServiceError, match="closed"):
        _invite(coordinator, open_study, email="late@hospital.example")
    with pytest.raises(ServiceError, match="closed"):
        services.invitation_accept(token=token, password=PASSWORD)


def test_acceptance_is_audited_as_the_reader(coordinator, draft_study):
    _, token = _invite(coordinator, draft_study)
    reader = services.invitation_accept(token=token, password=PASSWORD)
    entry = AuditEntry.objects.get(action="study.invitation_accept")
    assert entry.actor == reader
    assert entry.after["new_account"] is True
