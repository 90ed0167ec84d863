"""Storing a batch's results: prediction rows, explanation rows and their files.

A batch of explanations is stored like this: each result's files are encoded and written by a
small thread pool while the engine goes on with the batch's next cases (zlib and file IO
release the GIL), each file whole or not at all (:func:`core.storage.storage_replace`); then one
transaction upserts the batch's rows in bulk and marks its items done. A new result's files sit
in a fresh folder named by its row's uid and are staged (:mod:`core.storage`): they are removed
again when the batch fails before its commit. An existing result's files are replaced in place.
"""

from __future__ import annotations

import os
import threading
import uuid
from concurrent import futures

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.storage import StagedWrites
from explain.models import Explanation, PrecomputeItem, Prediction

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


def result_lookup(job, config_entry: dict) -> dict:
    """The fields that name one configuration's results of the job's model."""
    return dict(
        model=job.model,
        explainer=config_entry["explainer"],
        placebo=config_entry["placebo"],
        param_hash=config_entry["param_hash"],
    )


class ResultFiles:
    """The files of one batch's results, encoded and written by the pool into `staged`.

    `uids` holds each case's row uid, which names the folder of its files: an existing row's
    (its files are replaced in place and kept on failure) or a fresh one for a row still to
    be created (the cases in `new`, whose files `staged` removes on failure). With `overlap`,
    a result's files are started as soon as it arrives (while the engine goes on with the next
    case); otherwise they wait for :meth:`start`.
    """

    def __init__(
        self, uids: dict[int, uuid.UUID], new: set[int], staged: StagedWrites, *, overlap: bool
    ):
        self.uids = uids
        self.new = new
        self.staged = staged
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
            self.pending[output.case_id] = pool.submit(self._write, output.case_id, output.maps)
        self.held = []

    def _write(self, case_id: int, maps) -> dict[str, str]:
        """Encode and write one result's three files (in a pool thread); its row's fields."""
        contents = {
            "heatmap_file": maps.heatmap_npy,
            "normalized_file": maps.normalized_npy,
            "overlay_file": maps.overlay_png,
        }
        return {
            field: self.staged.replace(
                f"{self.folder(case_id)}/{filename}",
                contents[field](),
                discard_on_failure=case_id in self.new,
            )
            for field, filename in RESULT_FILES
        }

    def wait(self) -> dict[int, dict[str, str]]:
        """Each case's file fields once every write has ended; a failed write raises."""
        self.start()
        futures.wait(list(self.pending.values()))
        return {case_id: future.result() for case_id, future in self.pending.items()}

    def settle(self) -> None:
        """After a failure: drop what was not started and let running writes end, so that the
        staged files can be removed."""
        self.held = []
        futures.wait(list(self.pending.values()))


PREDICTION_VALUES = (
    "probabilities",
    "predicted_class",
    "positive_probability",
    "device",
    "created_at",
)


def predictions_store(*, model_record, items, probabilities, positive_index, device_label) -> None:
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


EXPLANATION_VALUES = (
    "params", "seed", "target_class", "raw_min", "raw_max", "highlighted_fraction",
    "similar_cases", "metrics", "seconds", "device", "created_at",
    "heatmap_file", "normalized_file", "overlay_file",
)  # fmt: skip


def _explanation_values(job, config_entry, output, device_label, now, files_fields) -> dict:
    return {
        "params": config_entry["params"],
        "seed": config_entry["seed"],
        "target_class": job.model.positive_class,
        "raw_min": output.raw_min,
        "raw_max": output.raw_max,
        "highlighted_fraction": output.highlighted,
        "similar_cases": output.similar,
        "metrics": output.metrics,
        "seconds": output.seconds,
        "device": device_label,
        "created_at": now,
        **files_fields,
    }


def explanations_store(
    *, job, config_entry, items, outputs, device_label, files: ResultFiles
) -> None:
    """Upsert a batch's rows in bulk while its files are being written, wait for the files,
    mark the items done, and commit: one transaction per batch, not per case (on SQLite a
    commit costs an fsync). The caller removes the new results' files when this raises."""
    by_case = {output.case_id: output for output in outputs}
    lookup = result_lookup(job, config_entry)
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
            expected[item.case_id] = files.expected(item.case_id)
            values = _explanation_values(
                job, config_entry, by_case[item.case_id], device_label, now, expected[item.case_id]
            )
            explanation = existing.get(item.case_id)
            if explanation is None:
                uid = files.uids[item.case_id]
                create.append(Explanation(**lookup, case_id=item.case_id, uid=uid, **values))
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
