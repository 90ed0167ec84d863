"""Checks and wording shared by validation and generation: identifiers, their canonical order,
and counted nouns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from studies.randomization.schedule import CaseId


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or _is_int(value)


def _id_key(value: CaseId) -> tuple[int, Any]:
    """Canonical order of case ids and stratum labels: numbers first, then texts."""
    return (1, value) if isinstance(value, str) else (0, value)


def _duplicates(values: Iterable[Any]) -> list[Any]:
    counts = Counter(values)
    return sorted((value for value, n in counts.items() if n > 1), key=_id_key)


def _listing(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
