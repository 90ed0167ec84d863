"""Shared by the studies REST API tests (test_api_*.py): API clients, fixtures and helpers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from core.permissions import COORDINATORS_GROUP
from studies import services


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def api(coordinator) -> APIClient:
    return client_for(coordinator)


@pytest.fixture
def other_coordinator(db) -> User:
    user = User.objects.create_user(username="other_coordinator", password="pw-other")
    user.groups.add(Group.objects.get_or_create(name=COORDINATORS_GROUP)[0])
    return user


@pytest.fixture
def study_statistician(draft_study, coordinator, statistician):
    services.study_role_add(
        acting_user=coordinator, study=draft_study, user=statistician, role="statistician"
    )
    return statistician


def url(study, tail: str = "") -> str:
    return f"/api/v1/studies/{study if isinstance(study, int) else study.pk}/{tail}"


def mentions(problems: list[str], *phrases: str) -> bool:
    """Whether one of the problems contains every phrase (case-insensitive)."""
    return any(all(p.lower() in problem.lower() for p in phrases) for problem in problems)


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


# The whole flow -----------------------------------------------------------------------------
