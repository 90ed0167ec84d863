"""Celery tasks of the explanation engine: thin wrappers that take ids."""

from __future__ import annotations

from celery import shared_task

from explain.services.precompute import MAX_ATTEMPTS, precompute_run_items


@shared_task(
    name="explain.precompute_items",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_ATTEMPTS,
)
def precompute_items(self, item_ids: list[int]) -> dict:
    outcome = precompute_run_items(item_ids=item_ids)
    for item_id in outcome.get("split") or []:  # a failed batch: each item again, on its own
        precompute_items.apply_async(args=[[item_id]], queue=outcome["queue"])
    retry = outcome.get("retry")
    while retry and self.request.is_eager:  # inline mode: retry at once (bounded by MAX_ATTEMPTS)
        outcome = precompute_run_items(item_ids=retry)
        retry = outcome.get("retry")
    if retry:
        raise self.retry(args=[retry], countdown=min(2**self.request.retries, 30))
    return {k: v for k, v in outcome.items() if k not in ("retry", "split", "queue")}
