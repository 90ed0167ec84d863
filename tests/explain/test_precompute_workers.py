"""Precompute through real Celery workers on Redis and PostgreSQL, including a
worker killed with SIGKILL in the middle of a job.

Needs CELERY_BROKER_URL=redis://... and DATABASE_URL=postgres://... (CI sets
both); skipped with a reason elsewhere, failed in CI if they are missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from config.celery import app
from explain import selectors, services
from explain.models import Explanation, PrecomputeItem, Prediction
from tests.conftest import REPO_ROOT, require_service
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture

pytestmark = [pytest.mark.service, pytest.mark.django_db(transaction=True)]

EXPLAINERS = ["gradcam", "saliency", "integrated_gradients"]


@pytest.fixture
def services_available(settings):
    broker = os.environ.get("CELERY_BROKER_URL", "")
    ok = broker.startswith("redis://")
    if ok:
        import redis

        try:
            redis.Redis.from_url(broker, socket_connect_timeout=2).ping()
        except Exception:
            ok = False
    require_service("Redis broker", ok, "set CELERY_BROKER_URL=redis://127.0.0.1:6379/14")
    require_service(
        "PostgreSQL database", connection.vendor == "postgresql",
        "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/xai_reader_study; workers share the test database",
    )
    import redis

    redis.Redis.from_url(broker).flushdb()  # no messages left over from an earlier run
    old = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield broker
    app.conf.task_always_eager = old


def _worker(broker: str, media_root, name: str) -> subprocess.Popen:
    db = connection.settings_dict
    log = (media_root.parent / f"worker-{name}.log").open("ab")
    env = dict(
        os.environ,
        CELERY_BROKER_URL=broker,
        CELERY_TASK_ALWAYS_EAGER="0",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        XRS_MEDIA_ROOT=str(media_root),
        # short limits so that a killed worker's message comes back within seconds
        CELERY_VISIBILITY_TIMEOUT="15",
        CELERY_TASK_TIME_LIMIT="10",
        CELERY_TASK_SOFT_TIME_LIMIT="8",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu,gpu_low", "--pool", "solo",
         "--concurrency", "1", "--without-heartbeat", "--without-gossip", "--without-mingle",
         "-n", f"{name}-{os.getpid()}@%h", "--loglevel", "INFO"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait(predicate, timeout: float, what: str, worker: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"the worker exited with {worker.returncode} while waiting for {what}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _assert_every_item_exactly_once(job, collection, model):
    progress = selectors.precompute_progress(job=job)
    cases = collection.cases.count()
    assert progress["status"] == "done"
    assert progress["done"] == progress["total"] == cases * (1 + len(EXPLAINERS)), progress
    assert Prediction.objects.filter(model=model).count() == cases
    for name in EXPLAINERS:
        assert Explanation.objects.filter(model=model, explainer=name).count() == cases
        assert job.items.filter(config_key=name, status=PrecomputeItem.Status.DONE).count() == cases


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_a_job_on_a_real_worker_completes_with_every_item_exactly_once(services_available, demo_dataset, tmp_path, settings):
    collection = import_demo_collection(demo_dataset)
    model = register_demo_architecture(tmp_path)
    worker = _worker(services_available, settings.MEDIA_ROOT, "w1")
    try:
        job = services.precompute_start(
            acting_user=None, model=model, collection=collection, explainers=EXPLAINERS, batch_size=2,
            with_metrics=False,
        )
        _wait(lambda: selectors.precompute_progress(job=job)["status"] != "running", 240, "the job to finish", worker)
        _assert_every_item_exactly_once(job, collection, model)
        assert set(job.items.values_list("attempts", flat=True)) == {1}
    finally:
        _stop(worker)


def test_a_worker_killed_mid_job_is_replaced_and_every_item_is_still_done_once(
    services_available, demo_dataset, tmp_path, settings
):
    collection = import_demo_collection(demo_dataset)
    model = register_demo_architecture(tmp_path)
    first = _worker(services_available, settings.MEDIA_ROOT, "doomed")
    try:
        job = services.precompute_start(
            acting_user=None, model=model, collection=collection, explainers=EXPLAINERS, batch_size=1,
            with_metrics=False,
        )
        _wait(lambda: job.items.filter(status=PrecomputeItem.Status.DONE).exists()
              and job.items.filter(status=PrecomputeItem.Status.RUNNING).exists(), 180, "work in progress", first)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        progress = selectors.precompute_progress(job=job)
        assert progress["status"] == "running" and progress["done"] < progress["total"]
    finally:
        _stop(first)
    second = _worker(services_available, settings.MEDIA_ROOT, "replacement")
    try:
        _wait(lambda: selectors.precompute_progress(job=job)["status"] != "running", 300, "the replacement worker", second)
        _assert_every_item_exactly_once(job, collection, model)
        # the item the killed worker held was claimed a second time, and computed once more, not twice stored
        assert job.items.filter(attempts__gte=2).exists()
    finally:
        _stop(second)
