"""Reads that reach a reader's browser. Everything here is blind by construction: it never
returns an arm's code, kind or explainer, a case's key, labels or ground truth (except the
training feedback after a training trial is answered), or whether the AI is right. Files are
addressed through the trial's opaque uid."""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse

from explain.models import Case, CaseLabel, Explanation, Prediction
from studies.models import Arm, Enrollment, Response, Study, StudyCase, Trial
from studies.selectors import case_truth, enrollment_sessions
from studies.services.reading import questions_for, trial_stages

# Standard windows offered besides the file's own (center, width), by modality.
MODALITY_PRESETS = {
    "CT": [("Lung", -600, 1500), ("Mediastinum", 50, 350), ("Bone", 400, 1800), ("Brain", 40, 80)],
    "MR": [],
    "CR": [],
    "DX": [],
}


def reader_enrollments(*, user) -> list[dict]:
    rows = []
    enrollments = Enrollment.objects.filter(reader=user).select_related("study").order_by("-enrolled_at")
    for enrollment in enrollments:
        sessions = enrollment_sessions(enrollment=enrollment)
        rows.append(
            {
                "enrollment": enrollment,
                "study": enrollment.study,
                "consented": enrollment_has_consented(enrollment=enrollment),
                "trials_total": sum(s["trials"] for s in sessions),
                "trials_done": sum(s["done"] for s in sessions),
                "sessions": sessions,
            }
        )
    return rows


def enrollment_has_consented(*, enrollment: Enrollment) -> bool:
    return enrollment.consented_at is not None and enrollment.consent_version == enrollment.study.consent_version


def reader_enrollment_get(*, user, study_id: int) -> Enrollment:
    enrollment = Enrollment.objects.select_related("study").filter(reader=user, study_id=study_id).first()
    if enrollment is None:
        raise Http404("no such study")
    return enrollment


def reader_trial_get(*, user, trial_uid) -> Trial:
    trial = (
        Trial.objects.select_related("session__enrollment__study", "arm", "case")
        .filter(uid=trial_uid, session__enrollment__reader=user)
        .first()
    )
    if trial is None:
        raise Http404("no such trial")
    return trial


def enrollment_next_trial(*, enrollment: Enrollment) -> Trial | None:
    return (
        Trial.objects.filter(session__enrollment=enrollment)
        .exclude(state=Trial.State.DONE)
        .select_related("session")
        .order_by("session__index", "position")
        .first()
    )


def _ai_visible(trial: Trial, stages: list[str]) -> bool:
    if not trial.arm.shows_ai:
        return False
    if len(stages) == 1:
        return trial.state != Trial.State.PENDING
    return trial.state in (Trial.State.REVEALED, Trial.State.DONE)


def _file_url(trial: Trial, name: str) -> str:
    return reverse("studies:reader-trial-file", kwargs={"trial_uid": trial.uid, "name": name})


def trial_explanation(*, trial: Trial) -> Explanation | None:
    """The explanation the trial's arm shows (placebo or real), or None."""
    arm = trial.arm
    if not arm.shows_explanation:
        return None
    study = trial.session.enrollment.study
    return Explanation.objects.filter(
        model_id=study.model_id, case_id=trial.case_id, explainer=arm.explainer,
        placebo=arm.kind == Arm.Kind.PLACEBO, param_hash=arm.param_hash,
    ).first()


def _questions(trial: Trial, study: Study, stage: str) -> list[dict]:
    return [
        {
            "key": q.key, "kind": q.kind, "text": q.text, "help_text": q.help_text, "options": q.options,
            "scale": q.scale, "points": q.points, "anchors": q.anchors, "required": q.required,
        }
        for q in questions_for(study=study, trial=trial, stage=stage)
    ]


def _image(case: Case, trial: Trial) -> dict:
    presets = [
        {"name": p.get("name") or f"File window {i + 1}", "center": p["center"], "width": p["width"]}
        for i, p in enumerate(case.window_presets or [])
        if p.get("center") is not None and p.get("width")
    ]
    presets += [
        {"name": name, "center": center, "width": width}
        for name, center, width in MODALITY_PRESETS.get(case.modality, [])
    ]
    return {
        "rows": case.rows,
        "columns": case.columns,
        "modality": case.modality,
        "monochrome1": case.photometric == "MONOCHROME1",
        "is_color": case.is_color,
        "value_min": case.value_min,
        "value_max": case.value_max,
        "presets": presets,
        "pixels_url": _file_url(trial, "pixels"),
        "display_url": _file_url(trial, "display"),
    }


