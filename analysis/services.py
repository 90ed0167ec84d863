"""Writes of the analysis app: requesting, building and downloading a study's report and exports.

Building runs in a Celery task (`analysis.build_report`) that claims the report with a
conditional UPDATE, so a redelivered message or a second worker does nothing twice. Files are
written first and the row is marked done afterwards; a failure removes the files it wrote and
records why.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analysis import export
from analysis import report as rendering
from analysis.models import StudyReport
from analysis.questionnaire_data import questionnaire_rows, questionnaire_summary
from analysis.stats.inference import to_jsonable
from analysis.stats.plan import AnalysisPlan
from analysis.stats.quality import QualityRules
from analysis.stats.study import ArmMeta, StudyMeta, analyse_study, analysis_option_problems
from analysis.study_data import arm_metrics, library_versions, study_reads, study_rows
from core import audit
from core.errors import ServiceError
from core.storage import staged_writes
from core.tasks import enqueue_on_commit
from explain.compute.heatmaps import EMPTY_RULE
from studies.models import Arm, Study, StudyRole
from studies.selectors import study_can_view, study_has_role

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=30)
CONTENT_TYPES = {
    "html": ("text/html; charset=utf-8", "report.html"),
    "pdf": ("application/pdf", "report.pdf"),
    "csv": ("text/csv; charset=utf-8", "responses.csv"),
    "codebook": ("text/csv; charset=utf-8", "codebook.csv"),
    "snapshot": ("application/json", "snapshot.json"),
    "analysis": ("application/json", "analysis.json"),
}


def _may_read(*, user, study: Study, unblinded: bool) -> None:
    if not study_can_view(study=study, user=user):
        raise PermissionError("no such study")
    if unblinded and not study_has_role(study=study, user=user, role=StudyRole.Role.STATISTICIAN):
        raise PermissionError("only the study's statistician can see the unblinded report")


def report_request(
    *,
    acting_user,
    study: Study,
    unblinded: bool = False,
    cov_method: str = "jackknife",
    fom: str = "auc",
) -> StudyReport:
    """Queue a new report of the study's responses so far (built after commit).

    ``fom`` (empirical or binormal AUC) and ``cov_method`` (covariance.COV_METHODS) are those
    of the ROC analysis; DeLong and unbiased covariance are refused for the binormal AUC."""
    _may_read(user=acting_user, study=study, unblinded=unblinded)
    problems = analysis_option_problems(auc_fom=fom, cov_method=cov_method)
    if study.status == Study.Status.DRAFT:
        problems.insert(0, "a draft study has no responses yet; open it first")
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        report = StudyReport.objects.create(
            study=study,
            unblinded=unblinded,
            created_by=acting_user,
            fom=fom,
            cov_method=cov_method,
        )
        audit.record(
            acting_user=acting_user,
            action="report.request",
            obj=study,
            study=study,
            after={
                "report": str(report.uid),
                "unblinded": unblinded,
                "fom": fom,
                "cov_method": cov_method,
            },
        )
        enqueue_on_commit("analysis.build_report", args=(report.pk,))
    return report


def _progress(report_id: int, claim: str, percent: int, stage: str) -> None:
    StudyReport.objects.filter(pk=report_id, claim=claim).update(progress=percent, stage=stage)


def _claim(report_id: int) -> str | None:
    token = secrets.token_hex(16)
    stale = timezone.now() - STALE_AFTER
    claimed = StudyReport.objects.filter(
        Q(status=StudyReport.Status.PENDING)
        | Q(status=StudyReport.Status.RUNNING, started_at__lt=stale),
        pk=report_id,
    ).update(
        status=StudyReport.Status.RUNNING,
        claim=token,
        started_at=timezone.now(),
        progress=1,
        stage="starting",
        error="",
    )
    return token if claimed else None


def study_meta(
    *, study: Study, unblinded: bool, fom: str = "auc", cov_method: str = "jackknife"
) -> StudyMeta:
    arms = []
    for arm in study.arms.order_by("code"):
        if arm.kind == Arm.Kind.UNAIDED:
            condition = "unaided"
        elif arm.kind == Arm.Kind.AI:
            condition = "AI prediction"
        elif unblinded:
            condition = f"AI + {arm.explainer}" + (
                " (placebo)" if arm.kind == Arm.Kind.PLACEBO else ""
            )
        else:
            condition = "AI prediction and explanation"
        arms.append(
            ArmMeta(
                code=arm.code,
                label=f"Arm {arm.code}: {condition}",
                shows_ai=arm.shows_ai,
                shows_explanation=arm.shows_explanation,
                explainer=(arm.explainer + (" (placebo)" if arm.kind == Arm.Kind.PLACEBO else ""))
                if unblinded and arm.shows_explanation
                else None,
            )
        )
    unaided = (
        study.arms.filter(kind=Arm.Kind.UNAIDED)
        .order_by("code")
        .values_list("code", flat=True)
        .first()
    )
    return StudyMeta(
        title=study.title,
        design=study.design,
        protocol=study.protocol,
        arms=tuple(arms),
        unaided=unaided,
        positive_class=study.model.positive_class if study.model_id else "",
        seed=study.seed % (2**32),
        empty_rule=EMPTY_RULE,
        auc_fom=fom,
        cov_method=cov_method,
        **_plan_and_rules(study),
    )


def _plan_and_rules(study: Study) -> dict:
    """The analysis plan (with its hash) and the quality rules frozen when the study opened;
    a draft's current ones (a draft has no responses to analyse)."""
    if study.status != Study.Status.DRAFT:
        frozen = study.frozen_config or {}
        plan, rules = frozen.get("analysis_plan"), frozen.get("quality_rules")
        sha256 = frozen.get("analysis_plan_sha256")
    else:
        plan, rules, sha256 = study.analysis_plan, study.quality_rules, None
    return {
        "analysis_plan": AnalysisPlan.from_dict(plan, sha256),
        "quality_rules": QualityRules.from_dict(rules),
    }


