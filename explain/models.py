"""The case library and the model registry.

Files live in the default storage under opaque paths (uuid-named): the case key
(often a file name) never appears in a stored file's path.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from library.models import Case, Collection


class ClassifierModel(models.Model):
    class Form(models.TextChoices):
        EAGER = "eager", "Architecture and weights"
        TORCHSCRIPT = "torchscript", "TorchScript"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    form = models.CharField(max_length=16, choices=Form.choices)
    architecture = models.CharField(max_length=200, blank=True)
    init_kwargs = models.JSONField(default=dict, blank=True)
    weights_file = models.FileField(max_length=255, blank=True)
    torchscript_file = models.FileField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64)
    input_spec = models.JSONField()
    class_labels = models.JSONField()
    positive_class = models.CharField(max_length=100)
    cam_layer = models.CharField(max_length=200, blank=True)
    explainers = models.JSONField(default=dict, help_text="name -> {supported, reason}")
    registration_check = models.JSONField(
        default=dict, help_text="What the registration check measured"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def supported_explainers(self) -> list[str]:
        return [name for name, info in self.explainers.items() if info.get("supported")]


class Prediction(models.Model):
    """The model's output for a case: one row per model × case."""

    model = models.ForeignKey(ClassifierModel, on_delete=models.CASCADE, related_name="predictions")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="predictions")
    probabilities = models.JSONField(help_text="softmax over the model's class labels, in order")
    predicted_class = models.CharField(max_length=100)
    positive_probability = models.FloatField()
    device = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "case"], name="prediction_unique")]

    def __str__(self) -> str:
        return f"{self.model} on {self.case}: {self.predicted_class}"


class Explanation(models.Model):
    """One explainer's output for a case, unique per model × case × explainer × parameters.

    Every explainer's files have the same size, format and names; the opaque
    `uid` is what URLs use, so nothing about a file reveals its explainer.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model = models.ForeignKey(
        ClassifierModel, on_delete=models.CASCADE, related_name="explanations"
    )
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="explanations")
    explainer = models.CharField(max_length=40)
    placebo = models.BooleanField(default=False, help_text="computed on a weight-randomized copy")
    param_hash = models.CharField(max_length=64)
    params = models.JSONField()
    seed = models.IntegerField()
    target_class = models.CharField(max_length=100)
    heatmap_file = models.FileField(
        max_length=255, blank=True, help_text="float16 raw values on the case grid"
    )
    normalized_file = models.FileField(max_length=255, blank=True, help_text="float16 in [0, 1]")
    overlay_file = models.FileField(max_length=255, blank=True, help_text="RGBA PNG, one colormap")
    raw_min = models.FloatField(null=True)
    raw_max = models.FloatField(null=True)
    highlighted_fraction = models.FloatField(
        null=True,
        blank=True,
        help_text="Share of pixels the overlay highlights (empty below 0.001)",
    )
    similar_cases = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0.0)
    device = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "case", "explainer", "placebo", "param_hash"],
                name="explanation_unique",
            )
        ]
        indexes = [models.Index(fields=["model", "explainer", "placebo"])]

    def __str__(self) -> str:
        return f"{self.explainer}{' (placebo)' if self.placebo else ''} of {self.case}"


class PrecomputeJob(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        CANCELLED = "cancelled", "cancelled"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model = models.ForeignKey(ClassifierModel, on_delete=models.PROTECT, related_name="jobs")
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="jobs")
    configs = models.JSONField(help_text="[{key, explainer, params, seed, placebo, param_hash}]")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    with_metrics = models.BooleanField(
        default=True, help_text="compute explanation-quality metrics"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"precompute {self.model} × {self.collection} ({self.status})"


class PrecomputeItem(models.Model):
    """One unit of work: a case × one explainer configuration (or the prediction)."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    job = models.ForeignKey(PrecomputeJob, on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    config_key = models.CharField(max_length=80, help_text="'prediction' or the job config's key")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "case", "config_key"], name="precomputeitem_unique"
            )
        ]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self) -> str:
        return f"{self.config_key} of case {self.case_id} ({self.status})"
