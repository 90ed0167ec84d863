"""Arms that show similar cases take the registry's parameter hash (see explain 0006, which
re-labels the stored results the same way, so an arm keeps finding its results)."""

import importlib

from django.db import migrations

relabelled = importlib.import_module("explain.migrations.0006_similar_cases_hash")


def _relabel(apps, *, forwards: bool) -> None:
    Arm = apps.get_model("studies", "Arm")
    for arm in Arm.objects.filter(explainer=relabelled.EXPLAINER).only("params", "seed", "param_hash"):
        before = relabelled.old_hash(arm.params)
        after = relabelled.new_hash(arm.params, arm.seed)
        source, target = (before, after) if forwards else (after, before)
        if arm.param_hash == source:
            Arm.objects.filter(pk=arm.pk).update(param_hash=target)


def forwards(apps, schema_editor):
    _relabel(apps, forwards=True)


def backwards(apps, schema_editor):
    _relabel(apps, forwards=False)


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0004_case_library_app"),
        ("explain", "0006_similar_cases_hash"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
