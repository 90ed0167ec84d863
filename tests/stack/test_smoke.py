"""Smoke test of the production stack, through HTTP only.

gunicorn with production settings, a separate Celery worker on every queue, PostgreSQL, Redis
and S3-compatible storage (moto's standalone S3 server, a real S3 API over HTTP), each its own
process, started by tests/stack/launcher.py. The test then does what a deployment's first day
does: a coordinator (created with manage.py) imports demo DICOM cases with labels and masks,
registers a small model, precomputes a two-arm study on the worker, opens it and invites a
reader; the reader accepts, consents on the pages and reads every trial through the reader API
(first answer, reveal, final answer, images and heatmaps streamed from the bucket); the
coordinator's report is built by the worker and downloaded.

Needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis); skipped elsewhere, failed in CI
(XRS_REQUIRE_SERVICES=1) where they are missing.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.stack.launcher import Stack, stack_services

pytestmark = [pytest.mark.service, pytest.mark.slow]

COORDINATOR = ("coordinator", "smoke-coordinator-pw-1")
READER_PASSWORD = "smoke-reader-pw-Xy7!"


def _wait_for(what: str, probe, *, timeout: float = 180.0, interval: float = 0.5):
    """Call probe() until its answer has `_done`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last and last.get("_done"):
            return last
        time.sleep(interval)
    pytest.fail(f"{what} did not finish in {timeout:.0f} s; last state: {last}")


def _ok(response, status: int = 200):
    assert response.status_code == status, (
        f"{response.request.method} {response.url}: HTTP {response.status_code} {response.text[:800]}"
    )
    return response


