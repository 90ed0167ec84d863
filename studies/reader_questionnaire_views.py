"""The reader's end-of-session questionnaire page: after the last case of a session, each
questionnaire due after it (`studies.selectors.questionnaires`), one page at a time, before the
reader goes on to the next session or the end of the study.

Blinding: the page shows the instrument's items and scale only (the study's reader-facing title
and the session's number); nothing names an arm, a condition or an explainer. Answers are stored
once (`questionnaire_submit`, idempotent by the form's client key and by one response per
questionnaire and session): a second submission shows the next page and changes nothing."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core.pages import BAD_INPUT, attempt, flash_problems
from studies import reader_selectors
from studies.questionnaire_scoring import INSTRUMENTS, TLX, tlx_pairs
from studies.selectors.questionnaires import questionnaire_page, questionnaires_due
from studies.selectors.reading import reader_refusal
from studies.services.questionnaires import COMPARISONS, questionnaire_submit


def _number(value: str):
    """A posted value as a whole number when it is one (the scoring module says what else is
    wrong with it: not a number, outside the scale, off its step)."""
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _answers(post, instrument: str, pairwise: bool) -> dict:
    """The posted form as the service's answers: item -> value (unanswered items left out, so
    the problems list them as missing) and, for NASA-TLX with pairs, the chosen subscales."""
    answers = {
        key: _number(post[key]) for key in INSTRUMENTS[instrument].keys if post.get(key, "").strip()
    }
    if instrument == TLX.key and pairwise:
        answers[COMPARISONS] = [
            [first, second, post[f"pair_{n}"]]
            for n, (first, second) in enumerate(tlx_pairs(), start=1)
            if post.get(f"pair_{n}")
        ]
    return answers


def _readable(problems: list[str], instrument: str) -> list[str]:
    """The scoring module's problems with each item named as the page shows it ("Item 3",
    "Mental demand") instead of by its key."""
    definition = INSTRUMENTS.get(instrument)
    if definition is None:
        return problems
    names = {
        item.key: item.key.replace("_", " ").capitalize() if definition is TLX else f"Item {n}"
        for n, item in enumerate(definition.items, start=1)
    }
    readable = []
    for problem in problems:
        key, sep, rest = problem.partition(": ")
        readable.append(f"{names[key]}: {rest}" if sep and key in names else problem)
    return readable


def _with_choices(page: dict, post) -> dict:
    """Mark the posted choices on the page (after a refusal, the reader's answers stay)."""
    for item in page["items"]:
        chosen = post.get(item["key"], "") if post else ""
        item["options"] = [{"value": p, "checked": str(p) == chosen} for p in item["points"]]
    for pair in page["pairs"]:
        chosen = post.get(pair["name"], "") if post else ""
        pair["choices"] = [
            {"value": value, "label": label, "checked": value == chosen}
            for value, label in pair["options"]
        ]
    return page


def _page(request, enrollment, due: list[dict], *, problems=(), client_key=None, status=200):
    current = due[0]
    page = questionnaire_page(instrument=current["instrument"], pairwise=current["pairwise"])
    return render(
        request,
        "studies/reader/questionnaire.html",
        {
            "study": enrollment.study,
            "session_number": current["session_index"] + 1,
            "session_index": current["session_index"],
            "remaining": len(due),
            "questionnaire": _with_choices(page, request.POST if problems else None),
            "client_key": client_key or uuid.uuid4(),
            "problems": list(problems),
        },
        status=status,
    )


def _submit(request, enrollment, due: list[dict]) -> list[str]:
    """Store the posted answers; the problems when they are refused."""
    instrument = request.POST.get("instrument", "")
    try:
        session_index = int(request.POST.get("session_index", ""))
    except ValueError:
        return ["the form was incomplete; answer the questionnaire again"]
    if instrument not in INSTRUMENTS:
        return ["the form was incomplete; answer the questionnaire again"]
    entry = next(
        (d for d in due if (d["instrument"], d["session_index"]) == (instrument, session_index)),
        {"pairwise": False},  # not due (any more): the service replays or refuses it
    )
    _, problems = attempt(
        questionnaire_submit,
        acting_user=request.user,
        enrollment=enrollment,
        instrument=instrument,
        session_index=session_index,
        answers=_answers(request.POST, instrument, entry["pairwise"]),
        client_key=request.POST.get("client_key", ""),
    )
    return _readable(problems, instrument)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reader_questionnaire(request, study_id: int):
    enrollment = reader_selectors.reader_enrollment_get(user=request.user, study_id=study_id)
    if reader_refusal(user=request.user, enrollment=enrollment) is not None:
        return redirect("studies:reader-study", study_id=study_id)  # it says why (closed, consent)
    due = questionnaires_due(enrollment=enrollment)
    if request.method == "POST":
        problems = _submit(request, enrollment, due)
        if problems and due:
            key = request.POST.get("client_key", "")
            return _page(
                request, enrollment, due, problems=problems, client_key=key, status=BAD_INPUT
            )
        if problems:  # nothing is due any more: the study page comes next
            flash_problems(request, problems)
        else:
            messages.success(request, "Thank you: your answers are recorded.")
        return redirect("studies:reader-questionnaire", study_id=study_id)
    if not due:
        return redirect("studies:reader-study", study_id=study_id)
    return _page(request, enrollment, due)
