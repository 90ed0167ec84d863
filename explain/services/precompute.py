"""Writes of the explanation engine: starting, running and cancelling precompute jobs.

A job is (model, collection, explainer configurations). It holds one item per
case × configuration plus one `prediction` item per case. Workers claim items
with a conditional UPDATE (so a redelivered message or a second worker never
computes an item twice at the same time) and write results under unique
constraints with update_or_create (so a re-run overwrites, never duplicates).
"""

from __future__ import annotations

import io
import logging
import socket
import uuid
from collections import defaultdict
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image

from core import audit
from core.errors import ServiceError
from explain.models import (
    Case,
    ClassifierModel,
    Collection,
    Explanation,
    PrecomputeItem,
    PrecomputeJob,
    Prediction,
)

logger = logging.getLogger(__name__)

PREDICTION = "prediction"
MAX_ATTEMPTS = 3
SLOW_EXPLAINERS = frozenset({"occlusion", "lime", "kernel_shap"})
ALIASES = {
    "ig": "integrated_gradients",
    "gradcam++": "gradcam_plus_plus",
    "gradcampp": "gradcam_plus_plus",
    "guided": "guided_gradcam",
    "shap": "kernel_shap",
    "gshap": "gradient_shap",
    "similar": "similar_cases",
}
DEFAULT_SIMILAR_K = 4


def canonical_explainer(name: str) -> str:
    name = name.strip().lower().replace("-", "_")
    return ALIASES.get(name, name)


def queue_for(config_key: str, explainer: str | None) -> str:
    return "gpu_low" if explainer in SLOW_EXPLAINERS else "gpu"


def _resolve_configs(model: ClassifierModel, explainers: list, placebo: list[str]) -> list[dict]:
    from explain.compute.explainers import resolve

    problems, configs, seen = [], [], set()
    requests = [(entry, False) for entry in explainers] + [(entry, True) for entry in placebo]
    for entry, is_placebo in requests:
        if isinstance(entry, str):
            entry = {"explainer": entry}
        name = canonical_explainer(str(entry.get("explainer", "")))
        support = model.explainers.get(name)
        if support is None:
            problems.append(
                f"unknown explainer {entry.get('explainer')!r}; known: {', '.join(model.explainers)}"
            )
            continue
        if not support.get("supported"):
            problems.append(
                f"{name} is unavailable for model {model.name}: {support.get('reason')}"
            )
            continue
        if name == "similar_cases":
            if is_placebo:
                problems.append("similar_cases has no placebo form")
                continue
            k = int((entry.get("params") or {}).get("k", DEFAULT_SIMILAR_K))
            params, seed = {"k": k}, 0
            import hashlib
            import json

            param_hash = hashlib.sha256(
                json.dumps({"similar_cases": params}, sort_keys=True).encode()
            ).hexdigest()
        else:
            try:
                config = resolve(name, entry.get("params"), int(entry.get("seed", 0)))
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            params, seed, param_hash = config.params, config.seed, config.param_hash()
        key = name + (":placebo" if is_placebo else "")
        if key in seen:
            key = f"{key}@{param_hash[:8]}"
        seen.add(key)
        configs.append(
            {
                "key": key,
                "explainer": name,
                "params": params,
                "seed": seed,
                "placebo": is_placebo,
                "param_hash": param_hash,
            }
        )
    if problems:
        raise ServiceError(problems)
    if not configs:
        raise ServiceError("choose at least one explainer")
    return configs


def precompute_start(
    *,
    acting_user,
    model: ClassifierModel,
    collection: Collection,
    explainers: list,
    placebo: list[str] | None = None,
    split: str | None = None,
    force: bool = False,
    batch_size: int = 8,
    with_metrics: bool = True,
) -> PrecomputeJob:
    """Create a job and enqueue its work after commit.

    Items whose result already exists are marked done at once unless `force`.
    """
    configs = _resolve_configs(model, list(explainers), list(placebo or []))
    cases = Case.objects.filter(collection=collection)
    if split:
        cases = cases.filter(split=split)
    case_ids = list(cases.order_by("pk").values_list("pk", flat=True))
    if not case_ids:
        raise ServiceError(
            f"collection {collection.name!r} has no cases"
            + (f" in split {split!r}" if split else "")
        )
    with transaction.atomic():
        job = PrecomputeJob.objects.create(
            model=model,
            collection=collection,
            configs=configs,
            created_by=_user(acting_user),
            with_metrics=with_metrics,
        )
        existing = set()
        if not force:
            results = Explanation.objects.filter(model=model, case_id__in=case_ids)
            if with_metrics:  # a result computed without metrics does not satisfy a job that wants them
                results = results.exclude(Q(metrics={}) & ~Q(explainer="similar_cases"))
            existing = {
                (row["case_id"], row["explainer"], row["placebo"], row["param_hash"])
                for row in results.values("case_id", "explainer", "placebo", "param_hash")
            }
            existing |= {
                (case_id, PREDICTION, False, "")
                for case_id in Prediction.objects.filter(
                    model=model, case_id__in=case_ids
                ).values_list("case_id", flat=True)
            }
        now = timezone.now()
        items = []
        for case_id in case_ids:
            for key, signature in [(PREDICTION, (PREDICTION, False, ""))] + [
                (c["key"], (c["explainer"], c["placebo"], c["param_hash"])) for c in configs
            ]:
                done = (case_id, *signature) in existing
                items.append(
                    PrecomputeItem(
                        job=job,
                        case_id=case_id,
                        config_key=key,
                        status=PrecomputeItem.Status.DONE
                        if done
                        else PrecomputeItem.Status.PENDING,
                        worker="existing result" if done else "",
                        finished_at=now if done else None,
                    )
                )
        PrecomputeItem.objects.bulk_create(items)
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
            _finish_if_complete(job.pk)
        transaction.on_commit(lambda: _enqueue(batches))
    return job


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
            batches.append((ids[start : start + size], queue_for(key, explainer_of.get(key))))
    return batches


