"""The study's audit trail: filtered rows, blinded details, and CSV cells."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from core.models import AuditEntry
from library.labels import FORMULA_STARTS
from studies.models import (
    Arm,
    Study,
)
from studies.selectors.configuration import BLINDED_KIND

AUDIT_CSV_HEADER = (
    "at",
    "actor",
    "ip",
    "action",
    "object_type",
    "object_id",
    "object",
    "before",
    "after",
)
_ARM_DETAILS = ("explainer", "params", "param_hash", "seed")


def audit_entries_for_study(
    *, study: Study, action: str = "", actor: str = "", since=None, until=None
) -> QuerySet:
    """The study's audit rows, newest first; optionally one action, one actor (username) and
    a date range (`since`/`until`: dates, both days included, in the site's time zone)."""
    entries = AuditEntry.objects.filter(study_id=study.pk)
    if action:
        entries = entries.filter(action=action)
    if actor:
        entries = entries.filter(actor_repr=actor)
    zone = timezone.get_current_timezone()
    if since is not None:
        entries = entries.filter(at__gte=datetime.combine(since, time.min, tzinfo=zone))
    if until is not None:
        entries = entries.filter(
            at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
        )
    return entries.order_by("-at", "-pk")


def audit_filter_choices(*, study: Study) -> dict[str, list[str]]:
    """The actions and actors that occur in the study's trail (for the filter form)."""
    rows = AuditEntry.objects.filter(study_id=study.pk)
    return {
        "actions": sorted(set(rows.values_list("action", flat=True).distinct())),
        "actors": sorted(set(rows.values_list("actor_repr", flat=True).distinct())),
    }


def _blind_arms(value):
    """An audit detail with every arm's condition replaced by what coordinators see of an open
    study: its code and blinded kind (explainers and parameters would unblind the arms)."""
    if isinstance(value, list):
        return [_blind_arms(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "code" in value and "kind" in value and "explainer" in value:  # an arm's state
        kind = value["kind"]
        blinded = BLINDED_KIND if kind in (Arm.Kind.AI_EXPLAINER, Arm.Kind.PLACEBO) else kind
        return {
            **{k: v for k, v in value.items() if k not in _ARM_DETAILS},
            "kind": blinded,
        }
    return {key: _blind_arms(item) for key, item in value.items()}


def audit_entry_details(*, entry, study: Study) -> tuple:
    """(before, after) of an audit row as the study's trail shows them: once the study is no
    longer a draft, arm conditions are blinded (only the statistician's audited reveal shows
    them), as on every other page."""
    if study.status == Study.Status.DRAFT:
        return entry.before, entry.after
    return _blind_arms(entry.before), _blind_arms(entry.after)


def _json_cell(value) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _csv_safe(value: str) -> str:
    """Text a spreadsheet will not run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def audit_rows(*, entries, study: Study):
    """The rows of the trail as text, one tuple per entry in AUDIT_CSV_HEADER order (for the
    CSV export; spreadsheet formulas are neutralised). Iterates the queryset in chunks."""
    for entry in entries.iterator(chunk_size=1000):
        before, after = audit_entry_details(entry=entry, study=study)
        cells = (
            entry.at.isoformat(),
            entry.actor_repr,
            entry.ip or "",
            entry.action,
            entry.object_type,
            entry.object_id,
            entry.object_repr,
            _json_cell(before),
            _json_cell(after),
        )
        yield tuple(_csv_safe(cell) for cell in cells)


def audit_page_rows(*, entries, study: Study) -> list[dict]:
    """One page of the trail for display."""
    rows = []
    for entry in entries:
        before, after = audit_entry_details(entry=entry, study=study)
        rows.append(
            {
                "at": entry.at,
                "actor": entry.actor_repr,
                "ip": entry.ip,
                "action": entry.action,
                "object": entry.object_repr,
                "before": _json_cell(before),
                "after": _json_cell(after),
            }
        )
    return rows
