"""The case library's models leave explain's state (library 0001 adopted them; tables unchanged)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("explain", "0004_case_pixels_encoded"),
        ("library", "0001_initial"),
        ("studies", "0004_case_library_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name="case",
                    name="collection",
                ),
                migrations.RemoveField(
                    model_name="case",
                    name="imported_by",
                ),
                migrations.AlterField(
                    model_name="explanation",
                    name="case",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="explanations",
                        to="library.case",
                    ),
                ),
                migrations.AlterField(
                    model_name="prediction",
                    name="case",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="predictions",
                        to="library.case",
                    ),
                ),
                migrations.AlterField(
                    model_name="precomputeitem",
                    name="case",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="library.case",
                    ),
                ),
                migrations.RemoveField(
                    model_name="lesionmask",
                    name="case",
                ),
                migrations.RemoveField(
                    model_name="collection",
                    name="created_by",
                ),
                migrations.AlterField(
                    model_name="precomputejob",
                    name="collection",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="jobs",
                        to="library.collection",
                    ),
                ),
                migrations.DeleteModel(
                    name="CaseLabel",
                ),
                migrations.DeleteModel(
                    name="Case",
                ),
                migrations.DeleteModel(
                    name="LesionMask",
                ),
                migrations.DeleteModel(
                    name="Collection",
                ),
            ],
        ),
    ]
