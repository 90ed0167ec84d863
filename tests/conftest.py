"""Shared personas and fixtures.

Personas: `coordinator`, `site_admin`, `statistician`, `reader_a`, `reader_b`, `outsider`.
Every test gets its own media folder, so nothing is written under var/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from core.permissions import COORDINATORS_GROUP

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def require_service(name: str, available: bool, how: str) -> None:
    """Skip (or fail in CI, where XRS_REQUIRE_SERVICES=1) a test that needs a real service."""
    if available:
        return
    message = f"needs a real {name} ({how}); not configured here"
    if os.environ.get("XRS_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    yield settings.MEDIA_ROOT


def _user(username: str, *, coordinator: bool = False, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username=username, password="pw-" + username, email=f"{username}@example.org"
    )
    if superuser:
        user.is_superuser = user.is_staff = True
        user.save()
    if coordinator:
        group, _ = Group.objects.get_or_create(name=COORDINATORS_GROUP)
        user.groups.add(group)
    return user


@pytest.fixture
def coordinator(db):
    return _user("coordinator", coordinator=True)


@pytest.fixture
def site_admin(db):
    return _user("site_admin", superuser=True)


@pytest.fixture
def statistician(db):
    return _user("statistician")


@pytest.fixture
def reader_a(db):
    return _user("reader_a")


@pytest.fixture
def reader_b(db):
    return _user("reader_b")


@pytest.fixture
def outsider(db):
    return _user("outsider")


@pytest.fixture
def coordinator_client(client, coordinator):
    client.force_login(coordinator)
    return client


@pytest.fixture
def eager():
    """Run Celery tasks in-process, whatever broker the environment names."""
    from config.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory) -> Path:
    """A small demo dataset (8 cases) generated once per test session."""
    from demo.synthetic import generate_demo_dataset

    out = tmp_path_factory.mktemp("demo-data")
    generate_demo_dataset(out, cases=8, seed=11, overwrite=True)
    return out
