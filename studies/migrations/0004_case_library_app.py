"""Studies point at the case library's models in their new app (state only: same tables)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0001_initial"),
        ("studies", "0003_empty_maps_reader_text"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="study",
                    name="collections",
                    field=models.ManyToManyField(
                        blank=True, related_name="+", to="library.collection"
                    ),
                ),
                migrations.AlterField(
                    model_name="studycase",
                    name="case",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="library.case",
                    ),
                ),
                migrations.AlterField(
                    model_name="trial",
                    name="case",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="library.case",
                    ),
                ),
            ],
        ),
    ]
