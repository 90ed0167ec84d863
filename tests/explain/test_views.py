"""The model registry's coordinator pages."""

from __future__ import annotations

import pytest

from tests.studies.factories import make_model

pytestmark = pytest.mark.django_db


def test_the_models_page_lists_every_registered_model_with_links_to_register_and_precompute(
    coordinator_client,
):
    model = make_model("chest-net")
    page = coordinator_client.get("/library/models/")
    assert page.status_code == 200
    assert b"chest-net" in page.content
    assert f"/library/models/{model.pk}/".encode() in page.content
    assert b"/library/models/register/" in page.content and b"/library/precompute/" in page.content


def test_the_models_page_says_so_when_no_model_is_registered(coordinator_client):
    assert b"No models registered yet." in coordinator_client.get("/library/models/").content


def test_the_models_page_is_not_found_for_anyone_but_coordinators(client, reader_a):
    assert client.get("/library/models/").status_code == 302  # anonymous: to the login page
    client.force_login(reader_a)
    assert client.get("/library/models/").status_code == 404


def test_the_navigation_of_a_coordinator_links_the_models_page(coordinator_client):
    assert b'href="/library/models/"' in coordinator_client.get("/library/").content
