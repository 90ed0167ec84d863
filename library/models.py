"""The case library: collections of de-identified cases, their ground truth labels and lesion masks.

Files live in the default storage under opaque paths (uuid-named): the case key
(often a file name) never appears in a stored file's path."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Collection(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        # The table keeps its name from before the library left the explain app.
        db_table = "explain_collection"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Case(models.Model):
    class SourceFormat(models.TextChoices):
        DICOM = "dicom", "DICOM"
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="cases")
    key = models.CharField(max_length=255, help_text="Matches the labels CSV; from the file's path")
    source_format = models.CharField(max_length=8, choices=SourceFormat.choices)
    source_sha256 = models.CharField(
        max_length=64, help_text="Of the original bytes (never stored)"
    )
    stored_sha256 = models.CharField(max_length=64, help_text="Of the de-identified file")
    modality = models.CharField(max_length=16, blank=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    patient_pseudonym = models.CharField(max_length=64, blank=True)
    study_uid = models.CharField(max_length=64, blank=True, help_text="De-identified")
    series_uid = models.CharField(max_length=64, blank=True, help_text="De-identified")
    sop_instance_uid = models.CharField(max_length=64, blank=True, help_text="De-identified")
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    is_color = models.BooleanField(default=False)
    photometric = models.CharField(max_length=16, blank=True)
    bits_stored = models.PositiveSmallIntegerField(null=True, blank=True)
    frame_index = models.PositiveIntegerField(default=0)
    number_of_frames = models.PositiveIntegerField(default=1)
    window_presets = models.JSONField(default=list, blank=True)
    value_min = models.FloatField(null=True, blank=True)
    value_max = models.FloatField(null=True, blank=True)
    split = models.CharField(max_length=16, blank=True)
    clinical_history = models.TextField(
        max_length=2000,
        blank=True,
        help_text="Shown to readers only in study arms that show the clinical history "
        "(library.clinical_history cleans and bounds it)",
    )
    source_file = models.FileField(
        max_length=255, help_text="De-identified DICOM, or re-encoded PNG"
    )
    pixels_file = models.FileField(max_length=255, help_text="Full-precision values (.npy)")
    pixels_encoded_file = models.FileField(
        max_length=255,
        blank=True,
        help_text="The same values as compressed 16-bit integers with their rescale (XRS pixels, "
        "library/imaging/pixel_transfer.py); empty when they have no exact 16-bit form",
    )
    display_file = models.FileField(max_length=255, help_text="8-bit rendering (PNG)")
    thumbnail_file = models.FileField(max_length=255)
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        # The table keeps its name from before the library left the explain app.
        db_table = "explain_case"
        ordering = ["collection_id", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "key"], name="case_unique_key_per_collection"
            ),
            models.UniqueConstraint(
                fields=["collection", "source_sha256"], name="case_unique_source_per_collection"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.collection.name}/{self.key}"


class CaseLabel(models.Model):
    """A finding's ground truth for a case: 1 positive, 0 negative, -1 uncertain."""

    POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1
    VALUE_CHOICES = [(POSITIVE, "positive"), (NEGATIVE, "negative"), (UNCERTAIN, "uncertain")]

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    value = models.SmallIntegerField(choices=VALUE_CHOICES)

    class Meta:
        # The table keeps its name from before the library left the explain app.
        db_table = "explain_caselabel"
        ordering = ["case_id", "name"]
        constraints = [models.UniqueConstraint(fields=["case", "name"], name="caselabel_unique")]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class LesionMask(models.Model):
    """A binary lesion mask on the case's pixel grid (PNG, 0/255)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="masks")
    label = models.CharField(max_length=100, blank=True)
    file = models.FileField(max_length=255)
    pixel_count = models.PositiveIntegerField()

    class Meta:
        # The table keeps its name from before the library left the explain app.
        db_table = "explain_lesionmask"
        constraints = [models.UniqueConstraint(fields=["case", "label"], name="lesionmask_unique")]

    def __str__(self) -> str:
        return f"mask {self.label or 'lesion'} of case {self.case_id}"
