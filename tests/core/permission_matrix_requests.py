"""Making the permission matrix's requests and what each one should answer."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from tests.core.permission_matrix_rules import (
    ADMIN_LOGIN,
    LOGIN,
    MISSING_ID,
    MISSING_UUID,
    Rule,
    Url,
    project_routes,
)
from tests.core.permission_matrix_world import World

# Making the requests -----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")


def fill(route: str, values: dict, *, missing: bool = False) -> str:
    """The path of `route` with the world's values (or made-up ids, with `missing`)."""

    def value(name: str, converter: str | None) -> str:
        if missing and name in MISSABLE:
            return MISSING_UUID if converter == "uuid" else MISSING_ID
        return str(values[name])

    path = _REGEX_GROUP.sub(lambda m: value(m["name"], None), route)
    path = _PLACEHOLDER.sub(lambda m: value(m["name"], m["converter"]), path)
    path = path.replace("^", "").replace("$", "")
    return "/" + path


# Where a placeholder name means something else in one route.
ROUTE_VALUES = {"library/cases/<int:case_id>/<str:kind>": {"kind": "display"}}

# Ids whose object decides who may see the URL: a made-up one must answer like another's.
MISSABLE = {"study_id", "trial_uid", "report_uid"}


def admin_model(route: str):
    """The model an admin URL is about (admin/<app>/<model>/...), or None."""
    found = re.match(r"admin/(\w+)/(\w+)/", route)
    if not found:
        return None
    return next(
        (
            m
            for m in admin.site._registry
            if (m._meta.app_label, m._meta.model_name) == found.groups()
        ),
        None,
    )


def _admin_object_id(route: str, values: dict) -> dict:
    """An existing object's pk for an admin URL of a model."""
    model = admin_model(route)
    if model is None or "<path:object_id>" not in route:
        return values
    obj = model.objects.order_by("pk").first()
    assert obj is not None, f"the shared data has no {model._meta.label} for {route}"
    return {**values, "object_id": obj.pk}


def _client(world: World, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    return client


# A page POST carries one unknown field, so that forms built with `request.POST or None` are
# bound and answer their validation errors (an empty POST renders the blank form).
PAGE_POST = {"matrix": "1"}


def _send(client: Client, method: str, path: str, kind: str, multipart: bool):
    if kind == "api" and method != "GET" and not multipart:
        return client.generic(method, path, data=b"{}", content_type="application/json")
    if method == "POST":
        return client.post(path, data=PAGE_POST)
    return client.generic(method, path)


def _request(world: World, role: str, method: str, path: str, kind: str, multipart: bool = False):
    with transaction.atomic():
        response = _send(_client(world, role), method, path, kind, multipart)
        transaction.set_rollback(True)
    return response


def _describe(response) -> str:
    where = response.get("Location", "")
    return f"{response.status_code}{' -> ' + where if where else ''}"


def _expected_status(url: Url, role: str, method: str) -> int | tuple[int, ...]:
    rule: Rule = url.rules[method]
    if role in rule.per_role:
        return rule.per_role[role]
    if rule.public or role in rule.who:
        return rule.ok
    if role == "anonymous":
        return "login"
    if role in rule.seen:
        return 403
    return rule.refused


def _matches(response, expected) -> bool:
    if expected == "login":
        return response.status_code == 302 and response["Location"].startswith(LOGIN)
    if expected == "admin-index":
        return response.status_code == 302 and response["Location"] == "/admin/"
    if expected == "admin-login":
        return response.status_code == 302 and response["Location"].startswith(ADMIN_LOGIN)
    if isinstance(expected, tuple):
        return response.status_code in expected
    return response.status_code == expected


def _admin_expected(route: str, role: str, method: str, values: dict):
    name = {r: p.name for r, p in project_routes()}.get(route) or ""
    if route == "admin/login/":
        return 302 if role == "site_admin" else 200
    if route == "admin/logout/" and role != "site_admin":
        return "admin-index"
    if role != "site_admin":
        return "admin-login"
    # the site admin: what the ModelAdmin grants
    model = admin_model(route)
    if model is not None and name:
        from django.test import RequestFactory

        model_admin = admin.site._registry[model]
        request = RequestFactory().get("/")
        request.user = User.objects.get(username="site_admin")
        suffix = name.rsplit("_", 1)[-1]
        allowed = {
            "changelist": model_admin.has_view_or_change_permission(request),
            "add": model_admin.has_add_permission(request),
            "history": model_admin.has_view_or_change_permission(request),
            "delete": model_admin.has_delete_permission(request),
            "change": model_admin.has_view_or_change_permission(request),
            "password": True,
        }.get(suffix, True)
        return 200 if allowed else 403
    special = {
        "admin/logout/": 405,
        "admin/autocomplete/": 403,  # without a field to complete
        "admin/r/<path:content_type_id>/<path:object_id>/": 404,  # studies have no public page
        "admin/(?P<url>.*)$": 404,
    }
    if route in special:
        return special[route]
    if not name:
        return 302  # admin/<app>/<model>/<id>/ redirects to the change page
    return 200
