"""Writes of the explanation engine: starting and cancelling precompute jobs.

A job is (model, collection, explainer configurations). It holds one item per case ×
configuration plus one `prediction` item per case. Starting a job resolves its requests
(:mod:`explain.explainer_requests`), creates its items (those whose result exists are done at
once unless forced) and, once the transaction commits, sends its pending items in batches to
the worker task by name (:func:`core.tasks.enqueue_on_commit`); :mod:`explain.worker` claims,
computes and stores them.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import audit
from core.audit import acting_user_or_none
from core.errors import ServiceError
from core.tasks import enqueue_on_commit
from explain.explainer_requests import explainer_configs_resolve, queue_for
from explain.models import ClassifierModel, Explanation, PrecomputeItem, PrecomputeJob, Prediction
from explain.precompute_state import PREDICTION, job_finish_if_complete
from library.models import Case, Collection

PRECOMPUTE_TASK = "explain.precompute_items"


def precompute_start(
    *,
    acting_user,
    model: ClassifierModel,
    collection: Collection,
    explainers: list,
    placebo: list[str] | None = None,
    split: str | None = None,
    case_ids: list[int] | None = None,
    force: bool = False,
    batch_size: int = 8,
    with_metrics: bool = True,
) -> PrecomputeJob:
    """Create a job and enqueue its work after commit.

    `split` and `case_ids` restrict the job to some of the collection's cases. With no
    explainers the job computes predictions only. Items whose result already exists are
    marked done at once unless `force`.
    """
    explainers, placebo = list(explainers), list(placebo or [])
    configs = (
        explainer_configs_resolve(model=model, explainers=explainers, placebo=placebo)
        if explainers or placebo
        else []
    )
    case_ids = _chosen_case_ids(collection, split, case_ids)
    with transaction.atomic():
        job = PrecomputeJob.objects.create(
            model=model,
            collection=collection,
            configs=configs,
            created_by=acting_user_or_none(acting_user),
            with_metrics=with_metrics,
        )
        existing = set() if force else _existing_results(model, case_ids, with_metrics)
        PrecomputeItem.objects.bulk_create(_items(job, case_ids, existing))
        audit.record(
            acting_user=acting_user,
            action="precompute.start",
            obj=job,
            after={
                "model": model.name,
                "collection": collection.name,
                "configs": configs,
                "cases": len(case_ids),
                "force": force,
                "with_metrics": with_metrics,
            },
        )
        batches = _batches(job, batch_size)
        if not batches:
            job_finish_if_complete(job_id=job.pk)
        for item_ids, queue in batches:
            enqueue_on_commit(PRECOMPUTE_TASK, args=[item_ids], queue=queue)
    return job


def _chosen_case_ids(collection: Collection, split: str | None, case_ids) -> list[int]:
    cases = Case.objects.filter(collection=collection)
    if split:
        cases = cases.filter(split=split)
    chosen = case_ids is not None
    if chosen:
        cases = cases.filter(pk__in=list(case_ids))
    ids = list(cases.order_by("pk").values_list("pk", flat=True))
    if not ids:
        raise ServiceError(
            f"collection {collection.name!r} has no cases"
            + (f" in split {split!r}" if split else "")
            + (" among the chosen cases" if chosen else "")
        )
    return ids


def _existing_results(model, case_ids: list[int], with_metrics: bool) -> set[tuple]:
    """(case, explainer, placebo, param_hash) of the results stored already."""
    results = Explanation.objects.filter(model=model, case_id__in=case_ids)
    if with_metrics:  # a result computed without metrics does not satisfy a job that wants them
        results = results.exclude(Q(metrics={}) & ~Q(explainer="similar_cases"))
    existing = {
        (row["case_id"], row["explainer"], row["placebo"], row["param_hash"])
        for row in results.values("case_id", "explainer", "placebo", "param_hash")
    }
    predicted = Prediction.objects.filter(model=model, case_id__in=case_ids)
    existing |= {
        (case_id, PREDICTION, False, "") for case_id in predicted.values_list("case_id", flat=True)
    }
    return existing


def _items(job: PrecomputeJob, case_ids: list[int], existing: set[tuple]) -> list[PrecomputeItem]:
    now = timezone.now()
    signatures = [(PREDICTION, (PREDICTION, False, ""))] + [
        (c["key"], (c["explainer"], c["placebo"], c["param_hash"])) for c in job.configs
    ]
    items = []
    for case_id in case_ids:
        for key, signature in signatures:
            done = (case_id, *signature) in existing
            items.append(
                PrecomputeItem(
                    job=job,
                    case_id=case_id,
                    config_key=key,
                    status=PrecomputeItem.Status.DONE if done else PrecomputeItem.Status.PENDING,
                    worker="existing result" if done else "",
                    finished_at=now if done else None,
                )
            )
    return items


def _batches(job: PrecomputeJob, batch_size: int) -> list[tuple[list[int], str]]:
    explainer_of = {c["key"]: c["explainer"] for c in job.configs}
    grouped: dict[str, list[int]] = defaultdict(list)
    for item_id, key in (
        job.items.filter(status=PrecomputeItem.Status.PENDING)
        .order_by("pk")
        .values_list("pk", "config_key")
    ):
        grouped[key].append(item_id)
    batches = []
    # predictions first, so that the first visit shows the AI output soon
    for key in sorted(grouped, key=lambda k: (k != PREDICTION, k)):
        ids = grouped[key]
        size = max(batch_size * 4, 32) if key == PREDICTION else batch_size
        for start in range(0, len(ids), size):
            batches.append((ids[start : start + size], queue_for(explainer_of.get(key))))
    return batches


def precompute_cancel(*, acting_user, job: PrecomputeJob) -> PrecomputeJob:
    with transaction.atomic():
        updated = PrecomputeJob.objects.filter(
            pk=job.pk, status=PrecomputeJob.Status.RUNNING
        ).update(status=PrecomputeJob.Status.CANCELLED, finished_at=timezone.now())
        if not updated:
            raise ServiceError(f"job {job.pk} is {job.status}, not running")
        cancelled = job.items.filter(status=PrecomputeItem.Status.PENDING).update(
            status=PrecomputeItem.Status.CANCELLED, finished_at=timezone.now()
        )
        audit.record(
            acting_user=acting_user,
            action="precompute.cancel",
            obj=job,
            before={"status": "running"},
            after={"status": "cancelled", "items_cancelled": cancelled},
        )
    job.refresh_from_db()
    return job

