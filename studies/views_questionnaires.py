"""The coordinator's page of a study's end-of-session questionnaires (see `studies.views` for the
rules every page follows): which instruments readers answer, after each session or after the
last one, and whether NASA-TLX asks its 15 pairwise comparisons. Changed while a draft only."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from core.pages import BAD_INPUT, attempt
from studies import services
from studies.models import Study
from studies.questionnaire_scoring import INSTRUMENTS, TLX
from studies.selectors.questionnaires import AFTER_CHOICES, EACH_SESSION
from studies.views import _page, study_view

AFTER_LABELS = {"each_session": "after each session", "last_session": "after the last session"}


def _rows(configured: list[dict]) -> list[dict]:
    """One row per instrument with its configured state (for the form)."""
    by_key = {entry.get("instrument"): entry for entry in configured}
    return [
        {
            "key": key,
            "name": instrument.name,
            "citation": instrument.citation,
            "items": len(instrument.items),
            "on": key in by_key,
            "after": by_key.get(key, {}).get("after", EACH_SESSION),
            "pairwise": bool(by_key.get(key, {}).get("pairwise")),
            "is_tlx": key == TLX.key,
        }
        for key, instrument in INSTRUMENTS.items()
    ]


def _parse(post) -> list[dict]:
    """The posted form as the service's configuration (the service checks the values)."""
    chosen = []
    for key in INSTRUMENTS:
        if post.get(f"{key}_on"):
            entry = {"instrument": key, "after": post.get(f"{key}_after", "")}
            if key == TLX.key:
                entry["pairwise"] = bool(post.get(f"{key}_pairwise"))
            chosen.append(entry)
    return chosen


def _questionnaires_page(request, study: Study, configured, problems=(), status: int = 200):
    return _page(
        request,
        study,
        "studies/study_questionnaires.html",
        {
            "rows": _rows(configured),
            "after_choices": [(a, AFTER_LABELS[a]) for a in AFTER_CHOICES],
            "problems": list(problems),
        },
        status=status,
    )


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def study_questionnaires(request, study: Study):
    if request.method == "POST":
        configured = _parse(request.POST)
        _, problems = attempt(
            services.study_questionnaires_set,
            acting_user=request.user,
            study=study,
            questionnaires=configured,
        )
        if problems:
            return _questionnaires_page(request, study, configured, problems, status=BAD_INPUT)
        messages.success(request, "Questionnaires saved.")
        return redirect("studies:study-questionnaires", study_id=study.pk)
    return _questionnaires_page(request, study, list(study.questionnaires or []))
