"""The platform on S3-compatible shared storage (XRS_STORAGE=s3, django-storages' S3Storage).

The server is moto's standalone server (`moto.server.ThreadedMotoServer`): an implementation of
the S3 HTTP API listening on a local port, spoken to over real HTTP by boto3 exactly as an AWS,
MinIO or Ceph endpoint would be. It is not a mock of our code: nothing here patches the
platform; only the STORAGES setting points at the server. Every test also checks that nothing
was written to MEDIA_ROOT, i.e. that every file went through the storage API.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import uuid

import boto3
import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from analysis import services as analysis_services
from analysis.models import StudyReport
from explain.models import Explanation, PrecomputeJob
from studies import services as study_services
from studies.models import Trial
from studies.selectors import enrollment_next_trial, trial_stages
from studies.services.reading import enrollment_consent, trial_answer, trial_reveal, trial_show
from tests.analysis.conftest import _answer, finished_study  # noqa: F401
from tests.conftest import REPO_ROOT
from tests.explain.engine_fixtures import import_demo_collection, register_demo_architecture
from tests.studies.conftest import draft_study, ready_study, study_collection, study_model  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

KEYS = {"access_key": "s3-test-key", "secret_key": "s3-test-secret"}
PREFIX = "media"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free local port for this module's tests."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server, settings):
    """A fresh bucket, and the default storage switched to it as config/settings.py does."""
    name = f"xrs-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3", endpoint_url=s3_server, region_name="us-east-1",
        aws_access_key_id=KEYS["access_key"], aws_secret_access_key=KEYS["secret_key"],
    )
    client.create_bucket(Bucket=name)
    settings.XRS_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name, "endpoint_url": s3_server, "addressing_style": "path",
                "region_name": "us-east-1", "location": PREFIX, "default_acl": None,
                "querystring_auth": True, "file_overwrite": False, **KEYS,
            },
        },
    }
    client.bucket_name = name
    yield client


def _keys(bucket) -> set[str]:
    keys: set[str] = set()
    for page in bucket.get_paginator("list_objects_v2").paginate(Bucket=bucket.bucket_name):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def _object(bucket, name: str) -> bytes:
    return bucket.get_object(Bucket=bucket.bucket_name, Key=f"{PREFIX}/{name}")["Body"].read()


def _nothing_on_disk(media_root) -> None:
    files = [p for p in media_root.rglob("*") if p.is_file()]
    assert files == [], f"written to MEDIA_ROOT instead of the storage: {files[:5]}"


def test_the_s3_settings_select_django_storages_with_path_style_urls_for_an_endpoint():
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "XRS_"))}
    environment.update(
        XRS_STORAGE="s3", XRS_S3_BUCKET="cases", XRS_S3_ENDPOINT_URL="http://minio:9000",
        XRS_S3_PREFIX="site-a", XRS_VAR_DIR=str(REPO_ROOT / "var"),
    )
    code = (
        "import json; from django.conf import settings; import django; django.setup();"
        "print(json.dumps(settings.STORAGES['default']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    assert result.returncode == 0, result.stderr
    import json

    default = json.loads(result.stdout.strip().splitlines()[-1])
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    options = default["OPTIONS"]
    assert options["bucket_name"] == "cases" and options["location"] == "site-a"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["addressing_style"] == "path"
    assert options["default_acl"] is None and options["file_overwrite"] is False


def test_without_a_bucket_the_s3_settings_refuse_to_start():
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "XRS_"))}
    environment.update(XRS_STORAGE="s3", XRS_VAR_DIR=str(REPO_ROOT / "var"))
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.STORAGES"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    assert result.returncode != 0
    assert "XRS_S3_BUCKET must be set" in result.stderr


def test_imported_cases_and_model_weights_live_in_the_bucket_and_stream_to_coordinators(
    bucket, demo_dataset, tmp_path, coordinator_client, _media_root
):
    collection = import_demo_collection(demo_dataset, name="s3-cases")
    model = register_demo_architecture(tmp_path, name="s3-net")
    keys = _keys(bucket)
    case = collection.cases.order_by("pk").first()
    assert collection.cases.count() == 8
    for field in ("source_file", "display_file", "thumbnail_file", "pixels_file"):
        assert f"{PREFIX}/{getattr(case, field).name}" in keys, field
    assert f"{PREFIX}/{model.weights_file.name}" in keys
    response = coordinator_client.get(
        reverse("library:case-file", kwargs={"case_id": case.pk, "kind": "display"})
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == _object(bucket, case.display_file.name)
    assert Image.open(io.BytesIO(body)).size == (case.columns, case.rows)
    _nothing_on_disk(_media_root)


def _study_on_s3(coordinator, collection, model):
    study = study_services.study_create(
        acting_user=coordinator, title="S3 study", model=model, collections=[collection],
        consent_text="I agree.", design="latin_square", sessions=2,
    )
    study_services.arm_add(acting_user=coordinator, study=study, kind="unaided")
    study_services.arm_add(acting_user=coordinator, study=study, kind="ai_explainer", explainer="gradcam")
    study_services.questions_add_defaults(acting_user=coordinator, study=study)
    study_services.study_cases_select(acting_user=coordinator, study=study)
    return study


def _read_until_an_explained_trial(reader, enrollment) -> Trial:
    """Answer the reader's trials in order up to the first one whose arm shows a heatmap;
    return that one, shown."""
    while True:
        trial = enrollment_next_trial(enrollment=enrollment)
        trial_show(acting_user=reader, trial=trial)
        if trial.arm.kind == "ai_explainer":
            return trial
        for stage in trial_stages(trial=trial, study=enrollment.study):
            if stage == "final" and trial.state == Trial.State.FIRST_ANSWERED:
                trial_reveal(acting_user=reader, trial=trial)
            trial_answer(
                acting_user=reader, trial=trial, stage=stage, client_key=uuid.uuid4(),
                answers=_answer(trial, stage, reader_index=0),
            )
            trial.refresh_from_db()


def test_precompute_on_a_worker_loads_weights_from_the_bucket_and_the_reader_gets_heatmaps_from_it(
    bucket, demo_dataset, tmp_path, coordinator, reader_a, client, eager, _media_root
):
    from explain import runtime

    runtime._load.cache_clear()  # the model must come from the bucket, not from this process
    collection = import_demo_collection(demo_dataset, name="s3-study-cases")
    model = register_demo_architecture(tmp_path, name="s3-study-net")
    study = _study_on_s3(coordinator, collection, model)
    jobs = study_services.study_precompute(acting_user=coordinator, study=study)
    assert [job.status for job in PrecomputeJob.objects.filter(pk__in=[j.pk for j in jobs])] == ["done"]
    explanations = list(Explanation.objects.filter(model=model, explainer="gradcam"))
    assert len(explanations) == collection.cases.count()
    keys = _keys(bucket)
    for explanation in explanations:
        for field in ("heatmap_file", "normalized_file", "overlay_file"):
            assert f"{PREFIX}/{getattr(explanation, field).name}" in keys, field
    heatmap = np.load(io.BytesIO(_object(bucket, explanations[0].heatmap_file.name)))
    assert heatmap.ndim == 2 and np.isfinite(heatmap).all()

    study_services.study_open(acting_user=coordinator, study=study)
    enrollment = study_services.reader_enroll(acting_user=coordinator, study=study, reader=reader_a)
    enrollment_consent(acting_user=reader_a, enrollment=enrollment, consent_version=study.consent_version)
    trial = _read_until_an_explained_trial(reader_a, enrollment)
    client.force_login(reader_a)
    response = client.get(reverse("studies:reader-trial-file", kwargs={"trial_uid": trial.uid, "name": "overlay"}))
    assert response.status_code == 200, response.content[:200]
    body = b"".join(response.streaming_content)
    overlay = Explanation.objects.get(model=model, case=trial.case, explainer="gradcam", placebo=False)
    assert body == _object(bucket, overlay.overlay_file.name)
    assert Image.open(io.BytesIO(body)).format == "PNG"
    assert "Content-Disposition" not in response  # nothing names the stored file
    _nothing_on_disk(_media_root)


def test_a_report_is_built_into_the_bucket_and_downloads_from_it(
    bucket, finished_study, coordinator, coordinator_client, eager, _media_root  # noqa: F811
):
    report = analysis_services.report_request(acting_user=coordinator, study=finished_study)
    report.refresh_from_db()
    assert report.status == StudyReport.Status.DONE, report.error
    keys = _keys(bucket)
    for kind in StudyReport.FILES:
        name = getattr(report, f"{kind}_file").name
        assert f"{PREFIX}/{name}" in keys, kind
    response = coordinator_client.get(
        reverse("analysis:report-file", kwargs={"report_uid": report.uid, "kind": "csv"})
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == _object(bucket, report.csv_file.name)
    assert body.startswith(b"study") or b"," in body.splitlines()[0]
    assert "attachment" in response["Content-Disposition"]
    _nothing_on_disk(_media_root)


def test_the_health_check_writes_its_probe_to_the_bucket_and_removes_it(bucket, client):
    response = client.get("/health/")
    assert response.status_code == 200, response.content
    storage = response.json()["checks"]["storage"]
    assert storage == {"ok": True, "mode": "s3", "ms": storage["ms"]}
    assert not any(key.startswith(f"{PREFIX}/health/") for key in _keys(bucket))


def test_a_missing_bucket_fails_the_storage_health_check(bucket, settings, client):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "bucket_name": "no-such-bucket"},
        },
    }
    response = client.get("/health/")
    assert response.status_code == 503
    check = response.json()["checks"]["storage"]
    assert check["ok"] is False
    assert "no-such-bucket" not in response.content.decode()


@pytest.mark.slow
def test_the_demo_setup_stores_its_cases_models_and_heatmaps_in_the_bucket(
    bucket, settings, tmp_path, eager, _media_root
):
    from django.core.management import call_command

    from demo import setup as demo
    from explain.models import ClassifierModel

    settings.VAR_DIR = tmp_path / "var"  # the demo's local build cache, not stored files
    call_command(
        "demo_setup", cases=8, seed=3, epochs=2, no_progress=True, no_background=True,
        stdout=io.StringIO(), stderr=io.StringIO(),
    )
    keys = _keys(bucket)
    for model in ClassifierModel.objects.filter(name__in=[demo.DEMO_MODEL, demo.DEMO_MODEL_TORCHSCRIPT]):
        stored = model.weights_file.name or model.torchscript_file.name
        assert f"{PREFIX}/{stored}" in keys, model.name
    explanation = Explanation.objects.filter(model__name=demo.DEMO_MODEL, explainer="gradcam").first()
    assert explanation is not None and f"{PREFIX}/{explanation.overlay_file.name}" in keys
    _nothing_on_disk(_media_root)
