"""Reads that reach a reader's browser; the rules they follow (may the reader act, which stages
and questions a trial has) are in `studies.selectors.reading`. Everything here is blind by
construction: it never returns an arm's code, kind or explainer, a case's key, labels or ground
truth (except the training feedback after a training trial is answered), or whether the AI is
right. Files are addressed through the trial's opaque uid."""

from __future__ import annotations

from django.http import Http404
from django.urls import reverse

from explain.models import Prediction
from library.models import Case, CaseLabel
from studies.models import Enrollment, Response, Study, StudyCase, Trial
from studies.selectors.explanations import explanation_is_empty
from studies.selectors.progress import enrollment_sessions
from studies.selectors.reading import (
    enrollment_has_consented,
    questions_for,
    trial_explanation,
    trial_stages,
)
from studies.selectors.truth import case_truth

EMPTY_OVERLAY = {"url": None, "empty": True}
"""The overlay of a heatmap that highlights no region: no image, the same for every explainer
and placebo; the page shows a neutral "No region highlighted" note instead of the overlay."""

# Standard windows offered besides the file's own (center, width), by modality.
MODALITY_PRESETS = {
    "CT": [("Lung", -600, 1500), ("Mediastinum", 50, 350), ("Bone", 400, 1800), ("Brain", 40, 80)],
    "MR": [],
    "CR": [],
    "DX": [],
}


def reader_enrollments(*, user) -> list[dict]:
    rows = []
    enrollments = (
        Enrollment.objects.filter(reader=user).select_related("study").order_by("-enrolled_at")
    )
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


def reader_enrollment_get(*, user, study_id: int) -> Enrollment:
    enrollment = (
        Enrollment.objects.select_related("study").filter(reader=user, study_id=study_id).first()
    )
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


def _ai_visible(trial: Trial, stages: list[str]) -> bool:
    if not trial.arm.shows_ai:
        return False
    if len(stages) == 1:
        return trial.state != Trial.State.PENDING
    return trial.state in (Trial.State.REVEALED, Trial.State.DONE)


def _file_url(trial: Trial, name: str) -> str:
    return reverse("studies:reader-trial-file", kwargs={"trial_uid": trial.uid, "name": name})


def _questions(trial: Trial, study: Study, stage: str, explanation) -> list[dict]:
    return [
        {
            "key": q.key,
            "kind": q.kind,
            "text": q.text,
            "help_text": q.help_text,
            "options": q.options,
            "scale": q.scale,
            "points": q.points,
            "anchors": q.anchors,
            "required": q.required,
        }
        for q in questions_for(study=study, trial=trial, stage=stage, explanation=explanation)
    ]


