"""The sample-size page of a study: power for readers x cases, or the readers or cases needed
for a target power, with the study's own AUC OR analysis as the pilot (Hillis, Obuchowski &
Berbaum 2011). Same permission rule as the reports page: the study's coordinators and
statistician; anyone else gets 404."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from analysis.forms_power import PowerForm
from analysis.selectors import study_pilot
from studies.models import Study, StudyRole
from studies.selectors import study_can_manage, study_can_view, study_has_role


@login_required
@require_http_methods(["GET", "POST"])
def study_power(request, study_id: int):
    study = get_object_or_404(Study, pk=study_id)
    if not study_can_view(study=study, user=request.user):
        raise Http404("no such study")
    pilot = study_pilot(study=study)
    form = PowerForm(request.POST if request.method == "POST" else None, pilot=pilot)
    result = form.plan() if form.is_bound and form.is_valid() else None
    return render(
        request,
        "analysis/power.html",
        {
            "study": study,
            "pilot": pilot,
            "form": form,
            "plan": result,
            "needed": [("Cases", result.cases_needed), ("Readers", result.readers_needed)]
            if result
            else [],
            "is_statistician": study_has_role(
                study=study, user=request.user, role=StudyRole.Role.STATISTICIAN
            ),
            "can_manage": study_can_manage(study=study, user=request.user),
            "is_draft": study.status == Study.Status.DRAFT,
        },
    )
