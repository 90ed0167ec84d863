"""Signing in: the login lockout (django-axes) on the login page and the REST API, session
rotation and flushing, the client address behind proxies, and the production cookie settings."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from importlib import import_module
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.test import Client, RequestFactory
from django.urls import reverse

from core.middleware import client_ip

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/accounts/login/"
API = "/api/v1/studies/"

pytestmark = pytest.mark.django_db


def _login(client: Client, username: str, password: str, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def _lock_out(client: Client, username: str, **extra):
    """Fail the login XRS_LOGIN_FAILURE_LIMIT times; returns the last response."""
    response = None
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _login(client, username, "wrong-password", **extra)
    return response


# The lockout on the login page ----------------------------------------------------------------


def test_failed_logins_below_the_limit_show_the_form_again(client, coordinator):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _login(client, "coordinator", "wrong-password")
        assert response.status_code == 200
        assert b"Please enter a correct username and password" in response.content
    assert _login(client, "coordinator", "pw-coordinator").status_code == 302
    assert _signed_in(client)


def test_the_limit_of_failed_logins_locks_the_username_out(client, coordinator):
    response = _lock_out(client, "coordinator")
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert not _signed_in(client)


def test_a_correct_password_during_the_lockout_is_still_refused(client, coordinator):
    _lock_out(client, "coordinator")
    response = _login(client, "coordinator", "pw-coordinator")
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert not _signed_in(client)
    assert client.get(reverse("studies:study-list")).status_code == 302  # still to the login page


def test_the_lockout_is_per_username_and_address(client, coordinator, reader_a):
    _lock_out(client, "coordinator")
    assert _login(client, "reader_a", "pw-reader_a").status_code == 302  # another username
    other = Client(REMOTE_ADDR="198.51.100.20")
    assert _login(other, "coordinator", "pw-coordinator").status_code == 302  # another address


def test_the_lockout_ends_after_the_cool_off_time(client, coordinator, monkeypatch):
    import axes.handlers.proxy

    _lock_out(client, "coordinator")
    assert _login(client, "coordinator", "pw-coordinator").status_code == 429
    later = axes.handlers.proxy.now() + settings.AXES_COOLOFF_TIME + timedelta(minutes=1)
    monkeypatch.setattr(axes.handlers.proxy, "now", lambda: later)  # django-axes' clock
    response = _login(client, "coordinator", "pw-coordinator")
    assert response.status_code == 302 and _signed_in(client)


def test_resetting_the_attempts_unlocks_at_once(client, coordinator):
    _lock_out(client, "coordinator")
    assert axes_reset(username="coordinator") >= 1
    assert _login(client, "coordinator", "pw-coordinator").status_code == 302


def test_a_successful_login_clears_earlier_failures(client, coordinator):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "coordinator", "wrong-password")
    assert _login(client, "coordinator", "pw-coordinator").status_code == 302
    client.post(reverse("logout"))
    # Failures start again from zero: one more is not the last straw.
    assert _login(client, "coordinator", "wrong-password").status_code == 200


# The lockout on the REST API (HTTP Basic authentication) ------------------------------------


def test_failed_basic_authentication_counts_and_locks_the_api_out(client, coordinator):
    assert client.get(API, **_basic("coordinator", "pw-coordinator")).status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert client.get(API, **_basic("coordinator", "wrong")).status_code in (401, 403)
    attempt = AccessAttempt.objects.get(username="coordinator")
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT
    response = client.get(API, **_basic("coordinator", "pw-coordinator"))
    assert response.status_code in (401, 403)
    assert "results" not in response.json()
    # The lockout is shared with the login page.
    assert _login(Client(), "coordinator", "pw-coordinator").status_code == 429


def test_failed_logins_on_the_page_lock_the_api_out_too(client, coordinator):
    _lock_out(client, "coordinator")
    assert Client().get(API, **_basic("coordinator", "pw-coordinator")).status_code in (401, 403)


# Sessions -------------------------------------------------------------------------------------


def test_logging_in_rotates_the_session_key(client, coordinator):
    session = client.session
    session["before_login"] = True
    session.save()
    before = session.session_key
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == before
    assert _login(client, "coordinator", "pw-coordinator").status_code == 302
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    store = import_module(settings.SESSION_ENGINE).SessionStore
    assert not store().exists(before)  # the pre-login key is gone, not just unused
    assert store(session_key=after).get("_auth_user_id") == str(coordinator.pk)


def test_logging_out_flushes_the_session(client, coordinator):
    _login(client, "coordinator", "pw-coordinator")
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    store = import_module(settings.SESSION_ENGINE).SessionStore
    assert not store().exists(key)
    assert not _signed_in(client)
    assert client.get(reverse("studies:study-list")).status_code == 302


def test_logging_out_needs_a_post(client, coordinator):
    client.force_login(coordinator)
    assert client.get(reverse("logout")).status_code == 405
    assert _signed_in(client)


# The client address ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2", "10.0.0.2"),  # no proxy: a client's header is ignored
        (1, "203.0.113.9", "10.0.0.2", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "10.0.0.2", "203.0.113.9"),  # 1.2.3.4: forged by the client
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.3", "10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.2", "203.0.113.9"),  # fewer hops than proxies
        (1, "not-an-address", "10.0.0.2", "10.0.0.2"),
        (1, "", "10.0.0.2", "10.0.0.2"),
        (1, " 2001:db8::1 ", "10.0.0.2", "2001:db8::1"),
        (0, "", "", None),
    ],
)
def test_the_client_address_honours_the_trusted_proxy_count(settings, proxies, forwarded, remote, expected):
    settings.XRS_PROXY_COUNT = proxies
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)
    assert client_ip(request) == expected


def test_behind_a_proxy_the_lockout_is_per_client_address_not_per_proxy(settings, client, coordinator):
    settings.XRS_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    _lock_out(client, "coordinator", HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy)
    assert AccessAttempt.objects.get().ip_address == "203.0.113.9"
    assert _login(client, "coordinator", "pw-coordinator", HTTP_X_FORWARDED_FOR="203.0.113.9", **proxy).status_code == 429
    other = Client()
    assert _login(other, "coordinator", "pw-coordinator", HTTP_X_FORWARDED_FOR="198.51.100.7", **proxy).status_code == 302


# Production settings --------------------------------------------------------------------------

PROBE = """
import json
import django
from django.conf import settings

