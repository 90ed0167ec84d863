"""Writes of the explanation engine: starting, running and cancelling precompute jobs.

A job is (model, collection, explainer configurations). It holds one item per
case × configuration plus one `prediction` item per case. Workers claim items
with a conditional UPDATE (so a redelivered message or a second worker never
computes an item twice at the same time) and write results under unique
constraints (so a re-run overwrites, never duplicates).

A batch of explanations is stored like this: each result's files are encoded
and written by a small thread pool while the engine goes on with the batch's
next cases (zlib and file IO release the GIL), each file by an atomic rename;
then one transaction upserts the batch's rows in bulk and marks its items done.
A new result's files sit in a fresh folder named by its row's uid and are
removed again when the batch fails before its commit.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import defaultdict
from concurrent import futures
from datetime import timedelta
from pathlib import Path

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
from explain.models import ClassifierModel, Explanation, PrecomputeItem, PrecomputeJob, Prediction
from library.models import Case, Collection, LesionMask

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
            raw_params = entry.get("params") or {}
            k = raw_params.get("k", DEFAULT_SIMILAR_K) if isinstance(raw_params, dict) else None
            unknown = sorted(set(raw_params) - {"k"}) if isinstance(raw_params, dict) else []
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100 or unknown:
                problems.append(
                    f"similar_cases: unknown parameter {unknown[0]!r} (known: k)"
                    if unknown
                    else "similar_cases: k must be a whole number from 1 to 100"
                )
                continue
            params, seed = {"k": k}, 0
            import hashlib
            import json

            param_hash = hashlib.sha256(
                json.dumps({"similar_cases": params}, sort_keys=True).encode()
            ).hexdigest()
        else:
            seed = entry.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
                problems.append(f"{name}: seed must be a whole number from 0 to 2**63 - 1")
                continue
            try:
                config = resolve(name, entry.get("params"), seed)
            except ValueError as exc:  # the message names the explainer already
                message = str(exc)
                problems.append(message if message.startswith(f"{name}:") else f"{name}: {message}")
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
    return configs


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
    configs = _resolve_configs(model, explainers, placebo) if explainers or placebo else []
    cases = Case.objects.filter(collection=collection)
    if split:
        cases = cases.filter(split=split)
    chosen = case_ids is not None
    if chosen:
        cases = cases.filter(pk__in=list(case_ids))
    case_ids = list(cases.order_by("pk").values_list("pk", flat=True))
    if not case_ids:
        raise ServiceError(
            f"collection {collection.name!r} has no cases"
            + (f" in split {split!r}" if split else "")
            + (" among the chosen cases" if chosen else "")
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


ABANDONED = (
    "abandoned {n} times: its worker stopped (crashed, was killed or ran past the time limit) "
    "while computing it"
)


def _fail_abandoned(item_ids: list[int]) -> None:
    """Fail the items a dead worker left that have had all their attempts: a case that crashes
    its worker every time would otherwise be reclaimed, and crash one, at every redelivery."""
    abandoned = PrecomputeItem.objects.filter(
        pk__in=item_ids, job__status=PrecomputeJob.Status.RUNNING, status=PrecomputeItem.Status.RUNNING,
        started_at__lt=_stale_cutoff(), attempts__gte=MAX_ATTEMPTS,
    )
    job_ids = set(abandoned.values_list("job_id", flat=True))
    if abandoned.update(
        status=PrecomputeItem.Status.FAILED, finished_at=timezone.now(), error=ABANDONED.format(n=MAX_ATTEMPTS)
    ):
        for job_id in job_ids:
            _finish_if_complete(job_id)


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


def precompute_run_items(*, item_ids: list[int], device: str | None = None) -> dict:
    """Claim and compute items (all of one configuration); return counts.

    Safe to call again with the same ids: items done by anyone are skipped.
    A failure puts the claimed items back to pending for a retry, or marks
    them failed with the reason once MAX_ATTEMPTS is reached. A batch of several
    items that fails is retried item by item (`split`, each on queue `queue`),
    so that one bad case does not fail its batch mates; a single item is
    retried as it is (`retry`).
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
        if len(items) > 1:
            explainer = next((c["explainer"] for c in job.configs if c["key"] == items[0].config_key), None)
            return {
                "claimed": len(items), "failed": len(items), "split": retry_ids,
                "queue": queue_for(items[0].config_key, explainer), "error": reason,
            }
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