def _enqueue(batches) -> None:
    from explain.tasks import precompute_items

    for item_ids, queue in batches:
        precompute_items.apply_async(args=[item_ids], queue=queue)


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


# --------------------------------------------------------------------------- worker side


def _stale_cutoff():
    """Items claimed before this are abandoned: a live worker would have hit its
    hard time limit by now. The broker redelivers a dead worker's message only
    after the visibility timeout, which settings keep above the time limit, so a
    redelivered message always finds its items reclaimable."""
    margin = min(30, (settings.CELERY_VISIBILITY_TIMEOUT - settings.CELERY_TASK_TIME_LIMIT) // 2)
    return timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + margin)


def _claim(item_ids: list[int]) -> tuple[str, list[PrecomputeItem]]:
    token = f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"
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


def precompute_run_items(*, item_ids: list[int], device: str | None = None) -> dict:
    """Claim and compute items (all of one configuration); return counts.

    Safe to call again with the same ids: items done by anyone are skipped.
    A failure puts the claimed items back to pending for a retry, or marks
    them failed with the reason once MAX_ATTEMPTS is reached.
    """
    token, items = _claim(item_ids)
    if not items:
        return {"claimed": 0}
    job = items[0].job
    try:
        outcome = _compute_and_store(job, items, device)
    except Exception as exc:  # the reason is recorded; the job continues with other items
        logger.exception("precompute items %s failed", [i.pk for i in items])
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        retry_ids = [i.pk for i in items if i.attempts < MAX_ATTEMPTS]
        PrecomputeItem.objects.filter(pk__in=retry_ids, worker=token).update(
            status=PrecomputeItem.Status.PENDING, error=reason
        )
        PrecomputeItem.objects.filter(
            pk__in=[i.pk for i in items if i.attempts >= MAX_ATTEMPTS], worker=token
        ).update(status=PrecomputeItem.Status.FAILED, error=reason, finished_at=timezone.now())
        _finish_if_complete(job.pk)
        return {"claimed": len(items), "failed": len(items), "retry": retry_ids, "error": reason}
    _finish_if_complete(job.pk)
    return {"claimed": len(items), **outcome}


def _finish_if_complete(job_id: int) -> None:
    open_items = PrecomputeItem.objects.filter(
        job_id=job_id, status__in=[PrecomputeItem.Status.PENDING, PrecomputeItem.Status.RUNNING]
    )
    if not open_items.exists():
        PrecomputeJob.objects.filter(pk=job_id, status=PrecomputeJob.Status.RUNNING).update(
            status=PrecomputeJob.Status.DONE, finished_at=timezone.now()
        )


def _case_inputs(model: ClassifierModel, cases: list[Case]):
    from explain import selectors
    from explain.compute.engine import CaseInput

    inputs = []
    for case in cases:
        mask_record = case.masks.first()
        mask = None
        if mask_record is not None:
            with default_storage.open(mask_record.file.name, "rb") as handle:
                mask = np.array(Image.open(handle)) > 0
        inputs.append(
            CaseInput(
                case_id=case.pk,
                x=selectors.case_model_input(case=case, input_spec=model.input_spec),
                rows=case.rows,
                columns=case.columns,
                mask=mask,
            )
        )
    return inputs


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float16), allow_pickle=False)
    return buffer.getvalue()


def _replace_file(name: str, content: bytes) -> str:
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(content))


