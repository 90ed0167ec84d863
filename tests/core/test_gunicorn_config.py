"""config/gunicorn.conf.py: everything a deployment changes comes from the environment."""

from __future__ import annotations

import os
import runpy

import pytest

from tests.conftest import REPO_ROOT

CONF = str(REPO_ROOT / "config" / "gunicorn.conf.py")


def _load(monkeypatch, **env) -> dict:
    for name in list(os.environ):
        if name.startswith("GUNICORN_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(CONF)


def test_bind_workers_timeouts_and_trusted_proxies_come_from_the_environment(monkeypatch):
    conf = _load(
        monkeypatch,
        GUNICORN_BIND="0.0.0.0:9000,unix:/run/xrs.sock",
        GUNICORN_WORKERS="5",
        GUNICORN_THREADS="4",
        GUNICORN_TIMEOUT="300",
        GUNICORN_FORWARDED_ALLOW_IPS="10.0.0.2",
    )
    assert conf["bind"] == ["0.0.0.0:9000", "unix:/run/xrs.sock"]
    assert conf["workers"] == 5 and conf["threads"] == 4 and conf["worker_class"] == "gthread"
    assert conf["timeout"] == 300
    assert conf["forwarded_allow_ips"] == "10.0.0.2"


def test_the_defaults_listen_locally_with_sync_workers_and_trust_only_localhost(monkeypatch):
    conf = _load(monkeypatch)
    assert conf["bind"] == ["127.0.0.1:8000"]
    assert 1 <= conf["workers"] <= 8 and conf["worker_class"] == "sync"
    assert conf["forwarded_allow_ips"] == "127.0.0.1"
    assert conf["max_requests"] == 1000 and conf["max_requests_jitter"] == 100


def test_the_access_log_has_the_request_time_and_client_but_no_query_string(monkeypatch):
    fmt = _load(monkeypatch)["access_log_format"]
    assert "%(D)s" in fmt  # request time in microseconds
    assert "%({x-forwarded-for}i)s" in fmt
    assert "%(r)s" not in fmt and "%(q)s" not in fmt and "%(U)s" in fmt


def test_a_malformed_number_stops_start_up_naming_the_variable(monkeypatch):
    with pytest.raises(SystemExit, match="GUNICORN_WORKERS"):
        _load(monkeypatch, GUNICORN_WORKERS="many")
