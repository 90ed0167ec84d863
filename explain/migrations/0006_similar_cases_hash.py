"""similar_cases results take the parameter hash every explainer has (issue 15).

Before, the precompute service hashed similar_cases on its own: sha256 of {"similar_cases":
{"k": k}}, seed forced to 0, no algorithm version. Now the explainer registry hashes it like any
other explainer (name, parameters, seed and algorithm version). Stored results are re-labelled,
so a request made today finds them and is not computed again; studies 0005 does the same for
the arms that show them. The hash of this day is written out here (algorithm version "1"), not
imported, so that a later version bump does not re-label these rows as computed by it.
"""

import hashlib
import json

from django.db import migrations

EXPLAINER = "similar_cases"


def old_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps({EXPLAINER: params}, sort_keys=True).encode()).hexdigest()


def new_hash(params: dict, seed: int) -> str:
    document = {"algorithm_version": "1", "name": EXPLAINER, "params": params, "seed": seed}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _relabel(apps, *, forwards: bool) -> None:
    Explanation = apps.get_model("explain", "Explanation")
    PrecomputeJob = apps.get_model("explain", "PrecomputeJob")
    for row in Explanation.objects.filter(explainer=EXPLAINER).only("params", "seed", "param_hash"):
        before, after = old_hash(row.params), new_hash(row.params, row.seed)
        source, target = (before, after) if forwards else (after, before)
        if row.param_hash == source:
            Explanation.objects.filter(pk=row.pk).update(param_hash=target)
    for job in PrecomputeJob.objects.all().only("configs"):
        changed = False
        for config in job.configs:
            if config.get("explainer") != EXPLAINER:
                continue
            params, seed = config.get("params") or {}, config.get("seed", 0)
            before, after = old_hash(params), new_hash(params, seed)
            source, target = (before, after) if forwards else (after, before)
            if config.get("param_hash") == source:
                config["param_hash"], changed = target, True
        if changed:
            PrecomputeJob.objects.filter(pk=job.pk).update(configs=job.configs)


def forwards(apps, schema_editor):
    _relabel(apps, forwards=True)


def backwards(apps, schema_editor):
    _relabel(apps, forwards=False)


class Migration(migrations.Migration):
    dependencies = [("explain", "0005_case_library_leaves")]

    operations = [migrations.RunPython(forwards, backwards)]