def _compute_and_store(
    job: PrecomputeJob, items: list[PrecomputeItem], device_name: str | None
) -> dict:
    from explain import runtime
    from explain.compute import engine

    model_record = job.model
    device = engine.pick_device(device_name)
    model = runtime.load_model(model_record, device)
    key = items[0].config_key
    cases = [item.case for item in items]
    inputs = _case_inputs(model_record, cases)
    device_label = (
        str(device)
        if device.type == "cpu"
        else f"{device} ({__import__('torch').cuda.get_device_name(device)})"
    )
    positive_index = model_record.class_labels.index(model_record.positive_class)

    if key == PREDICTION:
        probabilities = engine.predict(model, inputs, device)
        with transaction.atomic():
            for item, probs in zip(items, probabilities, strict=True):
                Prediction.objects.update_or_create(
                    model=model_record,
                    case=item.case,
                    defaults={
                        "probabilities": [float(p) for p in probs],
                        "predicted_class": model_record.class_labels[int(np.argmax(probs))],
                        "positive_probability": float(probs[positive_index]),
                        "device": device_label,
                    },
                )
            _mark_done(items)
        return {"done": len(items)}

    config_entry = next(c for c in job.configs if c["key"] == key)
    if config_entry["explainer"] == "similar_cases":
        reference = list(
            Case.objects.filter(collection=job.collection, split="train").order_by("pk")
        ) or list(Case.objects.filter(collection=job.collection).order_by("pk"))
        reference_inputs = np.stack([i.x for i in _case_inputs(model_record, reference)])
        outputs = engine.similar_cases(
            model,
            inputs,
            reference_inputs,
            [c.pk for c in reference],
            k=config_entry["params"]["k"],
            device=device,
        )
        labels = _labels_of([o for out in outputs for o in [s["case_id"] for s in out.similar]])
        for output in outputs:
            for neighbour in output.similar:
                neighbour["labels"] = labels.get(neighbour["case_id"], {})
    else:
        from explain.compute.explainers import resolve

        config = resolve(config_entry["explainer"], config_entry["params"], config_entry["seed"])
        randomized = runtime.load_randomized_model(model_record, device, seed=config.seed)
        outputs = engine.explain_batch(
            randomized if config_entry["placebo"] else model,
            inputs,
            config,
            target=positive_index,
            device=device,
            cam_layer=model_record.cam_layer or None,
            randomized_model=None if config_entry["placebo"] else randomized,
            with_metrics=job.with_metrics,
        )
    _store_explanations(job, config_entry, items, outputs, device_label)
    return {"done": len(items)}


def _labels_of(case_ids) -> dict[int, dict]:
    from explain.models import CaseLabel

    labels: dict[int, dict] = defaultdict(dict)
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=set(case_ids)).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    return labels


def _store_explanations(job, config_entry, items, outputs, device_label) -> None:
    """Write a batch's files and rows in one transaction (one commit per batch,
    not per case: on SQLite a commit costs an fsync)."""
    model_record = job.model
    by_case = {output.case_id: output for output in outputs}
    lookup = dict(
        model=model_record, explainer=config_entry["explainer"], placebo=config_entry["placebo"],
        param_hash=config_entry["param_hash"],
    )
    written: list[str] = []
    try:
        with transaction.atomic():
            existing = {
                explanation.case_id: explanation
                for explanation in Explanation.objects.select_for_update().filter(
                    **lookup, case_id__in=[item.case_id for item in items]
                )
            }
            for item in items:
                output = by_case[item.case_id]
                explanation = existing.get(item.case_id) or Explanation.objects.create(
                    **lookup, case_id=item.case_id, params=config_entry["params"], seed=config_entry["seed"],
                    target_class=model_record.positive_class,
                )
                folder = f"explanations/{explanation.uid}"
                files = {}
                if output.heatmap is not None:
                    files = {
                        "heatmap_file": _replace_file(f"{folder}/heatmap.npy", _npy(output.heatmap)),
                        "normalized_file": _replace_file(f"{folder}/normalized.npy", _npy(output.normalized)),
                        "overlay_file": _replace_file(f"{folder}/overlay.png", output.overlay_png),
                    }
                    written.extend(files.values())
                Explanation.objects.filter(pk=explanation.pk).update(
                    params=config_entry["params"], seed=config_entry["seed"],
                    target_class=model_record.positive_class, raw_min=output.raw_min, raw_max=output.raw_max,
                    similar_cases=output.similar, metrics=output.metrics, seconds=output.seconds,
                    device=device_label, created_at=timezone.now(), **files,
                )
            _mark_done(items)
    except BaseException:
        # rows rolled back; files of rows that existed before are rewritten by the retry
        for name in written:
            if not Explanation.objects.filter(
                Q(heatmap_file=name) | Q(normalized_file=name) | Q(overlay_file=name)
            ).exists():
                default_storage.delete(name)
        raise


def _mark_done(items: list[PrecomputeItem]) -> None:
    PrecomputeItem.objects.filter(
        pk__in=[i.pk for i in items], status=PrecomputeItem.Status.RUNNING
    ).update(status=PrecomputeItem.Status.DONE, finished_at=timezone.now(), error="")


def _user(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None
