"""Every URL the resolver knows is in the permission matrix's table, and the matrix covers every
role for every URL and method (the table: permission_matrix_rules.py)."""

from __future__ import annotations

import pytest
from django.urls import clear_url_caches

from tests.core.permission_matrix_rules import CASES, EXPECTATIONS, ROLES, is_admin, project_routes

# The tests ---------------------------------------------------------------------------------


def test_every_url_of_the_project_is_classified():
    routes = {route for route, _ in project_routes()}
    unclassified = sorted(r for r in routes if not is_admin(r) and r not in EXPECTATIONS)
    assert not unclassified, "unclassified URL(s): add them to EXPECTATIONS: " + ", ".join(
        unclassified
    )
    stale = sorted(set(EXPECTATIONS) - routes)
    assert not stale, "EXPECTATIONS lists URL(s) the project no longer has: " + ", ".join(stale)


def test_the_matrix_covers_every_role_for_every_url_and_method():
    seen = {(route, variant, method) for route, variant, _, method in CASES}
    per_url = {
        key: {r for route, variant, r, method in CASES if (route, variant, method) == key}
        for key in seen
    }
    partial = {
        key: roles
        for key, roles in per_url.items()
        if roles != set(ROLES) and not (is_admin(key[0]) and key[2] == "POST")
    }
    assert not partial
    assert len(CASES) > 1000


def test_a_new_url_without_a_line_in_the_table_is_reported(monkeypatch):
    """The classification check fails for a URL the table does not know."""
    from django.urls import path

    import config.urls

    extra = path("studies/<int:study_id>/secret/", lambda request, study_id: None)
    monkeypatch.setattr(config.urls, "urlpatterns", [*config.urls.urlpatterns, extra])
    clear_url_caches()
    try:
        with pytest.raises(AssertionError, match="unclassified URL"):
            test_every_url_of_the_project_is_classified()
    finally:
        monkeypatch.undo()
        clear_url_caches()
