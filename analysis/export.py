"""A study's exports: long-format CSV (one row per reader x case x stage), its codebook, a
JSON snapshot that lets anyone reproduce the analysis elsewhere, and the rating files of other
MRMC software (iMRMC, MRMCaov, RJafroc: ``interop_export``)."""

from __future__ import annotations

import csv
import datetime
import io

from django.db import transaction
from django.utils import timezone

from analysis.stats import formats
from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.reads import to_mrmc_data
from analysis.study_data import (
    INTERACTION_COLUMNS,
    StudyRows,
    library_versions,
    ordinal_rank,
    reader_code,
    study_reads,
    study_rows,
)
from core import audit
from core.errors import ServiceError
from explain.compute.heatmaps import EMPTY_RULE
from studies.models import Question, Response, Study, Trial
from studies.selectors import study_can_view

# format -> (content type, file name ending, what reads it)
INTEROP_FORMATS = {
    "imrmc": ("text/plain; charset=utf-8", "imrmc", "iMRMC (Java)"),
    "mrmcaov": ("text/csv; charset=utf-8", "csv", "MRMCaov (R)"),
    "rjafroc": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
        "RJafroc (R)",
    ),
}

BASE_COLUMNS = [
    ("reader", "text", "R01, R02… (enrollment order)", "Pseudonymous reader code"),
    ("reader_years_experience", "integer", "0–70 or blank", "Years of experience (reader profile)"),
    ("reader_specialty", "text", "free text or blank", "Specialty (reader profile)"),
    (
        "reader_is_radiologist",
        "boolean",
        "true, false or blank",
        "Whether the reader is a radiologist",
    ),
    ("case", "text", "case key", "Case identifier in the case library"),
    ("arm", "text", "A, B, C…", "Neutral arm code"),
    (
        "trial_kind",
        "text",
        "main, training, attention",
        "training: feedback shown, excluded from analysis; attention: attention-check case",
    ),
    ("session", "integer", "1…", "Session number in the reader's schedule"),
    ("position", "integer", "1…", "Position of the trial within its session"),
    (
        "stage",
        "text",
        "first, final",
        "first: unaided answer of a two-stage trial; final: final answer",
    ),
    (
        "truth",
        "boolean",
        "true, false or blank",
        "Ground truth: the model's positive finding is present",
    ),
    (
        "ai_shown",
        "boolean",
        "true, false",
        "Whether the arm shows the AI output (revealed after the first stage)",
    ),
    (
        "ai_prediction",
        "text",
        "a model class label or blank",
        "The model's predicted class (blank when not shown)",
    ),
    (
        "ai_positive_probability",
        "number",
        "0–1 or blank",
        "The model's probability of the positive finding",
    ),
    (
        "ai_correct",
        "boolean",
        "true, false or blank",
        "Whether the AI's prediction matches the truth",
    ),
    (
        "explanation_empty",
        "boolean",
        "true, false or blank",
        "Whether the heatmap this trial's arm shows highlighted no region, so the reader saw 'No region "
        "highlighted' (after the first stage in two-stage reading); blank for arms without a heatmap or "
        "with no stored map. Rule: " + EMPTY_RULE,
    ),
    (
        "trial_shown_at",
        "datetime",
        "ISO 8601 UTC",
        "When the trial was first shown (kept on resume)",
    ),
    (
        "ai_revealed_at",
        "datetime",
        "ISO 8601 UTC or blank",
        "When the AI output was revealed (two-stage)",
    ),
    ("submitted_at", "datetime", "ISO 8601 UTC", "When this stage's answer was stored"),
    (
        "seconds_on_stage",
        "number",
        "seconds",
        "Server time from shown (or revealed) to this answer",
    ),
]


def _iso(value) -> str:
    return value.astimezone(datetime.UTC).isoformat() if value else ""


def _flag(value) -> str:
    return "" if value is None else ("true" if value else "false")


