"""Reads of the case library."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from library.models import Case, Collection


def collection_list() -> QuerySet[Collection]:
    return Collection.objects.annotate(
        case_count=Count("cases", distinct=True),
        labelled_count=Count("cases", filter=Q(cases__labels__isnull=False), distinct=True),
        mask_count=Count("cases__masks", distinct=True),
    ).order_by("name")


def collection_get(*, collection_id: int) -> Collection:
    return collection_list().get(pk=collection_id)


def case_list(*, collection: Collection) -> QuerySet[Case]:
    return (
        Case.objects.filter(collection=collection)
        .prefetch_related("labels", "masks")
        .order_by("key")
    )


def case_get(*, case_id: int) -> Case:
    return (
        Case.objects.select_related("collection")
        .prefetch_related("labels", "masks")
        .get(pk=case_id)
    )


def case_ground_truth(*, case: Case) -> dict[str, int]:
    return {label.name: label.value for label in case.labels.all()}


def case_list_all() -> QuerySet[Case]:
    return Case.objects.select_related("collection").prefetch_related("labels", "masks")