def _image(case: Case, trial: Trial) -> dict:
    presets = [
        {
            "name": p.get("name") or f"File window {i + 1}",
            "center": p["center"],
            "width": p["width"],
        }
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


def _payload_stage(trial: Trial, stages: list[str]) -> str | None:
    """What the page asks for now: 'first', 'reveal', 'final' or None (done)."""
    if trial.state == Trial.State.DONE:
        return None
    if len(stages) == 2 and trial.state in (Trial.State.PENDING, Trial.State.SHOWN):
        return Response.Stage.FIRST
    if len(stages) == 2 and trial.state == Trial.State.FIRST_ANSWERED:
        return "reveal"
    return Response.Stage.FINAL


def _ai_output(trial: Trial, study: Study, explanation) -> dict:
    """The AI output and the explanation of a trial whose AI output may be shown now."""
    out: dict = {"ai": None, "overlay": None, "similar_cases": []}
    prediction = Prediction.objects.filter(model_id=study.model_id, case_id=trial.case_id).first()
    if prediction is not None:
        out["ai"] = {
            "label": prediction.predicted_class,
            "positive_class": study.model.positive_class,
            "positive_probability": round(prediction.positive_probability, 3),
        }
    if explanation is None:
        return out
    if trial.arm.shows_heatmap and explanation_is_empty(explanation=explanation):
        out["overlay"] = dict(EMPTY_OVERLAY)
    elif explanation.overlay_file:
        out["overlay"] = {"url": _file_url(trial, "overlay"), "empty": False}
    elif explanation.similar_cases:
        labels = _reference_labels([row["case_id"] for row in explanation.similar_cases], study)
        out["similar_cases"] = [
            {
                "url": _file_url(trial, f"similar-{index}"),
                "label": labels.get(row["case_id"], "unknown"),
            }
            for index, row in enumerate(explanation.similar_cases)
        ]
    return out


def _first_answer(trial: Trial, stage: str | None, stages: list[str]) -> dict | None:
    """The reader's own unaided answer, shown read-only beside the final questions."""
    if stage != Response.Stage.FINAL or len(stages) != 2:
        return None
    first = Response.objects.filter(trial=trial, stage=Response.Stage.FIRST).first()
    return dict(first.answers) if first is not None else None


def _feedback(trial: Trial, study: Study) -> dict | None:
    if trial.state != Trial.State.DONE or trial.kind != Trial.Kind.TRAINING:
        return None
    truth = case_truth(
        labels=dict(CaseLabel.objects.filter(case_id=trial.case_id).values_list("name", "value")),
        positive_class=study.model.positive_class,
    )
    positive = study.model.positive_class
    return {"truth": None if truth is None else (positive if truth else "no " + positive)}


def _clinical_history(trial: Trial) -> dict:
    """The case's own clinical history, in an arm that shows it (nothing otherwise: the page
    and its payload carry no trace of it)."""
    if not trial.arm.shows_clinical_history:
        return {}
    frozen = trial.session.enrollment.study.frozen_config or {}
    if "clinical_histories" in frozen:  # the texts as they were when the study opened
        return {"clinical_history": frozen["clinical_histories"].get(str(trial.case_id), "")}
    return {"clinical_history": trial.case.clinical_history}


def trial_payload(*, trial: Trial) -> dict:
    """What the trial page may show now, given the trial's state."""
    enrollment = trial.session.enrollment
    study = enrollment.study
    stages = trial_stages(trial=trial, study=study)
    stage = _payload_stage(trial, stages)
    session_trials = list(trial.session.trials.order_by("position").values_list("pk", flat=True))
    explanation = trial_explanation(trial=trial)  # looked up once: the overlay and the questions
    shown = _ai_output(trial, study, explanation) if _ai_visible(trial, stages) else {}
    overlay = shown.get("overlay")
    return {
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
        "questions": _questions(trial, study, stage, explanation)
        if stage in Response.Stage.values
        else [],
        "first_answer": _first_answer(trial, stage, stages),
        "ai": shown.get("ai"),
        "overlay": overlay,
        "overlay_url": overlay["url"] if overlay else None,
        "similar_cases": shown.get("similar_cases", []),
        "feedback": _feedback(trial, study),
        **_clinical_history(trial),
    }


def _reference_labels(case_ids: list[int], study: Study) -> dict[int, str]:
    """The labels shown under similar cases. A reference case that is also a case of the study
    (the engine takes its references from the collection) is 'unknown': its label is the
    ground truth of a case the study's readers read."""
    in_study = set(
        StudyCase.objects.filter(study=study, case_id__in=case_ids).values_list(
            "case_id", flat=True
        )
    )
    case_ids = [pk for pk in case_ids if pk not in in_study]
    labels: dict[int, dict[str, int]] = {pk: {} for pk in case_ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=case_ids).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    positive = study.model.positive_class
    out = {}
    for pk, found in labels.items():
        truth = case_truth(labels=found, positive_class=positive)
        out[pk] = "unknown" if truth is None else (positive if truth else "no " + positive)
    return out


def trial_file(*, trial: Trial, name: str):
    """(storage name, content type) of a file the trial page may load now, or Http404.

    `overlay` and `similar-N` exist only once the AI output is visible in this trial. `pixels` is
    the compressed 16-bit file (XRS pixels) when the case has one, else the float32 .npy (cases
    imported before it existed, or values with no exact 16-bit form); the viewer reads both."""
    study = trial.session.enrollment.study
    stages = trial_stages(trial=trial, study=study)
    case = trial.case
    if name in ("pixels", "display"):
        if name == "pixels":
            stored = case.pixels_encoded_file.name or case.pixels_file.name
        else:
            stored = case.display_file.name
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
