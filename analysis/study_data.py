"""A study's data as the analysis and the exports see it (reads the studies and explain apps).

Readers appear as pseudonymous codes (R01, R02… in enrollment order), never by account name;
arms as their codes. The explainer behind an arm is included only when `unblinded` (the
statistician's report and export).

Each trial whose arm shows a heatmap is marked with whether that heatmap was *empty* (readers
saw "No region highlighted"; `studies.selectors.explanation_is_empty`, rule
`explain.compute.heatmaps.EMPTY_RULE`): `StudyRows.empty_explanations` maps (arm id, case id)
to True/False for the heatmap arms (absent: no heatmap, or no stored map), and each `Read`
carries it as `explanation_empty`.
"""

from __future__ import annotations

import platform
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata

from analysis.stats.reads import Read
from explain.models import Explanation, Prediction
from library.models import CaseLabel
from studies.models import Arm, Question, Response, Study, Trial
from studies.selectors import case_truth, explanation_is_empty

LIBRARIES = (
    "django",
    "numpy",
    "scipy",
    "statsmodels",
    "matplotlib",
    "torch",
    "captum",
    "weasyprint",
)
INTERACTION_COLUMNS = (
    "window_changes",
    "zoom_changes",
    "pan_changes",
    "invert_toggles",
    "resets",
    "overlay_toggles",
    "overlay_visible_ms",
    "overlay_opacity",
    "presets_used",
    "viewer_ms",
)
# Explanation-quality metrics carried from the engine into the analysis, per case and arm.
METRIC_NAMES = (
    "deletion_auc",
    "insertion_auc",
    "pointing_game",
    "relevance_mass",
    "topk_iou",
    "sanity_rank_correlation",
    "max_sensitivity",
)


def reader_code(index: int) -> str:
    return f"R{index + 1:02d}"


@dataclass
class StudyRows:
    """Everything the exports and the analysis need, read once."""

    study: Study
    trials: list[Trial]
    responses: dict[int, dict[str, Response]]  # trial id -> stage -> response
    truth: dict[int, bool | None]
    predictions: dict[int, Prediction]
    diagnosis_key: str | None
    confidence_key: str | None
    likert_keys: list[str]
    questions: list[Question]
    # (arm id, case id) -> whether the heatmap that arm shows for the case is empty
    empty_explanations: dict[tuple[int, int], bool] = field(default_factory=dict)

    def explanation_empty(self, trial: Trial) -> bool | None:
        """True/False for a trial whose arm shows a heatmap; None otherwise (or no map)."""
        return self.empty_explanations.get((trial.arm_id, trial.case_id))


def study_rows(*, study: Study) -> StudyRows:
    trials = list(
        Trial.objects.filter(session__enrollment__study=study)
        .select_related("session__enrollment__reader__reader_profile", "arm", "case")
        .order_by("session__enrollment__reader_index", "session__index", "position")
    )
    responses: dict[int, dict[str, Response]] = defaultdict(dict)
    for response in Response.objects.filter(trial__session__enrollment__study=study):
        responses[response.trial_id][response.stage] = response
    case_ids = {t.case_id for t in trials}
    labels: dict[int, dict[str, int]] = {pk: {} for pk in case_ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=case_ids).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    positive = study.model.positive_class if study.model_id else ""
    truth = {pk: case_truth(labels=found, positive_class=positive) for pk, found in labels.items()}
    predictions = {
        p.case_id: p
        for p in Prediction.objects.filter(model_id=study.model_id, case_id__in=case_ids)
    }
    questions = list(study.questions.all())
    diagnosis = next((q.key for q in questions if q.kind == Question.Kind.DIAGNOSIS), None)
    confidence = next((q.key for q in questions if q.kind == Question.Kind.CONFIDENCE), None)
    likert = [q.key for q in questions if q.kind == Question.Kind.LIKERT]
    return StudyRows(
        study,
        trials,
        dict(responses),
        truth,
        predictions,
        diagnosis,
        confidence,
        likert,
        questions,
        empty_explanations=empty_explanations(study=study, case_ids=case_ids),
    )


