"""/health/: database, broker and storage checks, public, uncached, and silent about secrets."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from tests.conftest import require_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_broker(settings):
    """Send tasks to a broker (the URL a test sets) instead of running them in-process."""
    from config.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = False
    settings.XRS_HEALTH_TIMEOUT = 0.5
    yield settings
    app.conf.task_always_eager = old


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (a hung broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


def test_anyone_gets_ok_with_every_check_passing_without_logging_in(client, eager):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["ms"], float | int) and check["ms"] >= 0
    assert body["checks"]["broker"]["mode"] == "eager"  # tasks run in-process
    assert body["checks"]["storage"]["mode"] == "filesystem"


def test_the_answer_is_never_cached(client, eager):
    response = client.get("/health/")
    cache_control = response["Cache-Control"]
    assert "no-cache" in cache_control and "no-store" in cache_control
    assert response["Content-Type"] == "application/json"


def test_only_safe_methods_are_allowed(client, eager):
    assert client.post("/health/").status_code == 405
    assert client.head("/health/").status_code == 200


def test_the_storage_probe_leaves_nothing_behind(client, _media_root, eager):
    assert client.get("/health/").status_code == 200
    assert [p for p in _media_root.rglob("*") if p.is_file()] == []


def test_a_broker_on_a_closed_port_fails_the_broker_check_with_503(client, with_broker):
    port = _closed_port()
    with_broker.CELERY_BROKER_URL = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["storage"]["ok"] is True
    text = response.content.decode()
    assert "hunter2-secret" not in text
    assert "127.0.0.1" not in text and str(port) not in text


@pytest.mark.timeout(30)
def test_a_broker_that_accepts_but_never_answers_fails_after_the_short_timeout(
    client, with_broker, silent_server
):
    with_broker.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    response = client.get("/health/")
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is False
    assert broker["error"]  # the exception's class name, nothing more
    assert set(broker) == {"ok", "error", "ms"}


def test_unwritable_storage_fails_the_storage_check(client, settings, tmp_path, eager):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert str(tmp_path) not in response.content.decode()


@pytest.mark.service
def test_a_real_redis_broker_passes_the_broker_check(client, with_broker):
    url = os.environ.get("CELERY_BROKER_URL", "")
    available = False
    if url.startswith("redis://"):
        import redis

        try:
            available = bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
        except Exception:
            available = False
    require_service("Redis broker", available, "set CELERY_BROKER_URL=redis://127.0.0.1:6379/14")
    with_broker.CELERY_BROKER_URL = url
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["broker"] == {
        "ok": True, "mode": "broker", "ms": response.json()["checks"]["broker"]["ms"]
    }


def test_the_https_redirect_spares_the_health_check_only(client, settings, eager):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health/").status_code == 200  # a backend probe over plain http
    assert client.get("/accounts/login/").status_code == 301
