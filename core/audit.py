"""Recording writes in the audit trail.

Every write service calls `record` inside the same transaction as the write,
so that either both are stored or neither is.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from core.models import AuditEntry


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def record(
    *,
    acting_user,
    action: str,
    obj: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one audit row. Must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("core.audit.record must be called inside transaction.atomic()")
    user = acting_user if acting_user is not None and acting_user.is_authenticated else None
    return AuditEntry.objects.create(
        actor=user,
        actor_repr=user.get_username() if user else "system",
        ip=ip,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=_jsonable(before),
        after=_jsonable(after),
    )
