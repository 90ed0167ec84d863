"""Requesting, building and downloading a study's report (the Celery task runs inline here)."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage

from analysis import services
from analysis.models import StudyReport
from core.errors import ServiceError
from core.models import AuditEntry
from studies import services as study_services

pytestmark = pytest.mark.django_db(transaction=True)


def _build(user, study, *, unblinded=False) -> StudyReport:
    report = services.report_request(acting_user=user, study=study, unblinded=unblinded)
    report.refresh_from_db()
    return report


def test_a_report_is_built_with_every_file(coordinator, finished_study, eager):
    report = _build(coordinator, finished_study)
    assert report.status == StudyReport.Status.DONE, report.error
    assert report.progress == 100
    for kind in StudyReport.FILES:
        name = getattr(report, f"{kind}_file").name
        assert name and default_storage.exists(name), kind
    html = default_storage.open(report.html_file.name).read().decode()
    assert "Obuchowski" in html and "gradcam" not in html
    numbers = json.loads(default_storage.open(report.analysis_file.name).read())
    assert numbers["counts"]["reason"] is None
    assert numbers["meta"]["title"] == finished_study.title
    assert numbers["proportions"]["result"] is not None


def test_building_again_does_nothing_once_claimed(coordinator, finished_study, eager):
    report = _build(coordinator, finished_study)
    assert services.report_build(report_id=report.pk) is False


def test_only_the_statistician_gets_the_unblinded_report(coordinator, statistician, finished_study, eager):
    with pytest.raises(PermissionError):
        services.report_request(acting_user=coordinator, study=finished_study, unblinded=True)
    study_services.study_role_add(
        acting_user=coordinator, study=finished_study, user=statistician, role="statistician"
    )
    report = _build(statistician, finished_study, unblinded=True)
    html = default_storage.open(report.html_file.name).read().decode()
    assert "gradcam" in html
    with pytest.raises(PermissionError):
        services.report_download(acting_user=coordinator, report=report, kind="html")


def test_downloads_are_audited(coordinator, finished_study, eager):
    report = _build(coordinator, finished_study)
    name, content_type, filename = services.report_download(acting_user=coordinator, report=report, kind="csv")
    assert content_type.startswith("text/csv") and filename.endswith("responses.csv")
    entry = AuditEntry.objects.get(action="report.download")
    assert entry.actor == coordinator and entry.after["file"] == "csv"


def test_a_draft_study_has_no_report(coordinator, draft_study):
    with pytest.raises(ServiceError, match="draft"):
        services.report_request(acting_user=coordinator, study=draft_study)


def test_a_failing_build_records_why_and_leaves_no_files(coordinator, finished_study, eager, monkeypatch):
    import analysis.report

    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(analysis.report, "render_html", broken)
    report = _build(coordinator, finished_study)
    assert report.status == StudyReport.Status.FAILED
    assert "renderer exploded" in report.error
    assert not default_storage.exists(f"reports/{report.uid}/analysis.json")


def test_the_reports_page_and_downloads(client, coordinator, outsider, finished_study, eager):
    client.force_login(coordinator)
    response = client.post(f"/studies/{finished_study.pk}/reports/request/", follow=True)
    assert response.status_code == 200
    report = StudyReport.objects.get()
    assert f"/reports/{report.uid}/files/html" in response.content.decode()
    html = client.get(f"/reports/{report.uid}/files/html")
    assert html.status_code == 200 and html["Content-Security-Policy"].startswith("default-src 'none'")
    csv = client.get(f"/reports/{report.uid}/files/csv")
    assert csv.status_code == 200 and b"reader,reader_years_experience" in b"".join(csv.streaming_content)
    progress = client.get(f"/reports/{report.uid}/progress/").json()
    assert progress["status"] == "done" and "pdf" in progress["files"]
    client.force_login(outsider)
    assert client.get(f"/reports/{report.uid}/files/html").status_code == 404
    assert client.get(f"/studies/{finished_study.pk}/reports/").status_code == 404


def test_the_reports_api(client, coordinator, finished_study, eager):
    client.force_login(coordinator)
    response = client.post(
        f"/api/v1/studies/{finished_study.pk}/reports/", {"unblinded": True}, content_type="application/json"
    )
    assert response.status_code == 403
    response = client.post(f"/api/v1/studies/{finished_study.pk}/reports/", {}, content_type="application/json")
    assert response.status_code == 202
    uid = response.json()["uid"]
    detail = client.get(f"/api/v1/reports/{uid}/").json()
    assert detail["status"] == "done" and detail["downloads"]["csv"].endswith("/files/csv")
    assert [r["uid"] for r in client.get(f"/api/v1/studies/{finished_study.pk}/reports/").json()] == [uid]


def test_a_report_file_gone_from_storage_answers_404_with_a_reason(client, coordinator, finished_study, eager):
    report = _build(coordinator, finished_study)
    default_storage.delete(report.csv_file.name)
    client.force_login(coordinator)
    response = client.get(f"/reports/{report.uid}/files/csv")
    assert response.status_code == 404
    assert "missing from storage" in response.content.decode()
