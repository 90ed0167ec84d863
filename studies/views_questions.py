"""Coordinator pages of a study's arms and questions (see `studies.views` for the rules every
page follows). Questions are added, edited and moved up or down while the study is a draft."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods, require_POST

from core.pages import BAD_INPUT, attempt
from studies import selectors, services
from studies.forms import ArmClinicalHistoryForm, ArmForm, QuestionForm, QuestionMoveForm
from studies.models import Arm, Question, Study
from studies.views import _page, study_view

# Arms ---------------------------------------------------------------------------------------


def _arms_page(request, study: Study, form: ArmForm, problems=(), status: int = 200):
    arms = [
        {"arm": arm, "condition": selectors.arm_condition(arm=arm, study=study)}
        for arm in study.arms.order_by("code")
    ]
    return _page(
        request,
        study,
        "studies/study_arms.html",
        {"arms": arms, "form": form, "problems": list(problems)},
        status=status,
    )


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def study_arms(request, study: Study):
    form = ArmForm(request.POST or None, study=study)
    if request.method == "POST":
        if not form.is_valid():
            return _arms_page(request, study, form, status=BAD_INPUT)
        arm, problems = attempt(
            services.arm_add, acting_user=request.user, study=study, **form.cleaned_data
        )
        if problems:
            return _arms_page(request, study, form, problems, status=BAD_INPUT)
        messages.success(request, f"Arm {arm.code} added.")
        return redirect("studies:study-arms", study_id=study.pk)
    return _arms_page(request, study, form)


@study_view(manage=True)
@require_POST
def arm_remove(request, study: Study, arm_id: int):
    arm = get_object_or_404(Arm, pk=arm_id, study=study)
    _, problems = attempt(services.arm_remove, acting_user=request.user, arm=arm)
    if problems:
        return _arms_page(request, study, ArmForm(study=study), problems, status=BAD_INPUT)
    messages.success(request, f"Arm {arm.code} removed.")
    return redirect("studies:study-arms", study_id=study.pk)


@study_view(manage=True)
@require_POST
def arm_clinical_history(request, study: Study, arm_id: int):
    """Show or hide the cases' clinical history in a draft's arm."""
    arm = get_object_or_404(Arm, pk=arm_id, study=study)
    form = ArmClinicalHistoryForm(request.POST)
    form.is_valid()  # an unchecked box (or none) is False
    shown = form.cleaned_data.get("shows_clinical_history", False)
    _, problems = attempt(
        services.arm_update, acting_user=request.user, arm=arm, shows_clinical_history=shown
    )
    if problems:
        return _arms_page(request, study, ArmForm(study=study), problems, status=BAD_INPUT)
    state = "shows" if shown else "hides"
    messages.success(request, f"Arm {arm.code} now {state} the clinical history.")
    return redirect("studies:study-arms", study_id=study.pk)


# Questions ----------------------------------------------------------------------------------


def _questions_page(request, study: Study, form: QuestionForm, problems=(), status: int = 200):
    questions = list(study.questions.all())
    return _page(
        request,
        study,
        "studies/study_questions.html",
        {
            "questions": questions,
            "last": len(questions) - 1,
            "form": form,
            "problems": list(problems),
        },
        status=status,
    )


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def study_questions(request, study: Study):
    form = QuestionForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return _questions_page(request, study, form, status=BAD_INPUT)
        question, problems = attempt(
            services.question_add, acting_user=request.user, study=study, **form.service_values()
        )
        if problems:
            return _questions_page(request, study, form, problems, status=BAD_INPUT)
        messages.success(request, f"Question {question.key} added.")
        return redirect("studies:study-questions", study_id=study.pk)
    return _questions_page(request, study, form)


@study_view(manage=True)
@require_http_methods(["GET", "POST"])
def question_edit(request, study: Study, question_id: int):
    """Change a question of a draft (its kind too; fields of other kinds are dropped)."""
    question = get_object_or_404(Question, pk=question_id, study=study)
    form = QuestionForm.for_question(question, request.POST or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        _, problems = attempt(
            services.question_update,
            acting_user=request.user,
            question=question,
            **form.service_values(),
        )
        if not problems:
            messages.success(request, f"Question {question.key} saved.")
            return redirect("studies:study-questions", study_id=study.pk)
    status = BAD_INPUT if problems or form.errors else 200
    return _page(
        request,
        study,
        "studies/question_edit.html",
        {"question": question, "form": form, "problems": problems},
        status=status,
    )


@study_view(manage=True)
@require_POST
def question_move(request, study: Study, question_id: int):
    question = get_object_or_404(Question, pk=question_id, study=study)
    form = QuestionMoveForm(request.POST)
    if not form.is_valid():
        return _questions_page(
            request,
            study,
            QuestionForm(),
            ["choose to move the question up or down"],
            status=BAD_INPUT,
        )
    _, problems = attempt(
        services.question_move,
        acting_user=request.user,
        question=question,
        direction=form.cleaned_data["direction"],
    )
    if problems:
        return _questions_page(request, study, QuestionForm(), problems, status=BAD_INPUT)
    messages.success(request, f"Question {question.key} moved {form.cleaned_data['direction']}.")
    return redirect("studies:study-questions", study_id=study.pk)


@study_view(manage=True)
@require_POST
def questions_defaults(request, study: Study):
    added, problems = attempt(
        services.questions_add_defaults, acting_user=request.user, study=study
    )
    if problems:
        return _questions_page(request, study, QuestionForm(), problems, status=BAD_INPUT)
    if added:
        messages.success(request, f"Added {', '.join(q.key for q in added)}.")
    else:
        messages.info(request, "The study already has every default question.")
    return redirect("studies:study-questions", study_id=study.pk)


@study_view(manage=True)
@require_POST
def question_remove(request, study: Study, question_id: int):
    question = get_object_or_404(Question, pk=question_id, study=study)
    _, problems = attempt(services.question_remove, acting_user=request.user, question=question)
    if problems:
        return _questions_page(request, study, QuestionForm(), problems, status=BAD_INPUT)
    messages.success(request, f"Question {question.key} removed.")
    return redirect("studies:study-questions", study_id=study.pk)