def _question_columns(questions: list[Question]) -> list[tuple[str, str, str, str]]:
    columns = []
    for q in questions:
        if q.kind == Question.Kind.DIAGNOSIS:
            kind, allowed = "text", ", ".join(q.options)
        elif q.kind == Question.Kind.CONFIDENCE:
            kind, allowed = (
                "integer",
                {"slider100": "0–100", "scale5": "1–5", "scale7": "1–7"}[q.scale or "slider100"],
            )
        elif q.kind == Question.Kind.LIKERT:
            low, high = (q.anchors + ["", ""])[:2]
            kind, allowed = "integer", f"1 ({low}) – {q.points} ({high})"
        elif q.kind == Question.Kind.PROBABILITY:
            kind, allowed = (
                "integer",
                "0–100 (probability in percent, from a slider with no default)",
            )
        elif q.kind in (Question.Kind.ADVICE, Question.Kind.ORDINAL):
            kind, allowed = "text", ", ".join(q.options)
        else:
            kind, allowed = "text", "free text"
        applies = {
            "all": "every arm",
            "ai": "arms showing the AI",
            "explanation": "arms showing an explanation",
            "heatmap": "arms showing a heatmap",
        }
        stage = "first and final stage" if q.stage == Question.Stage.EVERY else "final stage only"
        columns.append(
            (
                f"answer_{q.key}",
                kind,
                allowed,
                f"{q.text} ({applies[q.applies_to]}; {stage}; blank when not asked)",
            )
        )
        if q.kind == Question.Kind.ORDINAL:
            ranks = "; ".join(f"{i} = {label}" for i, label in enumerate(q.options, start=1))
            columns.append(
                (
                    f"answer_{q.key}_rank",
                    "integer",
                    f"1–{len(q.options)}",
                    f"Rank of the answer to {q.key} in its ordered categories ({ranks});"
                    " blank when not asked",
                )
            )
    return columns


def _interaction_columns():
    return [
        (
            f"viewer_{name}",
            "number",
            "0…",
            f"Viewer interaction summary of the stage: {name.replace('_', ' ')}",
        )
        for name in INTERACTION_COLUMNS
    ]


def codebook_rows(rows: StudyRows) -> list[tuple[str, str, str, str]]:
    return BASE_COLUMNS + _question_columns(rows.questions) + _interaction_columns()