def _case_inputs(model: ClassifierModel, cases: list[Case], *, with_masks: bool = False):
    """The engine's inputs of `cases`; their lesion masks (one query for all cases) only
    when `with_masks`: the localisation metrics are the masks' only user."""
    from explain.compute.engine import CaseInput
    from library import model_input

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
            CaseInput(
                case_id=case.pk,
                x=model_input.case_model_input(case=case, input_spec=model.input_spec),
                rows=case.rows,
                columns=case.columns,
                mask=mask,
            )
        )
    return inputs


# --------------------------------------------------------------------------- result files

STORE_THREADS = max(2, min(4, os.cpu_count() or 1))
"""Threads per worker process that encode and write result files."""
RESULT_FILES = (
    ("heatmap_file", "heatmap.npy"),
    ("normalized_file", "normalized.npy"),
    ("overlay_file", "overlay.png"),
)
_pool_lock = threading.Lock()
_pool: tuple[int, futures.ThreadPoolExecutor] | None = None


def _store_pool() -> futures.ThreadPoolExecutor:
    """The process's writer pool, created on first use (and anew in a forked child)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (
                os.getpid(),
                futures.ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="precompute-store"),
            )
        return _pool[1]


def _write_file(name: str, content: bytes) -> str:
    """Write `content` at `name` in the default storage, replacing what is there. On a local
    file system the file appears whole or not at all (a temporary file, then a rename)."""
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:  # a storage without local paths
        if default_storage.exists(name):
            default_storage.delete(name)
        return default_storage.save(name, ContentFile(content))
    path.parent.mkdir(parents=True, exist_ok=True)
    directory_mode = getattr(default_storage, "directory_permissions_mode", None)
    if directory_mode is not None:
        os.chmod(path.parent, directory_mode)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
        file_mode = getattr(default_storage, "file_permissions_mode", None)
        if file_mode is not None:
            os.chmod(temporary, file_mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return name


def _write_case_files(folder: str, maps) -> dict[str, str]:
    """Encode and write one result's three files (in a pool thread); its row's file fields."""
    contents = {
        "heatmap_file": maps.heatmap_npy,
        "normalized_file": maps.normalized_npy,
        "overlay_file": maps.overlay_png,
    }
    return {
        field: _write_file(f"{folder}/{filename}", contents[field]())
        for field, filename in RESULT_FILES
    }


class _ResultFiles:
    """The files of one batch's results, encoded and written by the pool.

    `uids` holds each case's row uid, which names the folder of its files: an existing
    row's (its files are replaced in place) or a fresh one for a row still to be created
    (the cases in `new`); nothing else uses a fresh folder, so :meth:`discard` may remove it.
    With `overlap`, a result's files are started as soon as it arrives (while the engine
    goes on with the next case); otherwise they wait for :meth:`start`.
    """

    def __init__(self, uids: dict[int, uuid.UUID], new: set[int], *, overlap: bool = True):
        self.uids = uids
        self.new = new
        self.overlap = overlap
        self.held: list = []
        self.pending: dict[int, futures.Future] = {}

    def folder(self, case_id: int) -> str:
        return f"explanations/{self.uids[case_id]}"

    def expected(self, case_id: int) -> dict[str, str]:
        """The row's file fields for the case's files (none for a result without a map)."""
        if case_id not in self.pending and all(o.case_id != case_id for o in self.held):
            return {}
        return {field: f"{self.folder(case_id)}/{filename}" for field, filename in RESULT_FILES}

    def submit(self, output) -> None:
        if output.maps is None:
            return
        self.held.append(output)
        if self.overlap:
            self.start()

    def start(self) -> None:
        pool = _store_pool()
        for output in self.held:
            self.pending[output.case_id] = pool.submit(
                _write_case_files, self.folder(output.case_id), output.maps
            )
        self.held = []

    def wait(self) -> dict[int, dict[str, str]]:
        """Each case's file fields once every write has ended; a failed write raises."""
        self.start()
        futures.wait(list(self.pending.values()))
        return {case_id: future.result() for case_id, future in self.pending.items()}

    def discard(self) -> None:
        """After a failure before the commit: let running writes end, then remove the
        files of results that had no row (an existing row keeps its replaced files)."""
        self.held = []
        futures.wait(list(self.pending.values()))
        for case_id in self.pending:
            if case_id in self.new:
                for _, filename in RESULT_FILES:
                    name = f"{self.folder(case_id)}/{filename}"
                    try:
                        default_storage.delete(name)
                    except OSError:
                        logger.warning("could not remove %s", name, exc_info=True)


