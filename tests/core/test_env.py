from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config import env
from tests.conftest import REPO_ROOT


def test_a_malformed_boolean_stops_start_up_with_the_variable_named(monkeypatch):
    monkeypatch.setenv("XRS_SOME_FLAG", "maybe")
    with pytest.raises(env.ImproperlyConfiguredEnv, match="XRS_SOME_FLAG"):
        env.env_bool("XRS_SOME_FLAG", False)


def test_booleans_accept_the_usual_spellings(monkeypatch):
    for raw, expected in [("1", True), ("YES", True), ("off", False), ("False", False)]:
        monkeypatch.setenv("XRS_SOME_FLAG", raw)
        assert env.env_bool("XRS_SOME_FLAG", not expected) is expected


def test_an_unset_variable_takes_the_default_and_a_blank_one_counts_as_unset(monkeypatch):
    monkeypatch.delenv("XRS_SOME_INT", raising=False)
    assert env.env_int("XRS_SOME_INT", 7) == 7
    monkeypatch.setenv("XRS_SOME_INT", "  ")
    assert env.env_int("XRS_SOME_INT", 7) == 7


def test_integers_are_checked_for_type_and_minimum(monkeypatch):
    monkeypatch.setenv("XRS_SOME_INT", "12x")
    with pytest.raises(env.ImproperlyConfiguredEnv, match="not an integer"):
        env.env_int("XRS_SOME_INT", 1)
    monkeypatch.setenv("XRS_SOME_INT", "0")
    with pytest.raises(env.ImproperlyConfiguredEnv, match="at least 1"):
        env.env_int("XRS_SOME_INT", 5, minimum=1)


def test_a_choice_outside_the_allowed_values_is_refused(monkeypatch):
    monkeypatch.setenv("DJANGO_ENV", "staging")
    with pytest.raises(env.ImproperlyConfiguredEnv, match="development, production"):
        env.env_choice("DJANGO_ENV", "development", ("development", "production"))


def _import_settings(extra_env: dict) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))
    }
    environment.update(extra_env)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_have_no_default_secret_key(tmp_path):
    result = _import_settings({"DJANGO_ENV": "production", "XRS_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_settings_start_with_a_long_secret_key(tmp_path):
    result = _import_settings(
        {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "k" * 64, "XRS_VAR_DIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr


def test_database_url_selects_postgresql(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import django; django.setup(); "
            "print(settings.DATABASES['default']['ENGINE'])",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings",
            XRS_VAR_DIR=str(tmp_path),
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/anything",
        ),
    )
    assert result.stdout.strip() == "django.db.backends.postgresql", result.stderr


def test_development_default_is_sqlite_under_var_and_eager_tasks(tmp_path):
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")
    }
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", XRS_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import django; django.setup(); "
            "print(settings.DATABASES['default']['NAME']); print(settings.CELERY_TASK_ALWAYS_EAGER); "
            "print(settings.MEDIA_ROOT)",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    name, eager, media = result.stdout.split()
    assert name == str(tmp_path / "db.sqlite3")
    assert eager == "True"
    assert media == str(tmp_path / "media")
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
