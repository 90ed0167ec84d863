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


def _freeze_holding_an_item(worker: subprocess.Popen, job, timeout: float) -> None:
    """Stop (SIGSTOP) the worker's process group at a moment when one of its items is RUNNING in
    the database. Checking after the stop, not before, closes the race in which the item is
    finished between the check and the kill: a stopped worker commits nothing more."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        _wait(lambda: job.items.filter(status=PrecomputeItem.Status.DONE).exists()
              and job.items.filter(status=PrecomputeItem.Status.RUNNING).exists(),
              max(remaining, 0.1), "work in progress", worker)
        os.killpg(worker.pid, signal.SIGSTOP)
        if job.items.filter(status=PrecomputeItem.Status.RUNNING).exists():
            return
        os.killpg(worker.pid, signal.SIGCONT)
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker to hold an item")


def _counts(*, done: int, failed: int = 0) -> dict:
    """A configuration's progress counters once its job is over."""
    counts = dict.fromkeys(PrecomputeItem.Status.values, 0)
    counts.update(done=done, failed=failed, total=done + failed)
    return counts


def _assert_every_item_exactly_once(job, collection, model):
    progress = selectors.precompute_progress(job=job)
    cases = collection.cases.count()
    assert progress["status"] == "done"
    assert progress["done"] == progress["total"] == cases * (1 + len(EXPLAINERS)), progress
    assert progress["failed"] == progress["pending"] == progress["running"] == 0
    assert progress["failures"] == []
    # the job's progress counters, per configuration: every case done, none failed or left
    assert progress["per_config"] == {key: _counts(done=cases) for key in ["prediction", *EXPLAINERS]}
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
        _freeze_holding_an_item(first, job, 180)
        os.killpg(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(timeout=30)
        progress = selectors.precompute_progress(job=job)
        assert progress["status"] == "running" and progress["done"] < progress["total"]
    finally:
        _stop(first)
    # a worker restores unacknowledged messages older than the visibility timeout (15 s here) when
    # it starts: start the replacement once the killed worker's message qualifies
    time.sleep(max(0.0, killed_at + 16 - time.monotonic()))
    second = _worker(services_available, settings.MEDIA_ROOT, "replacement")
    try:
        _wait(lambda: selectors.precompute_progress(job=job)["status"] != "running", 300, "the replacement worker", second)
        _assert_every_item_exactly_once(job, collection, model)
        # the item the killed worker held was claimed a second time, and computed once more, not twice stored
        assert job.items.filter(attempts__gte=2).exists()
    finally:
        _stop(second)


def test_a_case_that_keeps_failing_is_given_up_after_bounded_retries_and_the_job_still_finishes(
    services_available, demo_dataset, tmp_path, settings
):
    """A case whose stored source file is gone fails every try. Its items are retried a bounded number of
    times and then failed with the reason; its batch mates are retried on their own and done
    once; the job finishes instead of retrying forever."""
    from django.core.files.storage import default_storage

    from explain.precompute_state import MAX_ATTEMPTS

    explainers = ["gradcam", "saliency"]
    collection = import_demo_collection(demo_dataset)
    model = register_demo_architecture(tmp_path)
    cases = collection.cases.count()
    victim = collection.cases.order_by("pk")[1]  # the second case of its batches: it has batch mates
    default_storage.delete(victim.source_file.name)  # the model's input is made from it
    worker = _worker(services_available, settings.MEDIA_ROOT, "w-poison")
    try:
        job = services.precompute_start(
            acting_user=None, model=model, collection=collection, explainers=explainers, batch_size=2,
            with_metrics=False,
        )
        _wait(lambda: selectors.precompute_progress(job=job)["status"] != "running", 240, "the job to finish", worker)
    finally:
        _stop(worker)
    progress = selectors.precompute_progress(job=job)
    assert progress["status"] == "done"
    assert progress["per_config"] == {key: _counts(done=cases - 1, failed=1) for key in ["prediction", *explainers]}
    failed = list(job.items.filter(status=PrecomputeItem.Status.FAILED))
    assert {item.case_id for item in failed} == {victim.pk} and len(failed) == 1 + len(explainers)
    for item in failed:
        assert item.attempts == MAX_ATTEMPTS  # bounded: tried exactly MAX_ATTEMPTS times, then given up
        assert "FileNotFoundError" in item.error and item.finished_at is not None
    assert {(f["case"], f["config"]) for f in progress["failures"]} == {
        (victim.pk, key) for key in ["prediction", *explainers]
    }
    assert all(f["error"] for f in progress["failures"])
    # the batch mates were retried on their own and stored once
    assert Prediction.objects.filter(model=model).count() == cases - 1
    for name in explainers:
        assert Explanation.objects.filter(model=model, explainer=name).count() == cases - 1
    assert max(job.items.filter(status=PrecomputeItem.Status.DONE).values_list("attempts", flat=True)) <= 2


def test_an_item_whose_workers_died_on_every_attempt_is_failed_when_its_message_comes_back(settings):
    """A case that crashes its worker (out of memory, a segfault) leaves its item running; the
    broker redelivers the message after the visibility timeout and a worker reclaims the item.
    Once the item has had all its attempts it is failed with a reason instead of being reclaimed
    (and crashing a worker) at every redelivery, and the job finishes."""
    from datetime import timedelta

    from django.utils import timezone

    from explain.models import PrecomputeJob
    from explain.precompute_state import MAX_ATTEMPTS
    from explain.worker import RunOutcome, precompute_run_items
    from tests.studies.factories import make_collection, make_model

    collection = make_collection(cases=2)
    job = PrecomputeJob.objects.create(model=make_model(), collection=collection, configs=[])
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT + 60)
    first, second = collection.cases.order_by("pk")
    crashed = PrecomputeItem.objects.create(
        job=job, case=first, config_key="prediction", status=PrecomputeItem.Status.RUNNING,
        attempts=MAX_ATTEMPTS, started_at=long_ago, worker="dead-host:0123456789ab",
    )
    PrecomputeItem.objects.create(
        job=job, case=second, config_key="prediction", status=PrecomputeItem.Status.DONE, attempts=1,
        finished_at=long_ago,
    )

    assert precompute_run_items(item_ids=[crashed.pk]) == RunOutcome(claimed=0)
    crashed.refresh_from_db()
    assert crashed.status == PrecomputeItem.Status.FAILED
    assert crashed.attempts == MAX_ATTEMPTS
    assert f"abandoned {MAX_ATTEMPTS} times" in crashed.error and crashed.finished_at is not None
    progress = selectors.precompute_progress(job=job)
    assert progress["status"] == "done"
    assert progress["per_config"] == {"prediction": _counts(done=1, failed=1)}
