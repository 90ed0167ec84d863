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
