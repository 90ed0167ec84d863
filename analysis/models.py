"""Generated reports and exports of a study."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from analysis.stats.covariance import COV_METHODS

COV_LABELS = {
    "jackknife": "jackknife",
    "delong": "DeLong",
    "bootstrap": "bootstrap",
    "unbiased": "unbiased (U-statistic)",
}
COV_CHOICES = [(method, COV_LABELS.get(method, method)) for method in COV_METHODS]


class StudyReport(models.Model):
    """One generation of a study's report and exports, built by a Celery task.

    `unblinded` reports (the statistician's) name each arm's explainer; the others show arm
    codes only. `fom` and `cov_method` are the figure of merit and the case-sampling covariance
    of the ROC (Obuchowski-Rockette) analysis; the accuracy analysis always uses the jackknife. Files are served only through permission-checked, audited downloads.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for a worker"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    class Fom(models.TextChoices):
        AUC = "auc", "empirical AUC"
        BINORMAL_AUC = "binormal_auc", "binormal AUC"

    COV_CHOICES = COV_CHOICES

    FILES = ("html", "pdf", "csv", "codebook", "snapshot", "analysis")

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="reports")
    unblinded = models.BooleanField(default=False)
    fom = models.CharField(
        max_length=20, choices=Fom.choices, default=Fom.AUC, help_text="ROC figure of merit"
    )
    cov_method = models.CharField(
        max_length=20,
        choices=COV_CHOICES,
        default="jackknife",
        help_text="case-sampling covariance of the ROC analysis",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="percent")
    stage = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    claim = models.CharField(max_length=64, blank=True, help_text="token of the worker building it")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    html_file = models.FileField(max_length=255, blank=True)
    pdf_file = models.FileField(max_length=255, blank=True)
    csv_file = models.FileField(max_length=255, blank=True)
    codebook_file = models.FileField(max_length=255, blank=True)
    snapshot_file = models.FileField(max_length=255, blank=True)
    analysis_file = models.FileField(max_length=255, blank=True)
    pdf_problem = models.CharField(max_length=300, blank=True, help_text="why no PDF was made")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"report of {self.study} ({self.status})"
