"""What the start service and the worker share about a precompute job's items: the key of the
prediction items, the attempt bound, and closing a job once none of its items is open."""

from __future__ import annotations

from django.utils import timezone

from explain.models import PrecomputeItem, PrecomputeJob

PREDICTION = "prediction"
"""The config key of a case's prediction item (every job has one per case)."""
MAX_ATTEMPTS = 3
"""How many times an item is tried (a claim is an attempt) before it is failed for good."""


def job_finish_if_complete(*, job_id: int) -> None:
    """Mark a running job done when none of its items is pending or running."""
    open_items = PrecomputeItem.objects.filter(
        job_id=job_id, status__in=[PrecomputeItem.Status.PENDING, PrecomputeItem.Status.RUNNING]
    )
    if not open_items.exists():
        PrecomputeJob.objects.filter(pk=job_id, status=PrecomputeJob.Status.RUNNING).update(
            status=PrecomputeJob.Status.DONE, finished_at=timezone.now()
        )