def _overlap_writes(device) -> bool:
    """Whether writing files while the engine computes takes no core from the computation:
    on an accelerator, or where the CPU has more cores than torch uses."""
    import torch

    return device.type != "cpu" or (os.cpu_count() or 1) > torch.get_num_threads()


def _result_lookup(job: PrecomputeJob, config_entry: dict) -> dict:
    return dict(
        model=job.model,
        explainer=config_entry["explainer"],
        placebo=config_entry["placebo"],
        param_hash=config_entry["param_hash"],
    )


def _result_files(lookup: dict, case_ids: list[int], *, overlap: bool) -> _ResultFiles:
    uids = dict(
        Explanation.objects.filter(**lookup, case_id__in=case_ids).values_list("case_id", "uid")
    )
    new = {case_id for case_id in case_ids if case_id not in uids}
    uids.update({case_id: uuid.uuid4() for case_id in new})
    return _ResultFiles(uids, new, overlap=overlap)


# --------------------------------------------------------------------------- compute and store


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
    inputs = _case_inputs(model_record, cases, with_masks=key != PREDICTION and job.with_metrics)
    device_label = (
        str(device)
        if device.type == "cpu"
        else f"{device} ({__import__('torch').cuda.get_device_name(device)})"
    )
    positive_index = model_record.class_labels.index(model_record.positive_class)

    if key == PREDICTION:
        probabilities = engine.predict(model, inputs, device)
        _store_predictions(model_record, items, probabilities, positive_index, device_label)
        return {"done": len(items)}

    config_entry = next(c for c in job.configs if c["key"] == key)
    files = _result_files(
        _result_lookup(job, config_entry),
        [item.case_id for item in items],
        overlap=_overlap_writes(device),
    )
    try:
        outputs = _explanation_outputs(
            job, config_entry, model, inputs, device, positive_index, files
        )
        _store_explanations(job, config_entry, items, outputs, device_label, files)
    except BaseException:
        files.discard()
        raise
    return {"done": len(items)}


PREDICTION_VALUES = ("probabilities", "predicted_class", "positive_probability", "device", "created_at")


