"""REST endpoints of the case library."""

from __future__ import annotations

import io
import zipfile

import pytest
from rest_framework.test import APIClient

from library.models import Case, Collection

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(coordinator) -> APIClient:
    client = APIClient()
    client.force_authenticate(coordinator)
    return client


def test_anonymous_users_and_readers_cannot_use_the_library_api(reader_a):
    anonymous = APIClient()
    assert anonymous.get("/api/v1/collections/").status_code in (401, 403)
    reader = APIClient()
    reader.force_authenticate(reader_a)
    response = reader.get("/api/v1/collections/")
    assert response.status_code == 403
    assert "coordinators" in response.json()["detail"]


def test_a_coordinator_creates_a_collection_and_a_duplicate_gets_a_400(api):
    response = api.post("/api/v1/collections/", {"name": "Chest 2026"}, format="json")
    assert response.status_code == 201 and response.json()["case_count"] == 0
    again = api.post("/api/v1/collections/", {"name": "Chest 2026"}, format="json")
    assert again.status_code == 400 and "already exists" in again.json()["detail"]


def test_a_zip_upload_with_labels_imports_cases_and_lists_them(api, demo_dataset):
    collection = Collection.objects.create(name="up")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((demo_dataset / "images").glob("*.dcm"))[:4]:
            zf.write(path, path.name)
    archive.seek(0)
    archive.name = "cases.zip"
    labels = io.BytesIO((demo_dataset / "labels.csv").read_bytes())
    labels.name = "labels.csv"
    keys = [p.stem for p in sorted((demo_dataset / "images").glob("*.dcm"))[:4]]
    lines = (demo_dataset / "labels.csv").read_text().splitlines()
    subset = io.BytesIO(
        (
            "\n".join([lines[0]] + [line for line in lines[1:] if line.split(",")[0] in keys])
            + "\n"
        ).encode()
    )
    subset.name = "labels.csv"
    masks = io.BytesIO()
    with zipfile.ZipFile(masks, "w") as zf:
        for path in (demo_dataset / "masks").glob("*.png"):
            zf.write(path, f"masks/{path.name}")
    masks.seek(0)
    masks.name = "masks.zip"
    response = api.post(
        f"/api/v1/collections/{collection.pk}/import/",
        {"files": [archive], "labels": subset, "masks": [masks]},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["imported"] == 4
    listing = api.get(f"/api/v1/collections/{collection.pk}/cases/").json()
    assert listing["count"] == 4
    first = listing["results"][0]
    assert first["labels"] and first["display_url"].endswith("/display")
    display = api.get(first["display_url"])
    assert display.status_code == 200 and display["Content-Type"] == "image/png"


def test_an_upload_of_a_non_dicom_file_answers_400_with_the_reason(api):
    collection = Collection.objects.create(name="bad")
    junk = io.BytesIO(b"hello, I am not an image")
    junk.name = "scan.dcm"
    response = api.post(
        f"/api/v1/collections/{collection.pk}/import/", {"files": [junk]}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["rejected"][0]["code"] == "not_dicom"
    assert response.json()["rejected"][0]["file"] == "scan.dcm"
    assert not Case.objects.exists()


def test_an_upload_without_files_is_a_400_not_a_500(api):
    collection = Collection.objects.create(name="empty")
    response = api.post(f"/api/v1/collections/{collection.pk}/import/", {}, format="multipart")
    assert response.status_code == 400


def test_the_openapi_schema_generates_without_warnings(api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "/api/v1/collections/{collection_id}/import/" in schema["paths"]
    response = api.get("/api/schema/")
    assert response.status_code == 200
