from __future__ import annotations

import pytest
from django.db import transaction

from core import audit
from core.models import AuditEntry


@pytest.mark.django_db(transaction=True)
def test_an_audit_row_outside_a_transaction_is_refused(coordinator):
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        audit.record(acting_user=coordinator, action="x.y")


@pytest.mark.django_db(transaction=True)
def test_an_audit_row_rolls_back_with_the_write_it_records(coordinator):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit.record(acting_user=coordinator, action="collection.create", after={"name": "x"})
        1 / 0
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_an_audit_row_names_the_actor_and_keeps_before_and_after(coordinator):
    with transaction.atomic():
        entry = audit.record(
            acting_user=coordinator,
            action="thing.change",
            before={"a": 1},
            after={"a": (2, 3)},
            ip="127.0.0.1",
        )
    entry.refresh_from_db()
    assert entry.actor == coordinator and entry.actor_repr == "coordinator"
    assert entry.before == {"a": 1} and entry.after == {"a": [2, 3]}
    assert entry.at is not None and entry.ip == "127.0.0.1"


@pytest.mark.django_db
def test_the_database_refuses_to_change_or_delete_audit_rows(coordinator):
    from django.db import DatabaseError, connection

    from tests.conftest import require_service

    require_service(
        "PostgreSQL database", connection.vendor == "postgresql",
        "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db>; the trigger is PostgreSQL's",
    )
    with transaction.atomic():
        entry = audit.record(acting_user=coordinator, action="study.open", after={"status": "open"})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="study.close")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditentry SET after = NULL")
    entry.refresh_from_db()
    assert (entry.action, entry.after) == ("study.open", {"status": "open"})


# Signing in and out (core.auth_audit) ---------------------------------------------------------

LOGIN = "/accounts/login/"


def _auth_rows():
    return list(
        AuditEntry.objects.filter(action__startswith="auth.").order_by("id").values(
            "action", "actor_repr", "ip", "after"
        )
    )


def test_a_login_and_a_logout_are_recorded_with_the_client_address(client, coordinator):
    response = client.post(
        LOGIN, {"username": "coordinator", "password": "pw-coordinator"}, REMOTE_ADDR="203.0.113.5"
    )
    assert response.status_code == 302
    client.post("/accounts/logout/", REMOTE_ADDR="203.0.113.6")
    assert _auth_rows() == [
        {"action": "auth.login", "actor_repr": "coordinator", "ip": "203.0.113.5", "after": None},
        {"action": "auth.logout", "actor_repr": "coordinator", "ip": "203.0.113.6", "after": None},
    ]
    assert AuditEntry.objects.get(action="auth.login").actor == coordinator


def test_a_failed_login_is_recorded_with_the_attempted_username_and_never_the_password(client, coordinator):
    client.post(LOGIN, {"username": "coordinator", "password": "Secret-guess-1"}, REMOTE_ADDR="198.51.100.4")
    client.post(LOGIN, {"username": "nobody-by-that-name", "password": "x"}, REMOTE_ADDR="198.51.100.4")
    rows = _auth_rows()
    assert [(r["action"], r["actor_repr"], r["ip"], r["after"]["username"]) for r in rows] == [
        ("auth.login_failed", "anonymous", "198.51.100.4", "coordinator"),
        ("auth.login_failed", "anonymous", "198.51.100.4", "nobody-by-that-name"),
    ]
    assert AuditEntry.objects.get(after__username="coordinator").actor is None
    assert "Secret-guess-1" not in str(list(AuditEntry.objects.values()))


def test_a_lockout_is_recorded_and_so_is_every_refused_attempt_during_it(client, coordinator, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "coordinator", "password": "wrong"}, REMOTE_ADDR="198.51.100.9")
    client.post(LOGIN, {"username": "coordinator", "password": "pw-coordinator"}, REMOTE_ADDR="198.51.100.9")
    rows = _auth_rows()
    actions = [r["action"] for r in rows]
    assert actions.count("auth.login_failed") == settings.AXES_FAILURE_LIMIT + 1
    assert actions.count("auth.locked_out") == 2  # when it starts, and on the refused attempt
    assert "auth.login" not in actions
    assert rows[-1]["after"]["username"] == rows[-2]["after"]["username"] == "coordinator"
    assert {r["ip"] for r in rows} == {"198.51.100.9"}
    refused = [r for r in rows if r["action"] == "auth.login_failed"][-1]
    assert refused["after"]["locked_out"] is True


def test_failed_basic_authentication_on_the_api_is_recorded(client, coordinator):
    import base64

    token = base64.b64encode(b"coordinator:wrong").decode()
    client.get("/api/v1/studies/", HTTP_AUTHORIZATION=f"Basic {token}", REMOTE_ADDR="198.51.100.30")
    (row,) = _auth_rows()
    assert (row["action"], row["ip"], row["after"]["username"]) == (
        "auth.login_failed", "198.51.100.30", "coordinator",
    )


# From where: the request's client address on every row ---------------------------------------


def test_a_row_written_outside_a_request_has_no_address(coordinator):
    with transaction.atomic():
        entry = audit.record(acting_user=coordinator, action="x.y")
    assert entry.ip is None and entry.study_id is None


def test_a_row_can_be_scoped_to_a_study_by_object_or_id(coordinator):
    with transaction.atomic():
        by_id = audit.record(acting_user=coordinator, action="x.y", study=41)
        by_object = audit.record(acting_user=coordinator, action="x.y", study=coordinator)  # any model
    assert by_id.study_id == 41 and by_object.study_id == coordinator.pk


def test_a_coordinators_write_through_a_page_records_the_client_address(client, coordinator):
    client.force_login(coordinator)
    response = client.post(
        "/studies/new/", {"title": "Page study", "design": "latin_square", "protocol": "single_stage",
                          "sessions": 1, "washout_days": 0},
        REMOTE_ADDR="203.0.113.77",
    )
    assert response.status_code == 302, response.content[:2000]
    entry = AuditEntry.objects.get(action="study.create")
    assert entry.ip == "203.0.113.77" and entry.actor == coordinator
    assert entry.study_id == int(response["Location"].rstrip("/").split("/")[-1])


def test_a_coordinators_write_through_the_api_records_the_client_address(client, coordinator, settings):
    settings.XRS_PROXY_COUNT = 1
    client.force_login(coordinator)
    response = client.post(
        "/api/v1/studies/", {"title": "API study"}, content_type="application/json",
        REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.88",
    )
    assert response.status_code == 201, response.content
    entry = AuditEntry.objects.get(action="study.create")
    assert entry.ip == "203.0.113.88"  # the address the proxy saw, not the forged one
    assert entry.study_id == response.json()["id"]


def test_the_request_address_does_not_outlive_its_request(client, coordinator):
    from core.middleware import current_ip

    client.force_login(coordinator)
    client.get("/studies/", REMOTE_ADDR="203.0.113.99")
    assert current_ip() is None
    with transaction.atomic():
        assert audit.record(acting_user=coordinator, action="x.y").ip is None
