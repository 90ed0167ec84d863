"""Celery tasks of the explanation engine: thin wrappers that take ids.

`explain.precompute_items` runs one batch (:func:`explain.worker.precompute_run_items`) and
enacts its outcome: a failed batch of several items is sent again item by item, a failed
single item is retried with backoff, at most MAX_ATTEMPTS times (each claim counts one).
"""

from __future__ import annotations

from core.tasks import task
from explain.precompute_state import MAX_ATTEMPTS
from explain.worker import precompute_run_items


@task(name="explain.precompute_items", queue="gpu", bind=True, max_retries=MAX_ATTEMPTS)
def precompute_items(self, item_ids: list[int]) -> dict:
    outcome = precompute_run_items(item_ids=item_ids)
    for item_id in outcome.split:  # a failed batch: each item again, on its own
        precompute_items.apply_async(args=[[item_id]], queue=outcome.queue)
    retry = outcome.retry
    while retry and self.request.is_eager:  # inline mode: retry at once (bounded by MAX_ATTEMPTS)
        outcome = precompute_run_items(item_ids=list(retry))
        retry = outcome.retry
    if retry:
        raise self.retry(args=[list(retry)], countdown=min(2**self.request.retries, 30))
    return outcome.summary()
