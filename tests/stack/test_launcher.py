"""The stack launcher's own safety nets (without starting the whole stack)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import require_service
from tests.stack import launcher
from tests.stack.launcher import Stack, StackError, stack_services


def test_without_postgres_and_redis_urls_the_services_are_reported_missing(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    available, how = stack_services()
    assert available is False and "DATABASE_URL" in how


def test_a_claim_whose_process_is_gone_is_stale_and_a_live_one_is_not():
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    host = socket.gethostname()
    assert launcher._stale_claim(f"abc:{finished.stdout.strip()}:{host}".encode()) is True
    assert launcher._stale_claim(f"abc:{os.getpid()}:{host}".encode()) is False
    assert launcher._stale_claim(f"abc:{os.getpid()}:another-host".encode()) is False


def test_the_client_keeps_secure_cookies_and_sends_csrf_headers_on_unsafe_requests():
    client = launcher._make_client("http://127.0.0.1:1")
    assert client.headers["X-Forwarded-Proto"] == "https"
    client.cookies.set("csrftoken", "tok")
    prepared = []

    class Sent(Exception):
        pass

    def send(request, **kwargs):
        prepared.append(request)
        raise Sent

    client.send = send
    with pytest.raises(Sent):
        client.post("/x/", json={})
    assert prepared[0].headers["X-CSRFToken"] == "tok"
    assert prepared[0].headers["Referer"] == "https://127.0.0.1:1/"
    assert prepared[0].url == "http://127.0.0.1:1/x/"


@pytest.mark.service
def test_a_second_stack_cannot_take_the_redis_database_of_a_running_one():
    available, how = stack_services()
    require_service("PostgreSQL and Redis for the stack", available, how)
    first, second = Stack(), Stack()
    url = os.environ["CELERY_BROKER_URL"]
    first._claim_redis(url)
    try:
        with pytest.raises(StackError, match="in use by another stack"):
            second._claim_redis(url)
    finally:
        first._release_redis()
    second._claim_redis(url)  # free again once the first let go
    second._release_redis()
