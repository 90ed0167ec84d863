"""End-of-session questionnaires: which are due for a reader now, and what a questionnaire page
shows (the instrument's items and scale, never anything about arms or conditions).

A study's `questionnaires` lists `{"instrument", "after", "pairwise"}` entries (checked by
`studies.services.questionnaires.study_questionnaires_set`). After each completed session, the
entries with `after` = `each_session`, and after the last session also those with
`last_session`, are due in the configured order until the reader submits them; while one is due,
the reader's next session does not start."""

from __future__ import annotations

from studies.models import Enrollment, QuestionnaireResponse
from studies.questionnaire_scoring import INSTRUMENTS, TLX, TLX_PERFORMANCE_ANCHORS, tlx_pairs

EACH_SESSION = "each_session"
LAST_SESSION = "last_session"
AFTER_CHOICES = (EACH_SESSION, LAST_SESSION)


def _due_after(entry: dict, index: int, last_index: int) -> bool:
    return entry["after"] == EACH_SESSION or (
        entry["after"] == LAST_SESSION and index == last_index
    )


def questionnaires_due(*, enrollment: Enrollment) -> list[dict]:
    """The questionnaires the reader has to answer now, first one first: `{"instrument",
    "session_index", "pairwise"}` for each completed session and each configured questionnaire
    due after it that has no stored response."""
    config = [
        e for e in enrollment.study.questionnaires or [] if e.get("instrument") in INSTRUMENTS
    ]
    if not config:
        return []
    sessions = list(enrollment.sessions.order_by("index").values_list("index", "completed_at"))
    if not sessions:
        return []
    last_index = sessions[-1][0]
    answered = set(enrollment.questionnaire_responses.values_list("instrument", "session_index"))
    due = []
    for index, completed_at in sessions:
        if completed_at is None:
            break
        for entry in config:
            key = (entry["instrument"], index)
            if _due_after(entry, index, last_index) and key not in answered:
                due.append(
                    {
                        "instrument": entry["instrument"],
                        "session_index": index,
                        "pairwise": bool(entry.get("pairwise")),
                    }
                )
    return due


def questionnaire_next(*, enrollment: Enrollment) -> dict | None:
    """The first questionnaire due (see `questionnaires_due`), or None."""
    due = questionnaires_due(enrollment=enrollment)
    return due[0] if due else None


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def questionnaire_page(*, instrument: str, pairwise: bool = False) -> dict:
    """What the page of one instrument shows: its name, items (each with its scale points and
    anchors) and, for NASA-TLX with pairwise comparisons, the 15 pairs."""
    definition = INSTRUMENTS[instrument]
    points = list(range(definition.low, definition.high + 1, definition.step))
    items = []
    for item in definition.items:
        low, high = definition.low_anchor, definition.high_anchor
        if definition is TLX and item.key == "performance":
            low, high = TLX_PERFORMANCE_ANCHORS
        items.append(
            {
                "key": item.key,
                "label": _label(item.key) if definition is TLX else "",
                "text": item.text,
                "points": points,
                "low_anchor": low,
                "high_anchor": high,
            }
        )
    pairs = []
    if definition is TLX and pairwise:
        pairs = [
            {"name": f"pair_{n}", "options": [(a, _label(a)), (b, _label(b))]}
            for n, (a, b) in enumerate(tlx_pairs(), start=1)
        ]
    return {
        "key": definition.key,
        "name": definition.name,
        "is_tlx": definition is TLX,
        "items": items,
        "pairs": pairs,
    }


def questionnaire_responses(*, enrollment: Enrollment) -> list[QuestionnaireResponse]:
    """The reader's stored questionnaire responses, in session order."""
    return list(enrollment.questionnaire_responses.order_by("session_index", "submitted_at"))
