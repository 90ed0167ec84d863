"""What stands between a draft and opening it, said once: the coordinator's checklist (one step
per part of the configuration) and `study_problems` (everything that stops the study from
opening) read the same facts through the same checks; `study_warnings` lists what the
coordinator should know without stopping it."""

from __future__ import annotations

from dataclasses import dataclass

from library.models import Case, CaseLabel
from studies import blinding, randomization
from studies.models import NEUTRAL_READER_TITLE, Arm, Question, Study, StudyCase, StudyRole
from studies.selectors.configuration import study_case_ids
from studies.selectors.readiness import arm_readiness, study_ai_wrong, study_empty_explanations
from studies.selectors.truth import case_ai_correctness


@dataclass(frozen=True)
class _Draft:
    """The parts of a study's configuration the checks read, loaded once."""

    study: Study
    cases: dict[str, list[int]]
    arms: list[Arm]
    questions: list[Question]

    @classmethod
    def load(cls, study: Study) -> _Draft:
        return cls(
            study=study,
            cases=study_case_ids(study=study),
            arms=list(study.arms.order_by("code")),
            questions=list(study.questions.all()),
        )

    @property
    def main(self) -> list[int]:
        return self.cases[StudyCase.Role.MAIN]


# The checks -----------------------------------------------------------------------------------


def _details_problems(study: Study) -> list[str]:
    problems = []
    if not study.title.strip():
        problems.append("the study has no title")
    if not study.consent_text.strip():
        problems.append("the study has no consent text")
    if study.model_id is None:
        problems.append("choose the model whose outputs the study shows")
    if not study.collections.exists():
        problems.append("choose at least one case collection")
    return problems


_SHOWN_BY_ARMS = {
    Question.AppliesTo.AI: ("the AI output", lambda arm: arm.shows_ai),
    Question.AppliesTo.EXPLANATION: ("an explanation", lambda arm: arm.shows_explanation),
    Question.AppliesTo.HEATMAP: ("a heatmap", lambda arm: arm.shows_heatmap),
}


def _question_problems(draft: _Draft) -> list[str]:
    questions, arms = draft.questions, draft.arms
    problems = []
    if not questions:
        problems.append("the study has no questions")
    elif not _has_diagnosis(questions):
        problems.append("the study needs a diagnosis question (the analysis compares diagnoses)")
    for question in questions:
        if question.kind == Question.Kind.DIAGNOSIS and len(question.options) < 2:
            problems.append(f"question {question.key} has fewer than two options")
        shown = _SHOWN_BY_ARMS.get(question.applies_to)
        if shown is not None and not any(shown[1](arm) for arm in arms):
            problems.append(
                f"question {question.key} applies to arms that show {shown[0]}, but no arm does"
            )
    if (
        draft.study.protocol == Study.Protocol.TWO_STAGE
        and arms
        and not any(a.shows_ai for a in arms)
    ):
        problems.append("two-stage reading reveals the AI output, but no arm shows it")
    return problems


def _has_diagnosis(questions: list[Question]) -> bool:
    return any(q.kind == Question.Kind.DIAGNOSIS for q in questions)


def _design_problems(draft: _Draft) -> list[str]:
    """The schedule module's objections to the design (full sentences), checked once the study
    has both arms and main cases."""
    if not (draft.arms and draft.main):
        return []
    study = draft.study
    return randomization.validate_design(
        design=study.design,
        cases=draft.main,
        arms=[arm.code for arm in draft.arms],
        sessions=study.sessions,
        washout_days=study.washout_days,
        training_cases=draft.cases[StudyCase.Role.TRAINING],
        attention_cases=draft.cases[StudyCase.Role.ATTENTION],
    )


def _sentence_case(problems: list[str]) -> list[str]:
    """The schedule module writes full sentences; the problem lists here are lower-case clauses."""
    return [p[:1].lower() + p[1:].rstrip(".") for p in problems]


def _output_problems(draft: _Draft, readiness: list[dict]) -> list[str]:
    """Precomputed outputs missing, too few cases the AI gets wrong, training cases without a
    truth to show as feedback (checked once the study has a model and main cases)."""
    study = draft.study
    if not (study.model_id and draft.main):
        return []
    problems = [
        f"arm {row['code']}: {missing} of {row['cases']} cases have no precomputed {what} yet"
        " (run the precompute for this model and collection)"
        for row in readiness
        for what, missing in row["missing"].items()
    ]
    if study.min_ai_wrong_share:
        wrong = study_ai_wrong(study=study)
        share = wrong["ai_wrong_share"]
        if share is None or share < study.min_ai_wrong_share:
            problems.append(
                f"the AI is wrong on {wrong['ai_wrong_cases']} of {wrong['cases_with_known_correctness']}"
                f" main cases with known truth ({(share or 0):.0%}), below the required"
                f" {study.min_ai_wrong_share:.0%}; change the case selection"
            )
    training = draft.cases[StudyCase.Role.TRAINING]
    unknown_training = [
        pk
        for pk, ok in case_ai_correctness(model=study.model, case_ids=training).items()
        if ok is None and not CaseLabel.objects.filter(case_id=pk).exists()
    ]
    if unknown_training:
        problems.append(
            f"{len(unknown_training)} training case(s) have no ground truth to show as feedback"
        )
    return problems


# What readers of this module use --------------------------------------------------------------


