"""Coordinator pages of the case library."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from library.models import Case

pytestmark = pytest.mark.django_db


def test_a_reader_cannot_see_the_case_library(client, reader_a):
    client.force_login(reader_a)
    assert client.get("/library/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/library/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_coordinator_sees_collections_cases_and_their_images(coordinator_client, demo_dataset):
    call_command(
        "import_cases",
        str(demo_dataset / "images"),
        collection="Demo",
        labels=str(demo_dataset / "labels.csv"),
        no_progress=True,
        stdout=io.StringIO(),
    )
    page = coordinator_client.get("/library/")
    assert page.status_code == 200 and b"Demo" in page.content
    case = Case.objects.order_by("key").first()
    detail = coordinator_client.get(f"/library/collections/{case.collection_id}/")
    assert case.key.encode() in detail.content
    thumb = coordinator_client.get(f"/library/cases/{case.pk}/thumbnail")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/png"
    case_page = coordinator_client.get(f"/library/cases/{case.pk}/")
    assert b"Window presets" in case_page.content


def test_the_import_page_shows_rejections_next_to_the_form(coordinator_client):
    from library.models import Collection

    collection = Collection.objects.create(name="web")
    upload = io.BytesIO(b"not dicom")
    upload.name = "x.dcm"
    response = coordinator_client.post(
        f"/library/collections/{collection.pk}/import/", {"files": [upload]}
    )
    assert response.status_code == 200
    assert b"not_dicom" in response.content


def test_the_admin_shows_library_objects_but_offers_no_unaudited_writes(
    client, site_admin, demo_dataset
):
    call_command(
        "import_cases",
        str(demo_dataset / "images"),
        collection="Admin",
        no_progress=True,
        stdout=io.StringIO(),
    )
    client.force_login(site_admin)
    case = Case.objects.first()
    assert client.get("/admin/library/case/").status_code == 200
    assert client.get(f"/admin/library/case/{case.pk}/change/").status_code == 200
    assert client.get(f"/admin/library/case/{case.pk}/delete/").status_code == 403
    assert client.get("/admin/library/case/add/").status_code == 403


def test_a_lesion_mask_gone_from_storage_answers_404_not_500(coordinator_client, demo_dataset):
    from django.core.files.storage import default_storage

    call_command(
        "import_cases",
        str(demo_dataset / "images"),
        collection="Masks",
        labels=str(demo_dataset / "labels.csv"),
        no_progress=True,
        stdout=io.StringIO(),
    )
    case = Case.objects.filter(masks__isnull=False).order_by("key").first()
    assert coordinator_client.get(f"/library/cases/{case.pk}/mask.png").status_code == 200
    default_storage.delete(case.masks.first().file.name)
    assert coordinator_client.get(f"/library/cases/{case.pk}/mask.png").status_code == 404