def _build_files(report: StudyReport, claim: str, save) -> tuple[dict[str, str], str]:
    """Compute the analysis and save every file; (kind -> stored name, why there is no PDF)."""
    report_id = report.pk
    _progress(report_id, claim, 10, "reading responses")
    rows = study_rows(study=report.study)
    reads = study_reads(rows)
    _progress(report_id, claim, 25, "running the statistics")
    meta = study_meta(
        study=report.study,
        unblinded=report.unblinded,
        fom=report.fom,
        cov_method=report.cov_method,
    )
    analysis = analyse_study(reads, meta, metrics=arm_metrics(rows))
    numbers = analysis.to_dict()
    questionnaires = None
    if report.study.questionnaires:  # the study asks end-of-session questionnaires
        answered = questionnaire_rows(study=report.study)
        questionnaires = questionnaire_summary(study=report.study, rows=answered)
        numbers["questionnaires"] = {
            "scores": [
                {**row, "submitted_at": row["submitted_at"].isoformat()} for row in answered
            ],
            "summary": questionnaires,
        }
    analysis_json = json.dumps(to_jsonable(numbers), indent=1, allow_nan=False)
    _progress(report_id, claim, 60, "drawing the report")
    generated = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    html = rendering.render_html(
        analysis, generated_at=generated, versions=library_versions(), questionnaires=questionnaires
    )
    files = {
        "html": save("html", html.encode()),
        "analysis": save("analysis", analysis_json.encode()),
    }
    _progress(report_id, claim, 75, "making the PDF")
    pdf_problem = ""
    try:
        files["pdf"] = save("pdf", rendering.render_pdf(html))
    except (OSError, ImportError) as exc:  # WeasyPrint needs Pango; the HTML stands alone
        pdf_problem = f"no PDF: {exc}"[:300]
    _progress(report_id, claim, 90, "writing the exports")
    files["csv"] = save("csv", export.long_csv(rows).encode())
    files["codebook"] = save("codebook", export.codebook_csv(rows).encode())
    files["snapshot"] = save(
        "snapshot", json.dumps(export.snapshot(rows, unblinded=report.unblinded), indent=1).encode()
    )
    return files, pdf_problem


def report_build(*, report_id: int) -> bool:
    """Build a claimed report. Returns False when another worker has it (or it is finished)."""
    claim = _claim(report_id)
    if claim is None:
        return False
    report = StudyReport.objects.select_related("study__model").get(pk=report_id)
    try:
        with staged_writes() as staged:  # a failure removes every file written so far

            def save(kind: str, content: bytes) -> str:
                return staged.save(f"reports/{report.uid}/{CONTENT_TYPES[kind][1]}", content)

            files, pdf_problem = _build_files(report, claim, save)
            with transaction.atomic():
                done = StudyReport.objects.filter(pk=report_id, claim=claim).update(
                    status=StudyReport.Status.DONE,
                    progress=100,
                    stage="done",
                    finished_at=timezone.now(),
                    pdf_problem=pdf_problem,
                    **{f"{kind}_file": name for kind, name in files.items()},
                )
                if not done:
                    raise RuntimeError("the report was claimed by another worker")
    except Exception as exc:
        logger.exception("report %s failed", report_id)
        StudyReport.objects.filter(pk=report_id, claim=claim).update(
            status=StudyReport.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
    return True


def report_download(*, acting_user, report: StudyReport, kind: str) -> tuple[str, str, str]:
    """(storage name, content type, download file name) of one of a finished report's files.
    Every download is audited."""
    _may_read(user=acting_user, study=report.study, unblinded=report.unblinded)
    if kind not in CONTENT_TYPES:
        raise ServiceError(f"unknown file {kind!r}; choose one of {', '.join(CONTENT_TYPES)}")
    if report.status != StudyReport.Status.DONE:
        raise ServiceError(f"the report is {report.get_status_display()}; nothing to download yet")
    name = getattr(report, f"{kind}_file").name
    if not name:
        raise ServiceError(report.pdf_problem or f"this report has no {kind} file")
    with transaction.atomic():
        audit.record(
            acting_user=acting_user,
            action="report.download",
            obj=report.study,
            study=report.study,
            after={"report": str(report.uid), "file": kind, "unblinded": report.unblinded},
        )
    content_type, filename = CONTENT_TYPES[kind]
    slug = f"study-{report.study_id}-{report.created_at:%Y%m%d-%H%M}" + (
        "-unblinded" if report.unblinded else ""
    )
    return name, content_type, f"{slug}-{filename}"