def trial_payload(*, trial: Trial) -> dict:
    """What the trial page may show now, given the trial's state."""
    enrollment = trial.session.enrollment
    study = enrollment.study
    stages = trial_stages(trial=trial, study=study)
    if trial.state == Trial.State.DONE:
        stage = None
    elif len(stages) == 2 and trial.state in (Trial.State.PENDING, Trial.State.SHOWN):
        stage = Response.Stage.FIRST
    elif len(stages) == 2 and trial.state == Trial.State.FIRST_ANSWERED:
        stage = "reveal"
    else:
        stage = Response.Stage.FINAL
    session_trials = list(trial.session.trials.order_by("position").values_list("pk", flat=True))
    payload: dict = {
        "trial": str(trial.uid),
        "state": trial.state,
        "stage": stage,
        "two_stage": len(stages) == 2,
        "training": trial.kind == Trial.Kind.TRAINING,
        "session": trial.session.index + 1,
        "sessions": enrollment.sessions.count(),
        "position": session_trials.index(trial.pk) + 1,
        "trials_in_session": len(session_trials),
        "image": _image(trial.case, trial),
        "questions": _questions(trial, study, stage) if stage in Response.Stage.values else [],
        "ai": None,
        "overlay_url": None,
        "similar_cases": [],
        "feedback": None,
    }
    if _ai_visible(trial, stages):
        prediction = Prediction.objects.filter(model_id=study.model_id, case_id=trial.case_id).first()
        if prediction is not None:
            payload["ai"] = {
                "label": prediction.predicted_class,
                "positive_class": study.model.positive_class,
                "positive_probability": round(prediction.positive_probability, 3),
            }
        explanation = trial_explanation(trial=trial)
        if explanation is not None and explanation.overlay_file:
            payload["overlay_url"] = _file_url(trial, "overlay")
        elif explanation is not None and explanation.similar_cases:
            labels = _reference_labels([row["case_id"] for row in explanation.similar_cases], study)
            payload["similar_cases"] = [
                {"url": _file_url(trial, f"similar-{index}"), "label": labels.get(row["case_id"], "unknown")}
                for index, row in enumerate(explanation.similar_cases)
            ]
    if trial.state == Trial.State.DONE and trial.kind == Trial.Kind.TRAINING:
        truth = case_truth(
            labels=dict(CaseLabel.objects.filter(case_id=trial.case_id).values_list("name", "value")),
            positive_class=study.model.positive_class,
        )
        payload["feedback"] = {
            "truth": None if truth is None else (study.model.positive_class if truth else "no " + study.model.positive_class)
        }
    return payload


def _reference_labels(case_ids: list[int], study: Study) -> dict[int, str]:
    """The labels shown under similar cases. A reference case that is also a case of the study
    (the engine takes its references from the collection) is 'unknown': its label is the
    ground truth of a case the study's readers read."""
    in_study = set(
        StudyCase.objects.filter(study=study, case_id__in=case_ids).values_list("case_id", flat=True)
    )
    case_ids = [pk for pk in case_ids if pk not in in_study]
    labels: dict[int, dict[str, int]] = {pk: {} for pk in case_ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=case_ids).values_list("case_id", "name", "value"):
        labels[case_id][name] = value
    positive = study.model.positive_class
    out = {}
    for pk, found in labels.items():
        truth = case_truth(labels=found, positive_class=positive)
        out[pk] = "unknown" if truth is None else (positive if truth else "no " + positive)
    return out


def trial_file(*, trial: Trial, name: str):
    """(storage name, content type) of a file the trial page may load now, or Http404.

    `overlay` and `similar-N` exist only once the AI output is visible in this trial."""
    study = trial.session.enrollment.study
    stages = trial_stages(trial=trial, study=study)
    case = trial.case
    if name in ("pixels", "display"):
        stored = case.pixels_file.name if name == "pixels" else case.display_file.name
        if not stored:
            raise Http404("not available")
        return stored, "application/octet-stream" if name == "pixels" else "image/png"
    if not _ai_visible(trial, stages):
        raise Http404("not available")
    explanation = trial_explanation(trial=trial)
    if explanation is None:
        raise Http404("not available")
    if name == "overlay" and explanation.overlay_file:
        return explanation.overlay_file.name, "image/png"
    if name.startswith("similar-") and name[8:].isdigit():
        index = int(name[8:])
        if index < len(explanation.similar_cases):
            reference = Case.objects.filter(pk=explanation.similar_cases[index]["case_id"]).first()
            if reference is not None:
                return reference.thumbnail_file.name, "image/png"
    raise Http404("not available")
