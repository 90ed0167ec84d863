"""The Celery app: queues `default` and `gpu`, settings fit for long GPU jobs."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

from core.tasks import route_task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("xai_reader_study")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    task_default_queue="default",
    # `gpu` for model work, `gpu_low` for the slow perturbation explainers
    # (occlusion, LIME, Kernel SHAP), so that a worker started with
    # `-Q gpu` serves the fast ones first and others may add `gpu_low`.
    task_queues=(Queue("default"), Queue("gpu"), Queue("gpu_low")),
    # Each task goes to the queue it was declared with (core.tasks.task).
    task_routes=(route_task,),
    # A task is acknowledged only once it has finished, so a worker that dies
    # mid-task leaves it to be redelivered; tasks are written to be idempotent.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # One message at a time per process: a GPU job can take minutes.
    worker_prefetch_multiplier=1,
    worker_max_tasks_per_child=200,
    task_track_started=True,
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    broker_connection_retry_on_startup=True,
)


def _configure_from_settings() -> None:
    from django.conf import settings

    app.conf.broker_transport_options = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}
    app.conf.result_backend_transport_options = {
        "visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT
    }


app.autodiscover_tasks()
