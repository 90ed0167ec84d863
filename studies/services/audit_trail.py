"""Exporting a study's audit trail: the export is itself recorded in the trail."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import transaction

from core import audit
from studies.models import Study
from studies.selectors.access import study_can_view
from studies.selectors.audit import AUDIT_CSV_HEADER, audit_entries_for_study, audit_rows


def study_audit_export(
    *, acting_user, study: Study, action: str = "", actor: str = "", since=None, until=None
) -> Iterator[tuple[str, ...]]:
    """The header and the rows of the study's (filtered) audit trail, for its coordinators,
    site admins and statistician (others: PermissionError). Records the export, with its
    filters, before the rows are read; the rows are produced lazily (for streaming)."""
    if not study_can_view(study=study, user=acting_user):
        raise PermissionError("no such study")
    filters = {"action": action, "actor": actor, "since": since, "until": until}
    with transaction.atomic():
        audit.record(
            acting_user=acting_user,
            action="study.audit_export",
            obj=study,
            study=study,
            after={
                key: value.isoformat() if hasattr(value, "isoformat") else value
                for key, value in filters.items()
                if value
            },
        )
    entries = audit_entries_for_study(study=study, **filters)

    def rows() -> Iterator[tuple[str, ...]]:
        yield AUDIT_CSV_HEADER
        yield from audit_rows(entries=entries, study=study)

    return rows()
