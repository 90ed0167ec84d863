"""The Celery app against a real worker and a real Redis broker.

Needs CELERY_BROKER_URL pointing at Redis (CI sets it); skipped with a reason
elsewhere, failed in CI if Redis is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from celery import Celery

from config.celery import app
from tests.conftest import REPO_ROOT, require_service


def _redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        return None
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception:
        return None
    return url


def test_celery_app_declares_default_and_gpu_queues_with_late_acks():
    names = {queue.name for queue in app.conf.task_queues}
    assert names == {"default", "gpu", "gpu_low"}
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    from django.conf import settings

    assert settings.CELERY_TASK_TIME_LIMIT < settings.CELERY_VISIBILITY_TIMEOUT
    assert (
        app.conf.broker_transport_options["visibility_timeout"]
        == settings.CELERY_VISIBILITY_TIMEOUT
    )


@pytest.mark.service
def test_real_worker_on_redis_runs_a_task_sent_to_the_gpu_queue():
    url = _redis_url()
    require_service(
        "Redis broker", url is not None, "set CELERY_BROKER_URL=redis://127.0.0.1:6379/14"
    )
    env = dict(
        os.environ, CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url, CELERY_TASK_ALWAYS_EAGER="0"
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "gpu",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"probe-{os.getpid()}@%h",
            "--loglevel",
            "WARNING",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    client = Celery("probe-client", broker=url, backend=url)
    try:
        result = client.send_task("core.worker_probe", queue="gpu")
        deadline = time.monotonic() + 90
        while not result.ready() and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read().decode()
            time.sleep(0.2)
        payload = result.get(timeout=5)
        assert payload["cuda"] in (True, False)
        assert payload["torch"].startswith("2.13")
    finally:
        client.close()
        worker.terminate()
        worker.wait(timeout=30)
