"""Recording writes in the audit trail.

Every write service calls `record` inside the same transaction as the write,
so that either both are stored or neither is. A row says who, when, from where
(the client address of the request being handled, see core.middleware), what,
before and after, and, for anything that belongs to a study, which study
(`study=`), so that the study's coordinators can read and export its trail.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from core.middleware import current_ip
from core.models import AuditEntry


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def acting_user_or_none(user):
    """The user a write is recorded against: None for a command, a worker or an anonymous user."""
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def record(
    *,
    acting_user,
    action: str,
    obj: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    ip: str | None = None,
    study: models.Model | int | None = None,
    actor_repr: str | None = None,
) -> AuditEntry:
    """Append one audit row. Must run inside the caller's transaction.

    `ip` defaults to the client address of the current request (None outside requests).
    `study` (a Study or its id) scopes the row to that study's audit trail. `actor_repr`
    names the actor when there is no signed-in user (e.g. "anonymous" for a failed login;
    otherwise "system").
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("core.audit.record must be called inside transaction.atomic()")
    user = acting_user_or_none(acting_user)
    study_id = study.pk if isinstance(study, models.Model) else study
    return AuditEntry.objects.create(
        actor=user,
        actor_repr=user.get_username() if user else (actor_repr or "system")[:150],
        ip=ip if ip is not None else current_ip(),
        study_id=study_id,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=_jsonable(before),
        after=_jsonable(after),
    )