def study_problems(*, study: Study) -> list[str]:
    """Everything that stops the study from opening, one sentence each (empty: it can open)."""
    draft = _Draft.load(study)
    problems = _details_problems(study)
    if not draft.arms:
        problems.append(
            "the study has no arms; add at least one (e.g. unaided and AI + explanation)"
        )
    problems += _question_problems(draft)
    if not draft.main:
        problems.append("the study has no main cases; choose its cases")
    problems += _sentence_case(_design_problems(draft))
    if study.model_id and draft.main:
        problems += _output_problems(draft, arm_readiness(study=study))
    return problems


def study_checklist(*, study: Study) -> list[dict]:
    """The draft's steps in the order a coordinator takes them: name, the page's url name,
    whether it is done, and a one-line summary."""
    draft = _Draft.load(study)
    readiness = arm_readiness(study=study)
    roles = list(study.roles.values_list("role", flat=True))
    return [
        {
            "name": "Details",
            "url": "studies:study-edit",
            "done": not _details_problems(study),
            "summary": (
                f"model {study.model.name if study.model_id else '(none)'} · "
                f"{study.collections.count()} collection(s) · "
                f"{'consent text written' if study.consent_text.strip() else 'no consent text'}"
            ),
        },
        {
            "name": "Cases",
            "url": "studies:study-cases",
            "done": bool(draft.main),
            "summary": ", ".join(f"{len(ids)} {role}" for role, ids in draft.cases.items()),
        },
        {
            "name": "Arms",
            "url": "studies:study-arms",
            "done": bool(draft.arms),
            "summary": " ".join(arm.code for arm in draft.arms) or "no arms",
        },
        {
            "name": "Questions",
            "url": "studies:study-questions",
            "done": _has_diagnosis(draft.questions),
            "summary": f"{len(draft.questions)} question(s)",
        },
        _design_step(draft),
        {
            "name": "People",
            "url": "studies:study-people",
            "done": StudyRole.Role.READER in roles or study.invitations.exists(),
            "summary": (
                f"{roles.count(StudyRole.Role.COORDINATOR)} coordinator(s), "
                f"{roles.count(StudyRole.Role.STATISTICIAN)} statistician(s), "
                f"{roles.count(StudyRole.Role.READER)} reader(s)"
            ),
        },
        {
            "name": "Readiness",
            "url": "studies:study-readiness",
            "done": bool(readiness) and all(row["ready"] for row in readiness),
            "summary": f"{sum(row['ready'] for row in readiness)} of {len(readiness)} arm(s) ready",
        },
    ]


def _design_step(draft: _Draft) -> dict:
    """The design is chosen when the study is created (it has defaults); it is to do only while
    it does not fit the arms and cases (checked once both exist)."""
    study = draft.study
    problems = _design_problems(draft)
    summary = (
        f"{study.get_design_display()} · {study.get_protocol_display()} · "
        f"{study.sessions} session(s), washout {study.washout_days} day(s)"
    )
    if problems:
        summary += f" · {problems[0]}"
    elif not (draft.arms and draft.main):
        summary += " · checked against the arms and cases once both exist"
    return {"name": "Design", "url": "studies:study-edit", "done": not problems, "summary": summary}


def study_reader_text_warnings(*, study: Study) -> list[str]:
    """Reader-facing texts that name an explainer or an arm kind (studies.blinding)."""
    texts: dict[str, str | list[str]] = {
        "The reader-facing title": study.reader_title,
        "The reader-facing description": study.reader_description,
        "The instructions": study.instructions,
        "The consent text": study.consent_text,
    }
    for question in study.questions.all():
        texts[f"Question {question.key}"] = [
            question.text,
            question.help_text,
            *map(str, question.options),
            *map(str, question.anchors),
        ]
    return blinding.text_warnings(texts)


def study_cases_without_history(*, study: Study) -> int:
    """Cases of the study without a clinical history, when an arm shows it (else 0)."""
    if not study.arms.filter(shows_clinical_history=True).exists():
        return 0
    return Case.objects.filter(
        pk__in=study.study_cases.values("case_id"), clinical_history=""
    ).count()


def study_warnings(*, study: Study) -> list[str]:
    """What the coordinator should know before opening, without stopping it from opening:
    reader-facing texts that could unblind, empty explanations, no case the AI gets wrong."""
    warnings = study_reader_text_warnings(study=study)
    if not study.reader_title.strip():
        warnings.append(
            f"The study has no reader-facing title; readers will see '{NEUTRAL_READER_TITLE}'."
        )
    if not study.analysis_plan:
        warnings.append("no pre-registered analysis plan: every result will be marked exploratory")
    empty = study_empty_explanations(study=study)
    if empty:
        cases = len({row["case_id"] for row in empty})
        arms = ", ".join(sorted({row["arm"] for row in empty}))
        warnings.append(
            f"{len(empty)} explanation(s) on {cases} case(s) highlight no region (arm {arms}): readers "
            "will see 'No region highlighted'. Exclude those cases on the readiness page, or keep them"
            " (the analysis reports them)."
        )
    missing = study_cases_without_history(study=study)
    if missing:
        warnings.append(
            f"{missing} case(s) have no clinical history, but an arm shows it: readers will see "
            "'None given for this case.' there. Add the texts on the case pages or in the labels "
            "CSV, or accept it."
        )
    if study.model_id and study.arms.exclude(kind=Arm.Kind.UNAIDED).exists():
        wrong = study_ai_wrong(study=study)
        if (
            wrong["main_cases"]
            and wrong["cases_with_known_correctness"]
            and not wrong["ai_wrong_cases"]
        ):
            warnings.append(
                f"The AI is wrong on 0 of {wrong['cases_with_known_correctness']} main cases with known "
                "truth: over- and under-reliance on the AI cannot be measured. Add cases the AI gets "
                "wrong (or set a minimum share of AI-wrong cases)."
            )
    return warnings
