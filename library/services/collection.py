"""Writes of collections: the named sets cases are imported into."""

from __future__ import annotations

from django.db import transaction

from core import audit
from core.audit import acting_user_or_none
from core.errors import ServiceError
from library.models import Collection


def collection_create(*, acting_user, name: str, description: str = "") -> Collection:
    name = (name or "").strip()
    if not name:
        raise ServiceError("a collection needs a name")
    if len(name) > 100:
        raise ServiceError("a collection name has at most 100 characters")
    with transaction.atomic():
        if Collection.objects.filter(name=name).exists():
            raise ServiceError(f"a collection named {name!r} already exists")
        collection = Collection.objects.create(
            name=name, description=description, created_by=acting_user_or_none(acting_user)
        )
        audit.record(
            acting_user=acting_user,
            action="collection.create",
            obj=collection,
            after={"name": name, "description": description},
        )
    return collection


def collection_get_or_create(*, acting_user, name: str) -> Collection:
    existing = Collection.objects.filter(name=name.strip()).first()
    return existing or collection_create(acting_user=acting_user, name=name)
