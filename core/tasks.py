"""The one way to declare and enqueue a Celery task.

`task` owns what every task shares: a stable name, its queue, late acknowledgement (a worker
that dies mid-task leaves the message to be redelivered), time limits and bounded retries.
Tasks take ids and are idempotent. `enqueue_on_commit` sends a task by name once the
surrounding transaction commits, so a service never imports its app's tasks module (no
services <-> tasks cycle) and a worker never reads a row that was rolled back.

The probe below is the task every deployment has.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from celery import current_app, shared_task
from django.db import transaction

DEFAULT_QUEUE = "default"
DEFAULT_MAX_RETRIES = 3
# Each task's declared queue, routed by `route_task` (config/celery.py's task_routes): Celery 6
# drops the per-task `queue` attribute. A queue given to apply_async still wins.
_DECLARED_QUEUES: dict[str, str] = {}


def route_task(name, args, kwargs, options, task=None, **extra) -> dict | None:
    """Celery router: the queue a task was declared with."""
    queue = _DECLARED_QUEUES.get(name)
    return {"queue": queue} if queue else None


def task(
    *,
    name: str,
    queue: str = DEFAULT_QUEUE,
    max_retries: int = DEFAULT_MAX_RETRIES,
    soft_time_limit: int | None = None,
    time_limit: int | None = None,
    bind: bool = False,
) -> Callable:
    """Declare a task. Limits left as None take the settings' CELERY_TASK_*_TIME_LIMIT."""
    _DECLARED_QUEUES[name] = queue
    options = {
        "name": name,
        "bind": bind,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "max_retries": max_retries,
    }
    if soft_time_limit is not None:
        options["soft_time_limit"] = soft_time_limit
    if time_limit is not None:
        options["time_limit"] = time_limit
    return shared_task(**options)


def enqueue_on_commit(name: str, *, args: tuple | list = (), queue: str | None = None) -> None:
    """Send task `name` with `args` when the current transaction commits (at once outside one).

    Looked up by name in the app's registry (autodiscovered), so eager mode, used by the
    zero-setup default and the tests, runs it inline like any other call."""

    def send() -> None:
        if name not in current_app.tasks:  # a web process has not imported the tasks modules
            current_app.loader.import_default_modules()  # fires Django's autodiscovery
        registered = current_app.tasks[name]
        options = {"queue": queue} if queue else {}
        registered.apply_async(args=list(args), **options)

    transaction.on_commit(send)


@task(name="core.worker_probe")
def worker_probe() -> dict:
    """Report the worker's host and whether it sees a CUDA device (used by health checks)."""
    import torch  # heavy, and only a worker answering the probe needs it

    return {
        "hostname": platform.node(),
        "torch": torch.__version__,
        "cuda": bool(torch.cuda.is_available()),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