def long_csv(rows: StudyRows) -> str:
    """One row per reader x case x stage answered."""
    columns = [c[0] for c in codebook_rows(rows)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    positive = rows.study.model.positive_class if rows.study.model_id else ""
    for trial in rows.trials:
        stages = rows.responses.get(trial.pk, {})
        enrollment = trial.session.enrollment
        profile = getattr(enrollment.reader, "reader_profile", None)
        prediction = rows.predictions.get(trial.case_id) if trial.arm.shows_ai else None
        truth = rows.truth.get(trial.case_id)
        for stage in (Response.Stage.FIRST, Response.Stage.FINAL):
            response = stages.get(stage)
            if response is None:
                continue
            ai_visible = trial.arm.shows_ai and (
                stage == Response.Stage.FINAL or Response.Stage.FIRST not in stages
            )
            shown = prediction if ai_visible else None
            row = {
                "reader": reader_code(enrollment.reader_index),
                "reader_years_experience": ""
                if profile is None or profile.years_experience is None
                else profile.years_experience,
                "reader_specialty": profile.specialty if profile else "",
                "reader_is_radiologist": _flag(profile.is_radiologist if profile else None),
                "case": trial.case.key,
                "arm": trial.arm.code,
                "trial_kind": trial.kind,
                "session": trial.session.index + 1,
                "position": trial.position + 1,
                "stage": stage,
                "truth": _flag(truth),
                "ai_shown": _flag(ai_visible),
                "ai_prediction": shown.predicted_class if shown else "",
                "ai_positive_probability": f"{shown.positive_probability:.6g}" if shown else "",
                "ai_correct": _flag(
                    None
                    if shown is None or truth is None
                    else (shown.predicted_class == positive) == truth
                ),
                "explanation_empty": _flag(rows.explanation_empty(trial)),
                "trial_shown_at": _iso(trial.started_at),
                "ai_revealed_at": _iso(trial.revealed_at),
                "submitted_at": _iso(response.submitted_at),
                "seconds_on_stage": ""
                if response.seconds_on_stage is None
                else f"{response.seconds_on_stage:.3f}",
            }
            for q in rows.questions:
                value = response.answers.get(q.key)
                row[f"answer_{q.key}"] = "" if value is None else value
                if q.kind == Question.Kind.ORDINAL:
                    rank = ordinal_rank(q, value)
                    row[f"answer_{q.key}_rank"] = "" if rank is None else rank
            for name in INTERACTION_COLUMNS:
                value = response.interactions.get(name)
                row[f"viewer_{name}"] = "" if value is None else value
            writer.writerow([row[c] for c in columns])
    return buffer.getvalue()


def codebook_csv(rows: StudyRows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variable", "type", "allowed values", "meaning"])
    writer.writerows(codebook_rows(rows))
    return buffer.getvalue()


def snapshot(rows: StudyRows, *, unblinded: bool) -> dict:
    """Configuration, seeds, schedule algorithm, model checksum, explainer parameters (when
    unblinded), per-reader schedules and library versions."""
    study = rows.study
    config = dict(study.frozen_config or {})
    arms = config.get("arms", [])
    if not unblinded:
        config["arms"] = [
            {
                "code": a["code"],
                "shows_ai": a["kind"] != "unaided",
                "shows_explanation": a["kind"] in ("ai_explainer", "placebo"),
            }
            for a in arms
        ]
    enrollments = []
    for enrollment in study.enrollments.order_by("reader_index"):
        enrollments.append(
            {
                "reader": reader_code(enrollment.reader_index),
                "reader_index": enrollment.reader_index,
                "seed": enrollment.seed,
                "algorithm": enrollment.algorithm,
                "schedule": enrollment.schedule,
                "consent_version": enrollment.consent_version,
            }
        )
    return {
        "study": {
            "uid": str(study.uid),
            "title": study.title,
            "status": study.status,
            "opened_at": _iso(study.opened_at),
            "closed_at": _iso(study.closed_at),
        },
        "unblinded": unblinded,
        "configuration": config,
        "model": {
            "name": study.model.name,
            "uid": str(study.model.uid),
            "sha256": study.model.file_sha256,
            "class_labels": study.model.class_labels,
            "positive_class": study.model.positive_class,
            "input_spec": study.model.input_spec,
        }
        if study.model_id
        else None,
        "enrollments": enrollments,
        "responses": sum(len(v) for v in rows.responses.values()),
        "trials_done": sum(1 for t in rows.trials if t.state == Trial.State.DONE),
        "exported_at": _iso(timezone.now()),
        "library_versions": library_versions(),
    }


def study_mrmc_data(rows: StudyRows) -> MRMCData:
    """The ratings the study's OR analysis of the AUC uses: main trials, final confidence as the
    rating, final diagnosis as the binary decision, arm codes as treatments and pseudonymous
    reader codes as readers. Raises MRMCInputError when they do not form an MRMC study."""
    return to_mrmc_data(
        study_reads(rows),
        rating="final_confidence",
        diagnosis_from="final_positive",
        source=f"study {rows.study.pk}",
    )


def interop_file(rows: StudyRows, fmt: str) -> bytes:
    """The study's ratings in ``fmt`` (a key of INTEROP_FORMATS)."""
    data = study_mrmc_data(rows)
    if fmt == "imrmc":
        description = (
            f"xai-reader-study {rows.study.pk}: {rows.study.title}\n"
            "reader = pseudonymous reader code; modality = arm code; score = final confidence"
        )
        return formats.write_imrmc(data, description).encode()
    if fmt == "mrmcaov":
        return formats.write_long_csv(data).encode()
    return formats.write_rjafroc(data)


def interop_export(*, acting_user, study: Study, fmt: str) -> tuple[bytes, str, str]:
    """(content, content type, file name) of a closed study's ratings for iMRMC, MRMCaov or
    RJafroc; recorded in the audit trail. ``acting_user`` must see the study (the rule of the
    study's reports; None: an operator at the command line). The files hold arm codes and
    pseudonymous reader codes only, so they are blinded. Raises PermissionError and
    ServiceError (one line per problem)."""
    if acting_user is not None and not study_can_view(study=study, user=acting_user):
        raise PermissionError("no such study")
    problems = []
    if fmt not in INTEROP_FORMATS:
        problems.append(f"unknown format {fmt!r}; choose one of {', '.join(INTEROP_FORMATS)}")
    if study.status != Study.Status.CLOSED:
        problems.append(
            f"study {study.pk} is {study.get_status_display()}; "
            "close it before exporting its ratings"
        )
    if problems:
        raise ServiceError(problems)
    try:
        content = interop_file(study_rows(study=study), fmt)
    except MRMCInputError as exc:
        raise ServiceError(exc.problems) from None
    with transaction.atomic():
        audit.record(
            acting_user=acting_user,
            action="study.ratings_export",
            obj=study,
            study=study,
            after={"format": fmt, "bytes": len(content)},
        )
    content_type, ending, _ = INTEROP_FORMATS[fmt]
    return content, content_type, f"study-{study.pk}-ratings-{fmt}.{ending}"