def _store_predictions(model_record, items, probabilities, positive_index, device_label) -> None:
    """Upsert a batch's predictions in bulk, in one transaction with marking the items done."""
    with transaction.atomic():
        existing = {
            prediction.case_id: prediction
            for prediction in Prediction.objects.select_for_update().filter(
                model=model_record, case_id__in=[item.case_id for item in items]
            )
        }
        now = timezone.now()
        create, update = [], []
        for item, probs in zip(items, probabilities, strict=True):
            values = {
                "probabilities": [float(p) for p in probs],
                "predicted_class": model_record.class_labels[int(np.argmax(probs))],
                "positive_probability": float(probs[positive_index]),
                "device": device_label,
                "created_at": now,
            }
            prediction = existing.get(item.case_id)
            if prediction is None:
                create.append(Prediction(model=model_record, case_id=item.case_id, **values))
                continue
            for name, value in values.items():
                setattr(prediction, name, value)
            update.append(prediction)
        Prediction.objects.bulk_create(create)
        if update:
            Prediction.objects.bulk_update(update, fields=list(PREDICTION_VALUES))
        _mark_done(items)


def _explanation_outputs(job, config_entry, model, inputs, device, positive_index, files) -> list:
    """The engine's outputs for a batch; map files start being written as each case's map
    is ready (``files.submit``), while the engine goes on with the next case."""
    from explain import runtime
    from explain.compute import engine

    model_record = job.model
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
        return outputs
    from explain.compute.explainers import resolve

    config = resolve(config_entry["explainer"], config_entry["params"], config_entry["seed"])
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


def _labels_of(case_ids) -> dict[int, dict]:
    from library.models import CaseLabel

    labels: dict[int, dict] = defaultdict(dict)
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=set(case_ids)).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    return labels


EXPLANATION_VALUES = (
    "params", "seed", "target_class", "raw_min", "raw_max", "highlighted_fraction", "similar_cases", "metrics", "seconds",
    "device", "created_at", "heatmap_file", "normalized_file", "overlay_file",
)


def _store_explanations(job, config_entry, items, outputs, device_label, files: _ResultFiles) -> None:
    """Upsert a batch's rows in bulk while its files are being written, wait for the files,
    mark the items done, and commit: one transaction per batch, not per case (on SQLite a
    commit costs an fsync). The caller removes the new results' files when this raises."""
    model_record = job.model
    by_case = {output.case_id: output for output in outputs}
    lookup = _result_lookup(job, config_entry)
    files.start()
    with transaction.atomic():
        existing = {
            explanation.case_id: explanation
            for explanation in Explanation.objects.select_for_update().filter(
                **lookup, case_id__in=[item.case_id for item in items]
            )
        }
        now = timezone.now()
        create, update, expected = [], [], {}
        for item in items:
            output = by_case[item.case_id]
            expected[item.case_id] = files.expected(item.case_id)
            values = {
                "params": config_entry["params"], "seed": config_entry["seed"],
                "target_class": model_record.positive_class, "raw_min": output.raw_min,
                "raw_max": output.raw_max, "highlighted_fraction": output.highlighted,
                "similar_cases": output.similar, "metrics": output.metrics,
                "seconds": output.seconds, "device": device_label, "created_at": now,
                **expected[item.case_id],
            }
            explanation = existing.get(item.case_id)
            if explanation is None:
                create.append(
                    Explanation(**lookup, case_id=item.case_id, uid=files.uids[item.case_id], **values)
                )
                continue
            if explanation.uid != files.uids[item.case_id]:
                # another job created this result after the files were placed: a retry redoes it
                raise RuntimeError(f"case {item.case_id}: another job stored this result meanwhile")
            for name, value in values.items():
                setattr(explanation, name, value)
            update.append(explanation)
        Explanation.objects.bulk_create(create)
        if update:
            Explanation.objects.bulk_update(update, fields=list(EXPLANATION_VALUES))
        for case_id, names in files.wait().items():
            if names != expected[case_id]:  # a storage that renamed a file on saving it
                Explanation.objects.filter(**lookup, case_id=case_id).update(**names)
        _mark_done(items)


def _mark_done(items: list[PrecomputeItem]) -> None:
    PrecomputeItem.objects.filter(
        pk__in=[i.pk for i in items], status=PrecomputeItem.Status.RUNNING
    ).update(status=PrecomputeItem.Status.DONE, finished_at=timezone.now(), error="")


def _user(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None
