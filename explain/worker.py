"""The worker side of a precompute job: claim a batch of items, compute it, store it, finish.

Workers claim items with a conditional UPDATE (so a redelivered message or a second worker
never computes an item twice at the same time) and write results under unique constraints (so
a re-run overwrites, never duplicates). The task (:mod:`explain.tasks`) enacts the returned
:class:`RunOutcome`: it retries the `retry` ids, or sends each `split` id again on its own.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image

from core.storage import staged_writes
from explain import result_store, runtime
from explain.compute import engine
from explain.explainer_requests import explainer_config, queue_for
from explain.models import ClassifierModel, Explanation, PrecomputeItem, PrecomputeJob
from explain.precompute_state import MAX_ATTEMPTS, PREDICTION, job_finish_if_complete
from library import model_input
from library.models import Case, CaseLabel, LesionMask

logger = logging.getLogger(__name__)

ABANDONED = (
    "abandoned {n} times: its worker stopped (crashed, was killed or ran past the time limit) "
    "while computing it"
)


@dataclass(frozen=True)
class RunOutcome:
    """What became of a batch: how many items were claimed and done or failed; after a failure,
    the ids to try again as one batch (`retry`) or each on its own on `queue` (`split`)."""

    claimed: int = 0
    done: int = 0
    failed: int = 0
    retry: tuple[int, ...] = ()
    split: tuple[int, ...] = ()
    queue: str | None = None
    error: str = ""

    def summary(self) -> dict:
        """The counts (and the failure's reason), as the task's result."""
        counts = {"done": self.done, "failed": self.failed, "error": self.error}
        return {"claimed": self.claimed} | {k: v for k, v in counts.items() if v}


def _stale_cutoff():
    """Items claimed before this are abandoned: a live worker would have hit its
    hard time limit by now. The broker redelivers a dead worker's message only
    after the visibility timeout, which settings keep above the time limit, so a
    redelivered message always finds its items reclaimable."""
    margin = min(30, (settings.CELERY_VISIBILITY_TIMEOUT - settings.CELERY_TASK_TIME_LIMIT) // 2)
    return timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + margin)


def _fail_abandoned(item_ids: list[int]) -> None:
    """Fail the items a dead worker left that have had all their attempts: a case that crashes
    its worker every time would otherwise be reclaimed, and crash one, at every redelivery."""
    abandoned = PrecomputeItem.objects.filter(
        pk__in=item_ids,
        job__status=PrecomputeJob.Status.RUNNING,
        status=PrecomputeItem.Status.RUNNING,
        started_at__lt=_stale_cutoff(),
        attempts__gte=MAX_ATTEMPTS,
    )
    job_ids = set(abandoned.values_list("job_id", flat=True))
    if abandoned.update(
        status=PrecomputeItem.Status.FAILED,
        finished_at=timezone.now(),
        error=ABANDONED.format(n=MAX_ATTEMPTS),
    ):
        for job_id in job_ids:
            job_finish_if_complete(job_id=job_id)


def _claim(item_ids: list[int]) -> tuple[str, list[PrecomputeItem]]:
    token = f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"
    _fail_abandoned(item_ids)
    PrecomputeItem.objects.filter(pk__in=item_ids, job__status=PrecomputeJob.Status.RUNNING).filter(
        Q(status=PrecomputeItem.Status.PENDING)
        | Q(status=PrecomputeItem.Status.RUNNING, started_at__lt=_stale_cutoff())
    ).update(
        status=PrecomputeItem.Status.RUNNING,
        worker=token,
        started_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    claimed = list(
        PrecomputeItem.objects.filter(
            pk__in=item_ids, worker=token, status=PrecomputeItem.Status.RUNNING
        )
        .select_related("job", "job__model", "case")
        .order_by("pk")
    )
    return token, claimed


def precompute_run_items(*, item_ids: list[int], device: str | None = None) -> RunOutcome:
    """Claim and compute items (all of one configuration).

    Safe to call again with the same ids: items done by anyone are skipped. A failure puts
    the claimed items back to pending for a retry, or marks them failed with the reason once
    MAX_ATTEMPTS is reached. A batch of several items that fails is retried item by item
    (`split`), so that one bad case does not fail its batch mates; a single item is retried
    as it is (`retry`).
    """
    token, items = _claim(item_ids)
    if not items:
        return RunOutcome()
    job = items[0].job
    try:
        _compute_and_store(job, items, device)
    except Exception as exc:  # the reason is recorded; the job continues with other items
        logger.exception("precompute items %s failed", [i.pk for i in items])
        return _failed(job, items, token, f"{type(exc).__name__}: {exc}"[:2000])
    job_finish_if_complete(job_id=job.pk)
    return RunOutcome(claimed=len(items), done=len(items))


def _failed(job: PrecomputeJob, items: list[PrecomputeItem], token: str, reason: str) -> RunOutcome:
    retry_ids = tuple(i.pk for i in items if i.attempts < MAX_ATTEMPTS)
    PrecomputeItem.objects.filter(pk__in=retry_ids, worker=token).update(
        status=PrecomputeItem.Status.PENDING, error=reason
    )
    PrecomputeItem.objects.filter(
        pk__in=[i.pk for i in items if i.attempts >= MAX_ATTEMPTS], worker=token
    ).update(status=PrecomputeItem.Status.FAILED, error=reason, finished_at=timezone.now())
    job_finish_if_complete(job_id=job.pk)
    failed = {"claimed": len(items), "failed": len(items), "error": reason}
    if len(items) == 1:
        return RunOutcome(**failed, retry=retry_ids)
    key = items[0].config_key
    explainer = next((c["explainer"] for c in job.configs if c["key"] == key), None)
    return RunOutcome(**failed, split=retry_ids, queue=queue_for(explainer))


def _compute_and_store(job: PrecomputeJob, items: list[PrecomputeItem], device_name) -> None:
    model_record = job.model
    device = engine.pick_device(device_name)
    model = runtime.load_model(model_record, device)
    key = items[0].config_key
    cases = [item.case for item in items]
    inputs = _case_inputs(model_record, cases, with_masks=key != PREDICTION and job.with_metrics)
    device_label = (
        str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})"
    )
    positive_index = model_record.class_labels.index(model_record.positive_class)
    if key == PREDICTION:
        result_store.predictions_store(
            model_record=model_record,
            items=items,
            probabilities=engine.predict(model, inputs, device),
            positive_index=positive_index,
            device_label=device_label,
        )
        return
    config_entry = next(c for c in job.configs if c["key"] == key)
    with staged_writes() as staged:
        files = _result_files(
            result_store.result_lookup(job, config_entry),
            [item.case_id for item in items],
            overlap=_overlap_writes(device),
            staged=staged,
        )
        try:
            outputs = _explanation_outputs(
                job, config_entry, model, inputs, device, positive_index, files
            )
            result_store.explanations_store(
                job=job,
                config_entry=config_entry,
                items=items,
                outputs=outputs,
                device_label=device_label,
                files=files,
            )
        except BaseException:
            files.settle()  # the staged files go once no pool thread writes them any more
            raise


def _overlap_writes(device) -> bool:
    """Whether writing files while the engine computes takes no core from the computation:
    on an accelerator, or where the CPU has more cores than torch uses."""
    return device.type != "cpu" or (os.cpu_count() or 1) > torch.get_num_threads()


def _result_files(lookup: dict, case_ids: list[int], *, overlap: bool, staged):
    uids = dict(
        Explanation.objects.filter(**lookup, case_id__in=case_ids).values_list("case_id", "uid")
    )
    new = {case_id for case_id in case_ids if case_id not in uids}
    uids.update({case_id: uuid.uuid4() for case_id in new})
    return result_store.ResultFiles(uids, new, staged, overlap=overlap)


def _explanation_outputs(job, config_entry, model, inputs, device, positive_index, files) -> list:
    """The engine's outputs for a batch; map files start being written as each case's map
    is ready (``files.submit``), while the engine goes on with the next case."""
    model_record = job.model
    config = explainer_config(config_entry)
    if config.name == "similar_cases":
        return _similar_outputs(job, config, model, inputs, device)
    randomized = runtime.load_randomized_model(model_record, device, seed=config.seed)
    return engine.explain_batch(
        randomized if config_entry["placebo"] else model,
        inputs,
        config,
        target=positive_index,
        device=device,
        cam_layer=model_record.cam_layer or None,
        randomized_model=None if config_entry["placebo"] else randomized,
        with_metrics=job.with_metrics,
        on_output=files.submit,
    )


def _similar_outputs(job, config, model, inputs, device) -> list:
    """Similar cases among the collection's train split (all its cases when it has none),
    each shown with its labels."""
    reference = list(
        Case.objects.filter(collection=job.collection, split="train").order_by("pk")
    ) or list(Case.objects.filter(collection=job.collection).order_by("pk"))
    reference_inputs = np.stack([i.x for i in _case_inputs(job.model, reference)])
    outputs = engine.similar_cases(
        model,
        inputs,
        reference_inputs,
        [c.pk for c in reference],
        k=config.params["k"],
        device=device,
    )
    labels = _labels_of([s["case_id"] for out in outputs for s in out.similar])
    for output in outputs:
        for neighbour in output.similar:
            neighbour["labels"] = labels.get(neighbour["case_id"], {})
    return outputs


def _labels_of(case_ids) -> dict[int, dict]:
    labels: dict[int, dict] = defaultdict(dict)
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=set(case_ids)).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    return labels


def _case_inputs(model: ClassifierModel, cases: list[Case], *, with_masks: bool = False):
    """The engine's inputs of `cases`; their lesion masks (one query for all cases) only
    when `with_masks`: the localisation metrics are the masks' only user."""
    mask_files: dict[int, str] = {}
    if with_masks:
        for case_id, name in (
            LesionMask.objects.filter(case_id__in=[case.pk for case in cases])
            .order_by("case_id", "pk")
            .values_list("case_id", "file")
        ):
            mask_files.setdefault(case_id, name)
    inputs = []
    for case in cases:
        mask = None
        if case.pk in mask_files:
            with default_storage.open(mask_files[case.pk], "rb") as handle:
                mask = np.array(Image.open(handle)) > 0
        inputs.append(
            engine.CaseInput(
                case_id=case.pk,
                x=model_input.case_model_input(case=case, input_spec=model.input_spec),
                rows=case.rows,
                columns=case.columns,
                mask=mask,
            )
        )
    return inputs
