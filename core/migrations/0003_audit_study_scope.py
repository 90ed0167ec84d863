"""Audit rows can be scoped to a study (its coordinators read and export its trail).

Adding a nullable column updates no row, so the append-only trigger of 0002 is not involved
and stays in place.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("core", "0002_audit_append_only")]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="study_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(fields=["study_id", "at"], name="core_audit_study_at_idx"),
        ),
    ]
