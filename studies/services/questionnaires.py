"""End-of-session questionnaires: a draft's configuration (`study_questionnaires_set`) and a
reader's answers (`questionnaire_submit`, stored once, with the instrument's standard scores).

The configuration is a list of `{"instrument": "nasa_tlx" | "sus" | "jian_trust", "after":
"each_session" | "last_session", "pairwise": bool}` (pairwise: NASA-TLX only, whether the 15
pairwise comparisons are asked and the weighted score computed), each instrument at most once, in
the order readers answer them. It is frozen when the study opens, like the rest."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from django.db import IntegrityError, transaction

from core import audit
from core.errors import ServiceError
from studies.models import Enrollment, QuestionnaireResponse, Study
from studies.questionnaire_scoring import (
    INSTRUMENTS,
    SUS,
    TLX,
    TRUST,
    QuestionnaireError,
    score_sus,
    score_tlx,
    score_trust,
)
from studies.selectors.questionnaires import AFTER_CHOICES, questionnaires_due
from studies.selectors.reading import reader_refusal
from studies.services.drafts import locked_study, require_draft

ENTRY_FIELDS = ("instrument", "after", "pairwise")
COMPARISONS = "comparisons"  # the answers' key of the TLX pair choices
SCORERS = {SUS.key: score_sus, TRUST.key: score_trust}  # NASA-TLX: score_tlx, with the pairs


def _entry(position: int, entry: Any, seen: set[str]) -> tuple[dict | None, list[str]]:
    label = f"questionnaire {position}"
    if not isinstance(entry, dict):
        return None, [f"{label}: expected an object with instrument and after"]
    problems = [f"{label}: unknown field {k!r}" for k in entry if k not in ENTRY_FIELDS]
    instrument = entry.get("instrument")
    if instrument not in INSTRUMENTS:
        problems.append(
            f"{label}: unknown instrument {instrument!r}; choose one of {', '.join(INSTRUMENTS)}"
        )
    elif instrument in seen:
        problems.append(f"{label}: {instrument} is configured more than once")
    after = entry.get("after")
    if after not in AFTER_CHOICES:
        problems.append(f"{label}: after must be one of {', '.join(AFTER_CHOICES)}, not {after!r}")
    pairwise = entry.get("pairwise", False)
    if not isinstance(pairwise, bool):
        problems.append(f"{label}: pairwise must be true or false")
    elif pairwise and instrument in INSTRUMENTS and instrument != TLX.key:
        problems.append(f"{label}: only {TLX.key} has pairwise comparisons")
    if problems:
        return None, problems
    seen.add(instrument)
    normalised = {"instrument": instrument, "after": after}
    if instrument == TLX.key:
        normalised["pairwise"] = pairwise
    return normalised, []


def questionnaires_config(questionnaires: Any) -> list[dict]:
    """The configuration normalised, or ServiceError listing every problem."""
    if not isinstance(questionnaires, list | tuple):
        raise ServiceError("questionnaires must be a list")
    normalised, problems, seen = [], [], set()
    for position, entry in enumerate(questionnaires, start=1):
        value, entry_problems = _entry(position, entry, seen)
        problems += entry_problems
        if value is not None:
            normalised.append(value)
    if problems:
        raise ServiceError(problems)
    return normalised


def study_questionnaires_set(*, acting_user, study: Study, questionnaires: Any) -> Study:
    """Replace a draft's end-of-session questionnaires (an empty list: none)."""
    normalised = questionnaires_config(questionnaires)
    with transaction.atomic():
        study = locked_study(study)
        require_draft(study)
        before = list(study.questionnaires or [])
        if before == normalised:
            return study
        study.questionnaires = normalised
        study.save(update_fields=["questionnaires"])
        audit.record(
            acting_user=acting_user,
            action="study.questionnaires_set",
            obj=study,
            study=study,
            before={"questionnaires": before},
            after={"questionnaires": normalised},
        )
    return study


# The reader's answers ---------------------------------------------------------------------------


def questionnaire_scores(*, instrument: str, answers: dict, pairwise: bool) -> dict:
    """The instrument's standard scores (JSON-ready), or ServiceError with one line per problem
    (the scoring module's)."""
    try:
        if instrument == TLX.key:
            ratings = {k: v for k, v in answers.items() if k != COMPARISONS}
            comparisons = answers.get(COMPARISONS, []) if pairwise else None
            if not pairwise and COMPARISONS in answers:
                raise QuestionnaireError(["this questionnaire has no pairwise comparisons"])
            return asdict(score_tlx(ratings, comparisons))
        return asdict(SCORERS[instrument](answers))
    except QuestionnaireError as error:
        raise ServiceError(error.problems) from None


def _replay(key: uuid.UUID, enrollment: Enrollment, instrument: str, session_index: int):
    """A response already stored for this submission key, or for this questionnaire (answers
    are final: a second submission shows what comes next and changes nothing)."""
    by_key = QuestionnaireResponse.objects.filter(client_key=key).first()
    if by_key is not None:
        same = (by_key.enrollment_id, by_key.instrument, by_key.session_index) == (
            enrollment.pk,
            instrument,
            session_index,
        )
        if not same:
            raise ServiceError("this submission key was already used for another answer")
        return by_key
    return QuestionnaireResponse.objects.filter(
        enrollment=enrollment, instrument=instrument, session_index=session_index
    ).first()


def questionnaire_submit(
    *,
    acting_user,
    enrollment: Enrollment,
    instrument: str,
    session_index: int,
    answers: Any,
    client_key,
) -> QuestionnaireResponse:
    """Store the reader's answers to a due questionnaire with their scores, exactly once."""
    try:
        key = uuid.UUID(str(client_key))
    except ValueError:
        raise ServiceError("the submission key must be a UUID") from None
    if enrollment.reader_id != acting_user.pk:
        raise PermissionError("this questionnaire belongs to another reader")
    replay = _replay(key, enrollment, instrument, session_index)
    if replay is not None:
        return replay
    refusal = reader_refusal(user=acting_user, enrollment=enrollment)
    if refusal is not None:
        raise ServiceError(refusal.message)
    due = next(
        (
            d
            for d in questionnaires_due(enrollment=enrollment)
            if (d["instrument"], d["session_index"]) == (instrument, session_index)
        ),
        None,
    )
    if due is None:
        raise ServiceError("this questionnaire is not due now")
    if not isinstance(answers, dict):
        raise ServiceError("the answers must be an object of item -> value")
    scores = questionnaire_scores(instrument=instrument, answers=answers, pairwise=due["pairwise"])
    study = enrollment.study
    try:
        with transaction.atomic():
            response = QuestionnaireResponse.objects.create(
                enrollment=enrollment,
                instrument=instrument,
                session_index=session_index,
                answers=answers,
                scores=scores,
                client_key=key,
            )
            audit.record(
                acting_user=acting_user,
                action="reader.questionnaire",
                obj=study,
                study=study,
                after={
                    "instrument": instrument,
                    "session": session_index + 1,
                    "response": response.pk,
                },
            )
    except IntegrityError:  # a double submission racing its original
        replay = _replay(key, enrollment, instrument, session_index)
        if replay is None:
            raise
        return replay
    return response


def require_no_questionnaire_due(*, enrollment: Enrollment) -> None:
    """Refuse to show or answer a case while an end-of-session questionnaire is due (the reading
    services call this: the next session starts once the questionnaires are answered)."""
    if questionnaires_due(enrollment=enrollment):
        raise ServiceError(
            "answer the questionnaire about the session you finished before the next case"
        )
