"""Reads of the model registry, the precompute jobs and the stored explanations."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, QuerySet

from explain.compute.metric_summary import summarize
from explain.models import ClassifierModel, Explanation, PrecomputeItem, PrecomputeJob

__all__ = [
    "explanation_metrics_summary",
    "job_list",
    "model_get",
    "model_list",
    "precompute_progress",
]


def model_list() -> QuerySet[ClassifierModel]:
    return ClassifierModel.objects.order_by("name")


def model_get(*, model_id: int) -> ClassifierModel:
    return ClassifierModel.objects.get(pk=model_id)


def precompute_progress(*, job) -> dict:
    """Counts per status, overall and per configuration, plus the failures' reasons."""
    job.refresh_from_db(fields=["status", "finished_at"])
    statuses = [choice for choice, _ in PrecomputeItem.Status.choices]
    overall = dict.fromkeys(statuses, 0)
    per_config: dict[str, dict] = {}
    for row in job.items.values("config_key", "status").annotate(n=Count("id")):
        overall[row["status"]] += row["n"]
        per_config.setdefault(row["config_key"], dict.fromkeys(statuses, 0))[row["status"]] += row[
            "n"
        ]
    for counts in per_config.values():
        counts["total"] = sum(counts[s] for s in statuses)
    failures = [
        {"case": case_id, "config": key, "error": error}
        for case_id, key, error in job.items.filter(status=PrecomputeItem.Status.FAILED)
        .order_by("pk")
        .values_list("case_id", "config_key", "error")[:50]
    ]
    return {
        "job": job.pk,
        "status": job.status,
        "model": job.model.name,
        "collection": job.collection.name,
        "total": sum(overall.values()),
        **overall,
        "per_config": per_config,
        "failures": failures,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def job_list() -> QuerySet[PrecomputeJob]:
    return PrecomputeJob.objects.select_related("model", "collection").order_by("-created_at")


def explanation_metrics_summary(*, model, collection=None) -> dict[str, dict]:
    """Per explainer configuration (placebo separate): each metric summarised over cases."""
    rows = Explanation.objects.filter(model=model)
    if collection is not None:
        rows = rows.filter(case__collection=collection)
    values: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    counts: dict[str, int] = defaultdict(int)
    for explainer, placebo, metrics in rows.values_list("explainer", "placebo", "metrics"):
        key = explainer + (" (placebo)" if placebo else "")
        counts[key] += 1
        for name, value in (metrics or {}).items():
            if isinstance(value, bool | int | float) or value is None:
                values[key][name].append(value)
    return {
        key: {
            "explanations": counts[key],
            "metrics": {name: summarize(v) for name, v in sorted(values[key].items())},
        }
        for key in sorted(counts)
    }