def empty_explanations(*, study: Study, case_ids) -> dict[tuple[int, int], bool]:
    """(arm id, case id) -> whether the stored heatmap of that arm for that case is empty, for
    every arm that shows a heatmap (the map of (study.model, case, arm.explainer, placebo,
    arm.param_hash); cases without a stored map are absent)."""
    if study.model_id is None:
        return {}
    out = {}
    for arm in study.arms.all():
        if not arm.shows_heatmap:
            continue
        for explanation in Explanation.objects.filter(
            model_id=study.model_id,
            case_id__in=list(case_ids),
            explainer=arm.explainer,
            placebo=arm.kind == Arm.Kind.PLACEBO,
            param_hash=arm.param_hash,
        ).only("id", "case_id", "explainer", "highlighted_fraction", "raw_max"):
            out[(arm.pk, explanation.case_id)] = explanation_is_empty(explanation=explanation)
    return out


def ordinal_rank(question: Question, answer) -> int | None:
    """The rank (1 = the first, lowest category) of an ordered-category answer; None when the
    question is not ordinal or the answer is not one of its labels."""
    if question.kind != Question.Kind.ORDINAL or not isinstance(answer, str):
        return None
    options = list(question.options)
    return options.index(answer) + 1 if answer in options else None


def _positive(answer, positive_class: str) -> bool | None:
    if answer is None:
        return None
    return answer == positive_class


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def study_reads(rows: StudyRows) -> list[Read]:
    """One Read per finished trial (main, training and attention; the analysis keeps main)."""
    positive = rows.study.model.positive_class if rows.study.model_id else ""
    reads = []
    for trial in rows.trials:
        stages = rows.responses.get(trial.pk, {})
        final = stages.get(Response.Stage.FINAL)
        if final is None:
            continue
        first = stages.get(Response.Stage.FIRST)
        enrollment = trial.session.enrollment
        profile = getattr(enrollment.reader, "reader_profile", None)
        prediction = rows.predictions.get(trial.case_id)
        seconds = (
            (trial.completed_at - trial.started_at).total_seconds()
            if trial.completed_at and trial.started_at
            else None
        )
        reads.append(
            Read(
                reader=reader_code(enrollment.reader_index),
                case=trial.case.key,
                arm=trial.arm.code,
                kind=trial.kind,
                truth=rows.truth.get(trial.case_id),
                first_positive=_positive(first.answers.get(rows.diagnosis_key), positive)
                if first
                else None,
                final_positive=_positive(final.answers.get(rows.diagnosis_key), positive),
                first_confidence=_number(first.answers.get(rows.confidence_key)) if first else None,
                final_confidence=_number(final.answers.get(rows.confidence_key)),
                ai_shown=trial.arm.shows_ai,
                ai_positive=(prediction.predicted_class == positive)
                if (prediction and trial.arm.shows_ai)
                else None,
                ratings={
                    k: final.answers[k]
                    for k in rows.likert_keys
                    if isinstance(final.answers.get(k), int)
                },
                seconds=seconds,
                final_seconds=final.seconds_on_stage,
                reader_experience=float(profile.years_experience)
                if profile is not None and profile.years_experience is not None
                else None,
                explanation_empty=rows.explanation_empty(trial),
            )
        )
    return reads


def arm_metrics(rows: StudyRows) -> dict[str, dict[str, dict[str, float]]]:
    """Arm code -> case key -> explanation-quality metrics of the explanation that arm shows."""
    study = rows.study
    keys = {t.case_id: t.case.key for t in rows.trials}
    result: dict[str, dict[str, dict[str, float]]] = {}
    for arm in study.arms.all():
        if not arm.shows_explanation:
            continue
        explanations = Explanation.objects.filter(
            model_id=study.model_id,
            case_id__in=list(keys),
            explainer=arm.explainer,
            placebo=arm.kind == Arm.Kind.PLACEBO,
            param_hash=arm.param_hash,
        ).values_list("case_id", "metrics")
        result[arm.code] = {
            keys[case_id]: {
                name: float(value)
                for name, value in (metrics or {}).items()
                if name in METRIC_NAMES
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            }
            for case_id, metrics in explanations
        }
    return result


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
