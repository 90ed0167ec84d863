"""The permission matrix: every URL of the project x every kind of user x every method the
URL takes, requested against the shared data. The table and the rules it holds the project to
are in permission_matrix_rules.py; the check that the table lists every URL is in
test_permission_matrix_classification.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection, transaction

from tests.core.permission_matrix_requests import (
    MISSABLE,
    ROUTE_VALUES,
    _admin_expected,
    _admin_object_id,
    _client,
    _describe,
    _expected_status,
    _matches,
    _request,
    fill,
)
from tests.core.permission_matrix_rules import CASES, EXPECTATIONS, _case_id, is_admin
from tests.core.permission_matrix_world import _build_world, override_media, png_dataset


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once for the module inside a transaction that is rolled back at its end; each
    test runs in a savepoint of it (pytest-django's `db`)."""
    media = tmp_path_factory.mktemp("matrix-media")
    dataset = png_dataset(tmp_path_factory.mktemp("matrix-cases"))
    with django_db_blocker.unblock():
        # pytest-django creates the test database only for tests that ask for `db`
        name = str(connection.settings_dict["NAME"])
        assert Path(name).name.startswith("test_") or "memory" in name, (
            f"not a test database: {name}"
        )
        with override_media(media), transaction.atomic():
            built = _build_world(dataset)
            built.media = media
            yield built
            transaction.set_rollback(True)


@pytest.fixture
def _media_root(request, settings, tmp_path):
    """Overrides the per-test media folder of tests/conftest.py: the shared data's files."""
    if "world" in request.fixturenames:
        settings.MEDIA_ROOT = request.getfixturevalue("world").media
    else:
        settings.MEDIA_ROOT = tmp_path / "media"
    yield settings.MEDIA_ROOT


# The tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_access(case, world, db):
    route, variant, role, method = case
    values = {**world.values[variant], **ROUTE_VALUES.get(route, {})}
    multipart = False
    if is_admin(route):
        values = _admin_object_id(route, values)
        expected = _admin_expected(route, role, method, values)
        kind = "page"
    else:
        url = next(u for u in EXPECTATIONS[route] if u.variant == variant)
        expected = _expected_status(url, role, method)
        kind, multipart = url.kind, url.multipart
        if expected == "login" and kind == "api":
            expected = 403
    path = fill(route, values)
    response = _request(world, role, method, path, kind, multipart)
    assert _matches(response, expected), (
        f"{method} {path} as {role}: expected {expected}, got {_describe(response)}"
    )
    if expected == 404 and not is_admin(route) and any(f"{name}>" in route for name in MISSABLE):
        missing_path = fill(route, values, missing=True)
        other = _request(world, role, method, missing_path, kind, multipart)
        assert other.status_code == 404, (
            f"{method} {missing_path} as {role} (a made-up id) answered {_describe(other)}, "
            f"but the existing object that is not theirs answered 404"
        )


def test_the_statistician_cannot_also_be_a_reader_of_the_study(world, db):
    client = _client(world, "study_coordinator")
    study_roles = f"/api/v1/studies/{world.values['']['study_id']}/roles/"
    for username, role in (("statistician", "reader"), ("reader_a", "statistician")):
        response = client.post(
            study_roles, {"username": username, "role": role}, content_type="application/json"
        )
        assert response.status_code == 400, response.content
        assert "cannot also be one of its readers" in response.json()["detail"]
    accepted = client.post(
        study_roles,
        {"username": "outsider", "role": "statistician"},
        content_type="application/json",
    )
    assert accepted.status_code == 201
