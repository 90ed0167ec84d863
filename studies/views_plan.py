"""The coordinator's Analysis plan page: the pre-registered analysis plan (primary endpoint,
figure of merit, comparisons, alpha, test) and the data-quality rules (attention-check
exclusion rule, fast-read threshold), fixed while the study is a draft and frozen, with the
plan's hash, when it opens (see `studies.services.plan`; `studies.views` for the rules every
page follows)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from core.pages import BAD_INPUT, attempt
from studies import services
from studies.models import Study
from studies.services.plan import PLAN_ENDPOINTS, PLAN_FOMS
from studies.views import _page, study_view

TEST_WORDS = {
    "or_rrrc": "Obuchowski–Rockette, random readers and cases (RRRC)",
    "or_frrc": "Obuchowski–Rockette, fixed readers, random cases (FRRC)",
    "glmm": "logistic mixed model (GLMM)",
}


class AnalysisPlanForm(forms.Form):
    primary_endpoint = forms.ChoiceField(choices=[(e, e) for e in PLAN_ENDPOINTS])
    fom = forms.ChoiceField(
        choices=[(f, f.replace("_", " ")) for f in PLAN_FOMS],
        label="Figure of merit",
        help_text="of an AUC endpoint",
    )
    comparisons = forms.CharField(
        help_text="pairs of arm codes, minuend first, separated by commas: e.g. B-A, C-A",
        max_length=500,
    )
    alpha = forms.FloatField(initial=0.05, help_text="above 0 and at most 0.5")
    test = forms.ChoiceField(choices=list(TEST_WORDS.items()))

    def plan(self) -> dict:
        data = self.cleaned_data
        pairs = [p.strip() for p in data["comparisons"].split(",") if p.strip()]
        return {
            "primary_endpoint": data["primary_endpoint"],
            "fom": data["fom"],
            "comparisons": [[c.strip() for c in pair.split("-")] for pair in pairs],
            "alpha": data["alpha"],
            "test": data["test"],
        }


class QualityRulesForm(forms.Form):
    attention_max_failures = forms.IntegerField(
        required=False,
        label="Exclude a reader who fails more than",
        help_text="attention checks (empty: no reader is excluded)",
    )
    fast_read_seconds = forms.FloatField(
        required=False,
        label="Flag reads shorter than (seconds)",
        help_text="empty: no read is flagged",
    )
    exclude_fast_reads = forms.BooleanField(
        required=False, label="Also leave flagged reads out of the analysis without exclusions"
    )

    def rules(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v is not None and v is not False}


def _initial_plan(study: Study) -> dict:
    plan = dict(study.analysis_plan or {})
    if plan.get("comparisons"):
        plan["comparisons"] = ", ".join("-".join(pair) for pair in plan["comparisons"])
    return plan


def _plan_page(request, study: Study, *, plan_form=None, rules_form=None, problems=(), status=200):
    # an opened study shows what was frozen with it (a study opened before plans existed: none)
    draft = study.status == Study.Status.DRAFT
    frozen = {} if draft else (study.frozen_config or {})
    return _page(
        request,
        study,
        "studies/study_plan.html",
        {
            "plan": study.analysis_plan if draft else frozen.get("analysis_plan", {}),
            "plan_sha256": frozen.get("analysis_plan_sha256"),
            "rules": study.quality_rules if draft else frozen.get("quality_rules", {}),
            "test_words": TEST_WORDS,
            "plan_form": plan_form or AnalysisPlanForm(initial=_initial_plan(study)),
            "rules_form": rules_form or QualityRulesForm(initial=study.quality_rules),
            "problems": list(problems),
        },
        status=status,
    )


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def study_plan(request, study: Study):
    """The page; a POST fixes the analysis plan (or, with `clear`, removes it)."""
    if request.method != "POST":
        return _plan_page(request, study)
    form = AnalysisPlanForm(request.POST)
    if "clear" in request.POST:
        plan = {}
    elif form.is_valid():
        plan = form.plan()
    else:
        return _plan_page(request, study, plan_form=form, status=BAD_INPUT)
    _, problems = attempt(
        services.study_analysis_plan_set, acting_user=request.user, study=study, plan=plan
    )
    if problems:
        return _plan_page(request, study, plan_form=form, problems=problems, status=BAD_INPUT)
    messages.success(request, "Analysis plan saved." if plan else "Analysis plan removed.")
    return redirect("studies:study-plan", study_id=study.pk)


@study_view(manage=True)
@require_POST
def study_quality_rules(request, study: Study):
    """Fix the attention-check exclusion rule and the fast-read threshold."""
    form = QualityRulesForm(request.POST)
    if not form.is_valid():
        return _plan_page(request, study, rules_form=form, status=BAD_INPUT)
    _, problems = attempt(
        services.study_quality_rules_set,
        acting_user=request.user,
        study=study,
        rules=form.rules(),
    )
    if problems:
        return _plan_page(request, study, rules_form=form, problems=problems, status=BAD_INPUT)
    messages.success(request, "Data-quality rules saved.")
    return redirect("studies:study-plan", study_id=study.pk)
