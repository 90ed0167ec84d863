"""The case library leaves the explain app: its models are adopted here, state only.

The tables keep their names (db_table) and their rows: nothing in the database changes.
explain 0005 removes the same models from explain's state."""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models

MOVED = ("collection", "case", "caselabel", "lesionmask")


def content_types_follow(apps, schema_editor):
    """Permissions and admin history point at content types: move them, don't orphan them."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="library", model=model).exists():
            ContentType.objects.filter(app_label="explain", model=model).update(app_label="library")


def content_types_return(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="explain", model=model).exists():
            ContentType.objects.filter(app_label="library", model=model).update(app_label="explain")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("explain", "0004_case_pixels_encoded"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Collection",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=100, unique=True)),
                        ("description", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "explain_collection",
                        "ordering": ["name"],
                    },
                ),
                migrations.CreateModel(
                    name="Case",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("uid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        (
                            "key",
                            models.CharField(
                                help_text="Matches the labels CSV; from the file's path",
                                max_length=255,
                            ),
                        ),
                        (
                            "source_format",
                            models.CharField(
                                choices=[("dicom", "DICOM"), ("png", "PNG"), ("jpeg", "JPEG")],
                                max_length=8,
                            ),
                        ),
                        (
                            "source_sha256",
                            models.CharField(
                                help_text="Of the original bytes (never stored)", max_length=64
                            ),
                        ),
                        (
                            "stored_sha256",
                            models.CharField(help_text="Of the de-identified file", max_length=64),
                        ),
                        ("modality", models.CharField(blank=True, max_length=16)),
                        ("sop_class_uid", models.CharField(blank=True, max_length=64)),
                        ("patient_pseudonym", models.CharField(blank=True, max_length=64)),
                        (
                            "study_uid",
                            models.CharField(blank=True, help_text="De-identified", max_length=64),
                        ),
                        (
                            "series_uid",
                            models.CharField(blank=True, help_text="De-identified", max_length=64),
                        ),
                        (
                            "sop_instance_uid",
                            models.CharField(blank=True, help_text="De-identified", max_length=64),
                        ),
                        ("rows", models.PositiveIntegerField()),
                        ("columns", models.PositiveIntegerField()),
                        ("is_color", models.BooleanField(default=False)),
                        ("photometric", models.CharField(blank=True, max_length=16)),
                        ("bits_stored", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("frame_index", models.PositiveIntegerField(default=0)),
                        ("number_of_frames", models.PositiveIntegerField(default=1)),
                        ("window_presets", models.JSONField(blank=True, default=list)),
                        ("value_min", models.FloatField(blank=True, null=True)),
                        ("value_max", models.FloatField(blank=True, null=True)),
                        ("split", models.CharField(blank=True, max_length=16)),
                        (
                            "source_file",
                            models.FileField(
                                help_text="De-identified DICOM, or re-encoded PNG",
                                max_length=255,
                                upload_to="",
                            ),
                        ),
                        (
                            "pixels_file",
                            models.FileField(
                                help_text="Full-precision values (.npy)",
                                max_length=255,
                                upload_to="",
                            ),
                        ),
                        (
                            "pixels_encoded_file",
                            models.FileField(
                                blank=True,
                                help_text="The same values as compressed 16-bit integers with their rescale (XRS pixels, library/imaging/pixel_transfer.py); empty when they have no exact 16-bit form",
                                max_length=255,
                                upload_to="",
                            ),
                        ),
                        (
                            "display_file",
                            models.FileField(
                                help_text="8-bit rendering (PNG)", max_length=255, upload_to=""
                            ),
                        ),
                        ("thumbnail_file", models.FileField(max_length=255, upload_to="")),
                        ("imported_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "imported_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "collection",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="cases",
                                to="library.collection",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "explain_case",
                        "ordering": ["collection_id", "key"],
                    },
                ),
                migrations.CreateModel(
                    name="LesionMask",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("label", models.CharField(blank=True, max_length=100)),
                        ("file", models.FileField(max_length=255, upload_to="")),
                        ("pixel_count", models.PositiveIntegerField()),
                        (
                            "case",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="masks",
                                to="library.case",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "explain_lesionmask",
                    },
                ),
                migrations.CreateModel(
                    name="CaseLabel",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=100)),
                        (
                            "value",
                            models.SmallIntegerField(
                                choices=[(1, "positive"), (0, "negative"), (-1, "uncertain")]
                            ),
                        ),
                        (
                            "case",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="labels",
                                to="library.case",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "explain_caselabel",
                        "ordering": ["case_id", "name"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("case", "name"), name="caselabel_unique"
                            )
                        ],
                    },
                ),
                migrations.AddConstraint(
                    model_name="case",
                    constraint=models.UniqueConstraint(
                        fields=("collection", "key"), name="case_unique_key_per_collection"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="case",
                    constraint=models.UniqueConstraint(
                        fields=("collection", "source_sha256"),
                        name="case_unique_source_per_collection",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="lesionmask",
                    constraint=models.UniqueConstraint(
                        fields=("case", "label"), name="lesionmask_unique"
                    ),
                ),
            ],
        ),
        migrations.RunPython(content_types_follow, content_types_return),
    ]