django.setup()
from django.core.management import call_command
from django.test import Client

call_command("migrate", "sessions", verbosity=0)
client = Client(HTTP_HOST="reader.example.org")
plain = client.get("/accounts/login/")
page = client.get("/accounts/login/", secure=True)
# A response that stores something in the session, as a login does, sets the session cookie.
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

def view(request):
    request.session["probe"] = 1
    return HttpResponse()

response = SessionMiddleware(view)(RequestFactory().get("/", secure=True))
cookie = response.cookies[settings.SESSION_COOKIE_NAME]
csrf = page.cookies[settings.CSRF_COOKIE_NAME]
print(json.dumps({
    "settings": {name: getattr(settings, name) for name in (
        "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
        "CSRF_COOKIE_SECURE", "CSRF_COOKIE_HTTPONLY", "CSRF_COOKIE_SAMESITE",
        "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "AXES_FAILURE_LIMIT",
        "XRS_PROXY_COUNT", "AXES_CLIENT_IP_CALLABLE")},
    "cooloff_seconds": settings.AXES_COOLOFF_TIME.total_seconds(),
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
    "status": page.status_code,
    "hsts": page.get("Strict-Transport-Security"),
    "csp": page.get("Content-Security-Policy"),
    "csrf_cookie": {k: csrf[k] for k in ("secure", "httponly", "samesite")},
    "session_cookie": {k: cookie[k] for k in ("secure", "httponly", "samesite")},
}))
"""


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "XRS_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        DJANGO_ALLOWED_HOSTS="reader.example.org",
        XRS_VAR_DIR=str(tmp_path_factory.mktemp("production-var")),
        XRS_LOGIN_FAILURE_LIMIT="3",
        XRS_LOGIN_COOLOFF_MINUTES="30",
        XRS_PROXY_COUNT="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_http_only_and_same_site(production):
    values = production["settings"]
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True and values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax" and values["CSRF_COOKIE_SAMESITE"] == "Lax"
    for cookie in (production["session_cookie"], production["csrf_cookie"]):
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"


def test_production_forces_https_with_hsts(production):
    assert production["plain_status"] == 301
    assert production["plain_location"].startswith("https://reader.example.org/")
    assert production["status"] == 200
    hsts = production["hsts"]
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts and "preload" in hsts
    assert production["settings"]["SECURE_HSTS_SECONDS"] >= 31536000


def test_production_pages_carry_the_content_security_policy(production):
    csp = production["csp"]
    assert "default-src 'self'" in csp
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp


def test_the_lockout_and_proxy_count_come_from_the_environment(production):
    values = production["settings"]
    assert values["AXES_FAILURE_LIMIT"] == 3
    assert production["cooloff_seconds"] == 30 * 60
    assert values["XRS_PROXY_COUNT"] == 1
    assert values["AXES_CLIENT_IP_CALLABLE"] == "core.middleware.client_ip"