def _small_model_file(tmp_path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    from explain.compute.models import AttentionResNet

    torch.manual_seed(0)
    path = tmp_path / "smoke-net.safetensors"
    save_file(AttentionResNet(in_channels=1, num_classes=2, width=8).state_dict(), str(path))
    return path


def _answers(questions: list[dict]) -> dict:
    answers = {}
    for question in questions:
        kind = question["kind"]
        if kind == "diagnosis":
            answers[question["key"]] = question["options"][-1]
        elif kind == "confidence":
            answers[question["key"]] = {"scale5": 4, "scale7": 5}.get(question["scale"], 70)
        elif kind == "likert":
            answers[question["key"]] = (question["points"] or 5) // 2 + 1
        else:
            answers[question["key"]] = "looked fine"
    return answers


def _import_cases(coordinator, dataset: Path) -> int:
    collection = _ok(coordinator.post("/api/v1/collections/", json={"name": "Smoke cases"}), 201).json()
    files = [("files", (p.name, p.read_bytes(), "application/dicom"))
             for p in sorted((dataset / "images").glob("*.dcm"))]
    masks = [("masks", (p.name, p.read_bytes(), "image/png"))
             for p in sorted((dataset / "masks").glob("*.png"))]
    labels = [("labels", ("labels.csv", (dataset / "labels.csv").read_bytes(), "text/csv"))]
    report = _ok(
        coordinator.post(f"/api/v1/collections/{collection['id']}/import/", files=files + masks + labels),
        201,
    ).json()
    assert report["imported"] == len(files), report
    return collection["id"]


def _register_model(coordinator, tmp_path: Path) -> int:
    weights = _small_model_file(tmp_path)
    response = coordinator.post(
        "/api/v1/models/",
        data={
            "name": "smoke-net",
            "form": "eager",
            "architecture": "explain.compute.models:AttentionResNet",
            "init_kwargs": json.dumps({"in_channels": 1, "num_classes": 2, "width": 8}),
            "input_spec": json.dumps({"size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.25]}),
            "class_labels": json.dumps(["normal", "nodule"]),
            "cam_layer": "layer3",
        },
        files={"file": (weights.name, weights.read_bytes(), "application/octet-stream")},
    )
    model = _ok(response, 201).json()
    assert "gradcam" in model["supported_explainers"], model
    return model["id"]


def _study(coordinator, *, model_id: int, collection_id: int) -> int:
    study = _ok(coordinator.post("/api/v1/studies/", json={
        "title": "Smoke study", "reader_title": "Smoke reading", "model": model_id, "collections": [collection_id],
        "consent_text": "I agree to take part.", "design": "latin_square", "protocol": "two_stage",
    }), 201).json()
    base = f"/api/v1/studies/{study['id']}/"
    _ok(coordinator.post(base + "arms/", json={"kind": "unaided"}), 201)
    _ok(coordinator.post(base + "arms/", json={"kind": "ai_explainer", "explainer": "gradcam"}), 201)
    _ok(coordinator.post(base + "questions/defaults/", json={}), 201)
    _ok(coordinator.post(base + "cases/select/", json={}))
    return study["id"]


def _precompute_on_the_worker(coordinator, study_id: int) -> None:
    jobs = _ok(coordinator.post(f"/api/v1/studies/{study_id}/precompute/", json={}), 202).json()["jobs"]
    assert jobs
    for job_id in jobs:
        def probe(job_id=job_id):
            state = _ok(coordinator.get(f"/api/v1/precompute/{job_id}/")).json()
            assert state["status"] not in ("failed", "cancelled"), state
            return {**state, "_done": state["status"] == "done"}

        state = _wait_for(f"precompute job {job_id}", probe)
        assert state["failed"] == 0 and state["done"] == state["total"] > 0, state
    readiness = _ok(coordinator.get(f"/api/v1/studies/{study_id}/readiness/")).json()
    assert readiness["problems"] == [], readiness


def _invite_reader(coordinator, stack: Stack, study_id: int):
    invitation = _ok(coordinator.post(
        f"/api/v1/studies/{study_id}/invitations/", json={"email": "reader.one@example.org"}
    ), 201).json()
    token = invitation["link"].rstrip("/").rsplit("/", 1)[-1]
    reader = stack.client()
    accepted = _ok(reader.post("/api/v1/invitations/accept/", json={
        "token": token, "password": READER_PASSWORD, "years_experience": 5,
        "specialty": "thoracic", "is_radiologist": True,
    }), 201).json()
    assert accepted["study"] == study_id and accepted["enrolled"] is True, accepted
    reader.login(accepted["username"], READER_PASSWORD)
    return reader


def _consent_on_the_pages(reader, study_id: int) -> None:
    reading_home = _ok(reader.get("/read/")).text
    assert "Smoke reading" in reading_home and "Smoke study" not in reading_home
    page = _ok(reader.get(f"/read/{study_id}/")).text
    version = re.search(r'name="consent_version" value="(\d+)"', page).group(1)
    response = reader.post(f"/read/{study_id}/", data={
        "consent_version": version, "csrfmiddlewaretoken": reader.cookies["csrftoken"],
    }, allow_redirects=False)
    assert response.status_code == 302, response.text[:500]


def _fetch(reader, url: str) -> bytes:
    response = _ok(reader.get(url))
    assert "no-store" not in response.headers.get("Cache-Control", "")
    return response.content


def _read_every_trial(reader, study_id: int) -> dict:
    from PIL import Image

    seen = {"trials": 0, "overlays": 0}
    while True:
        page = reader.get(f"/read/{study_id}/next/", allow_redirects=False)
        assert page.status_code == 302, page.text[:500]
        match = re.search(r"/read/trials/([0-9a-f-]{36})/$", page.headers["Location"])
        if match is None:  # back on the study page: nothing left to read
            assert "every case" in _ok(reader.get(page.headers["Location"])).text
            return seen
        uid = match.group(1)
        _ok(reader.get(f"/read/trials/{uid}/"))  # the trial page shows the trial
        api = f"/api/v1/reading/trials/{uid}/"
        payload = _ok(reader.get(api)).json()
        display = _fetch(reader, payload["image"]["display_url"])
        assert Image.open(io.BytesIO(display)).format == "PNG"
        if payload["two_stage"]:  # arms with AI: unaided answer first, then the AI output
            assert payload["stage"] == "first" and payload["ai"] is None, payload
            answer = {"stage": "first", "answers": _answers(payload["questions"]),
                      "client_key": str(uuid.uuid4())}
            payload = _ok(reader.post(api + "answer/", json=answer)).json()["payload"]
            assert payload["stage"] == "reveal", payload
            payload = _ok(reader.post(api + "reveal/")).json()  # the payload itself
            assert payload["ai"] is not None, payload
        assert payload["stage"] == "final", payload
        if payload["overlay_url"]:
            overlay = _fetch(reader, payload["overlay_url"])
            assert Image.open(io.BytesIO(overlay)).format == "PNG"
            seen["overlays"] += 1
        answer = {"stage": "final", "answers": _answers(payload["questions"]),
                  "client_key": str(uuid.uuid4()), "interactions": {"window_changes": 1}}
        payload = _ok(reader.post(api + "answer/", json=answer)).json()["payload"]
        assert payload["state"] == "done", payload
        seen["trials"] += 1


def _report(coordinator, study_id: int) -> dict:
    report = _ok(coordinator.post(f"/api/v1/studies/{study_id}/reports/", json={}), 202).json()

    def probe():
        state = _ok(coordinator.get(f"/api/v1/reports/{report['uid']}/")).json()
        assert state["status"] != "failed", state
        return {**state, "_done": state["status"] == "done"}

    return _wait_for("the report", probe)


def test_the_production_stack_runs_a_study_from_import_to_report(demo_dataset, tmp_path):
    available, how = stack_services()
    require_service("PostgreSQL and Redis for the stack", available, how)
    started = time.monotonic()
    with Stack(storage="s3", workers=1) as stack:
        health = _ok(stack.client().get("/health/")).json()
        assert health["status"] == "ok"
        assert health["checks"]["broker"]["mode"] == "broker"
        assert health["checks"]["storage"]["mode"] == "s3"
        static = stack.client().get("/static/css/app.css")
        assert static.status_code == 200 and static.text.strip(), "whitenoise serves static files"

        stack.create_user(*COORDINATOR, coordinator=True)
        coordinator = stack.client()
        coordinator.login(*COORDINATOR)
        collection_id = _import_cases(coordinator, demo_dataset)
        model_id = _register_model(coordinator, tmp_path)
        study_id = _study(coordinator, model_id=model_id, collection_id=collection_id)
        _precompute_on_the_worker(coordinator, study_id)
        _ok(coordinator.post(f"/api/v1/studies/{study_id}/open/", json={}))

        reader = _invite_reader(coordinator, stack, study_id)
        _consent_on_the_pages(reader, study_id)
        seen = _read_every_trial(reader, study_id)
        assert seen["trials"] == 8 and seen["overlays"] > 0, seen
        progress = _ok(coordinator.get(f"/api/v1/studies/{study_id}/progress/")).json()
        assert progress, progress

        report = _report(coordinator, study_id)
        assert {"html", "pdf", "csv"} <= set(report["files"]), report
        pdf = _ok(coordinator.get(f"/reports/{report['uid']}/files/pdf"))
        assert pdf.content.startswith(b"%PDF") and pdf.headers["Content-Type"] == "application/pdf"
        csv = _ok(coordinator.get(f"/reports/{report['uid']}/files/csv"))
        assert "attachment" in csv.headers["Content-Disposition"]
        assert len(csv.text.strip().splitlines()) >= 1 + 8, csv.text[:500]

        # every file went to the bucket: nothing under the stack's (unused) media folder
        assert not (stack.tmp / "var" / "media").exists() or not any(
            p.is_file() for p in (stack.tmp / "var" / "media").rglob("*")
        )
        bucket_keys = _bucket_keys(stack)
        for prefix in ("media/cases/", "media/models/", "media/explanations/", "media/reports/"):
            assert any(key.startswith(prefix) for key in bucket_keys), prefix
    print(f"smoke test through the stack: {time.monotonic() - started:.0f} s")


def _bucket_keys(stack: Stack) -> set[str]:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=stack.s3_endpoint, region_name="us-east-1",
        aws_access_key_id=stack.env["XRS_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.env["XRS_S3_SECRET_ACCESS_KEY"],
    )
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys
