"""The encoded pixels (XRS pixels) at import, in the backfill migration and on the reader's file URL."""

from __future__ import annotations

import importlib
import io
import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from PIL import Image

from library.imaging import pixel_transfer as pt
from library.models import Case
from tests.studies.conftest import draft_study, ready_study, study_collection, study_model  # noqa: F401
from tests.studies.reader_views_helpers import (  # noqa: F401
    assert_blind,
    client_a,
    file_url,
    give_files,
    next_trial,
    reading,
    two_stage_study,
)

pytestmark = pytest.mark.django_db

backfill = importlib.import_module("explain.migrations.0004_case_pixels_encoded").encode_existing


def _apps_when_the_backfill_ran():
    """The model registry as that migration sees it (Case still in explain, same table)."""
    loader = MigrationLoader(connection)
    return loader.project_state(("explain", "0004_case_pixels_encoded")).apps


def _import(*paths, collection="c1", **options):
    call_command(
        "import_cases",
        *[str(p) for p in paths],
        collection=collection,
        no_progress=True,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        **options,
    )


def _npy(case: Case) -> np.ndarray:
    with default_storage.open(case.pixels_file.name, "rb") as handle:
        return np.load(io.BytesIO(handle.read()), allow_pickle=False)


def _encoded(case: Case) -> bytes:
    with default_storage.open(case.pixels_encoded_file.name, "rb") as handle:
        return handle.read()


def test_imported_dicom_cases_store_an_encoded_file_that_decodes_to_the_npy_exactly(demo_copy):
    _import(demo_copy / "images", labels=demo_copy / "labels.csv")
    cases = list(Case.objects.all())
    assert len(cases) == 8
    for case in cases:
        assert case.pixels_encoded_file.name.endswith(
            ".xrsp"
        )  # no .gz: no Content-Encoding anywhere
        values = _npy(case)
        encoded = _encoded(case)
        assert np.array_equal(pt.decode(encoded).view(np.uint32), values.view(np.uint32))
        assert len(encoded) < 0.45 * default_storage.size(case.pixels_file.name)


def test_colour_images_get_no_encoded_file_and_grey_pngs_do(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB").save(
        tmp_path / "c.png"
    )
    Image.fromarray(rng.integers(0, 65536, (30, 40)).astype(np.uint16)).save(tmp_path / "g16.png")
    _import(tmp_path)
    colour, grey = Case.objects.get(key="c"), Case.objects.get(key="g16")
    assert colour.is_color and colour.pixels_encoded_file.name == ""
    assert np.array_equal(pt.decode(_encoded(grey)), _npy(grey).astype(np.float32))


def test_the_backfill_encodes_cases_imported_before_it_and_skips_what_it_cannot(demo_copy):
    _import(demo_copy / "images", labels=demo_copy / "labels.csv")
    Case.objects.update(pixels_encoded_file="")
    first, *rest = Case.objects.order_by("pk")
    default_storage.delete(first.pixels_file.name)  # a missing .npy is skipped, not fatal
    backfill(_apps_when_the_backfill_ran(), None)
    assert Case.objects.get(pk=first.pk).pixels_encoded_file.name == ""
    for case in Case.objects.filter(pk__in=[c.pk for c in rest]):
        assert np.array_equal(pt.decode(_encoded(case)).view(np.uint32), _npy(case).view(np.uint32))
    names = {c.pixels_encoded_file.name for c in Case.objects.all()}
    backfill(_apps_when_the_backfill_ran(), None)  # nothing left to do: nothing re-encoded
    assert {c.pixels_encoded_file.name for c in Case.objects.all()} == names


def _headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k not in ("ETag", "Content-Length")}


def test_the_reader_gets_the_encoded_file_when_there_is_one_with_the_same_headers(
    reading,  # noqa: F811
    client_a,  # noqa: F811
):
    give_files(reading.study)
    trial = next_trial(reading)
    client_a.get(f"/read/trials/{trial.uid}/")
    npy_response = client_a.get(file_url(trial, "pixels"))
    assert b"".join(npy_response.streaming_content).startswith(b"\x93NUMPY")

    values = np.arange(-1024, 1024, dtype=np.float32).reshape(32, 64)
    case = trial.case
    case.pixels_encoded_file.name = default_storage.save(
        f"cases/{case.key}/pixels.xrsp", ContentFile(pt.encode(values))
    )
    case.save(update_fields=["pixels_encoded_file"])
    served = client_a.get(file_url(trial, "pixels"))
    assert served.status_code == 200
    body = b"".join(served.streaming_content)
    assert pt.is_encoded(body) and np.array_equal(pt.decode(body), values)
    assert _headers(served) == _headers(npy_response)
    assert served["Content-Type"] == "application/octet-stream"
    assert served["Cache-Control"] == "private, max-age=86400"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in served and "Content-Encoding" not in served
    assert served["ETag"] != npy_response["ETag"]  # a cached .npy is revalidated, not reused
    assert_blind(json.dumps(dict(served.headers)), trial)
    again = client_a.get(file_url(trial, "pixels"), HTTP_IF_NONE_MATCH=served["ETag"])
    assert again.status_code == 304
