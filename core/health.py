"""Health checks for load balancers, orchestrators and the deployment smoke test.

Each check answers `{"ok": bool, "ms": float}` (plus `"mode"` where it says how the
service runs, and `"error"`, the exception's class name only, when it failed). The
details of a failure (host names, ports, URLs with credentials) go to the log, never
into the answer: /health/ is public.

- database: `SELECT 1` on the default connection;
- broker: a kombu connection to CELERY_BROKER_URL with a short timeout, or
  `"mode": "eager"` when no broker is configured (tasks run in-process);
- storage: write, read back and delete a small probe object in the default storage
  (the local file system or the shared S3 bucket).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from celery import current_app
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from kombu import Connection

from core.storage import staged_writes

logger = logging.getLogger(__name__)

#: Seconds a broker check waits for a connection; overridable as settings.XRS_HEALTH_TIMEOUT.
DEFAULT_TIMEOUT_SECONDS = 2.0
PROBE_DIR = "health"


class CheckFailed(Exception):
    """A check ran but found the service not working as it should."""


def _timeout() -> float:
    return float(getattr(settings, "XRS_HEALTH_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if not row or row[0] != 1:
        raise CheckFailed("SELECT 1 did not answer 1")
    return {}


def check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    if current_app.conf.task_always_eager or not url or url.startswith("memory://"):
        return {"mode": "eager"}
    timeout = _timeout()
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout, "max_retries": 0}
    with Connection(url, connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        client = getattr(conn.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()
    return {"mode": "broker"}


def check_storage() -> dict:
    payload = uuid.uuid4().hex.encode()
    with staged_writes(keep=False) as probe:  # deleted on leaving, whatever happens
        name = probe.save(f"{PROBE_DIR}/probe-{uuid.uuid4().hex}.txt", payload)
        with default_storage.open(name, "rb") as handle:
            read_back = handle.read()
        if read_back != payload:
            raise CheckFailed("the probe object read back differs from what was written")
    if default_storage.exists(name):
        raise CheckFailed("the probe object is still there after delete")
    return {"mode": getattr(settings, "XRS_STORAGE", "filesystem")}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
}


def run_checks() -> dict:
    """Run every check; `status` is "ok" only when all of them pass."""
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        start = time.perf_counter()
        try:
            extra = check()
            result = {"ok": True, **extra}
        except Exception as exc:  # a health check reports every failure, whatever its type
            logger.warning("health check %s failed: %r", name, exc)
            result = {"ok": False, "error": type(exc).__name__}
        result["ms"] = round((time.perf_counter() - start) * 1000, 1)
        results[name] = result
    status = "ok" if all(result["ok"] for result in results.values()) else "fail"
    return {"status": status, "checks": results}
