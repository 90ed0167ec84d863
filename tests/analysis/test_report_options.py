"""The statistician's choice of the ROC analysis's figure of merit and covariance method
(issue 16, item 6): stored on the report, recorded in the audit row, stated in the report."""

from __future__ import annotations

import json
from html import escape

import pytest
from django.core.files.storage import default_storage

from analysis import services
from analysis.models import StudyReport
from analysis.report import render_html
from analysis.stats.study import analyse_study
from core.errors import ServiceError
from core.models import AuditEntry
from tests.analysis.test_study_analysis import blind_meta, synthetic_reads

pytestmark = pytest.mark.django_db(transaction=True)

REFUSAL = (
    "DeLong and unbiased covariance are defined for the empirical AUC; choose the jackknife or "
    "the bootstrap for the binormal AUC"
)


def _html(report: StudyReport) -> str:
    return default_storage.open(report.html_file.name).read().decode()


def _numbers(report: StudyReport) -> dict:
    return json.loads(default_storage.open(report.analysis_file.name).read())


def _section(html: str, key: str) -> str:
    start = html.index(f'<section id="{key}">')
    return html[start : html.index("</section>", start)]


def test_a_report_uses_the_empirical_auc_and_the_jackknife_by_default(
    coordinator, finished_study, eager
):
    report = services.report_request(acting_user=coordinator, study=finished_study)
    report.refresh_from_db()
    assert (report.fom, report.cov_method) == ("auc", "jackknife")
    assert report.status == StudyReport.Status.DONE, report.error
    meta = _numbers(report)["meta"]
    assert (meta["auc_fom"], meta["cov_method"]) == ("auc", "jackknife")
    html = _html(report)
    assert "area under the empirical ROC curve" in _section(html, "methods")
    assert "Figure of merit: AUC. Covariance: a jackknife estimate" in _section(html, "mrmc_auc")


def test_a_binormal_auc_with_bootstrap_covariance_builds_and_the_report_names_them(
    coordinator, finished_study, eager
):
    report = services.report_request(
        acting_user=coordinator, study=finished_study, fom="binormal_auc", cov_method="bootstrap"
    )
    report.refresh_from_db()
    assert report.status == StudyReport.Status.DONE, report.error
    meta = _numbers(report)["meta"]
    assert (meta["auc_fom"], meta["cov_method"]) == ("binormal_auc", "bootstrap")
    html = _html(report)
    methods = _section(html, "methods")
    assert "binormal ROC curve" in methods and "case-bootstrap estimate" in methods
    section = _section(html, "mrmc_auc")
    assert "Figure of merit: binormal AUC. Covariance: a case-bootstrap estimate" in section


@pytest.fixture(scope="module")
def synthetic():
    """The synthetic Latin-square study (enough reads per reader and arm for the OR analysis),
    analysed with the binormal AUC and the jackknife, and with the empirical AUC and the
    bootstrap (the binormal AUC with the bootstrap refits every curve in every sample: slow)."""
    out = {}
    for fom, cov in (("binormal_auc", "jackknife"), ("auc", "bootstrap")):
        meta = blind_meta(auc_fom=fom, cov_method=cov, n_bootstrap=100)
        analysis = analyse_study(synthetic_reads(), meta)
        out[fom, cov] = analysis, render_html(analysis, generated_at="now", versions={})
    return out


def test_the_roc_analysis_uses_the_chosen_figure_of_merit_and_covariance(synthetic):
    for (fom, cov), (analysis, _) in synthetic.items():
        assert analysis.mrmc_auc.ok, analysis.mrmc_auc.reason
        result = analysis.mrmc_auc.result.or_result
        assert (result.fom, result.cov_method) == (fom, cov)
        assert analysis.mrmc_accuracy.result.or_result.cov_method == "jackknife"
    bootstrap = synthetic["auc", "bootstrap"][0].mrmc_auc.result.or_result
    assert (bootstrap.bootstrap_samples, bootstrap.seed) == (100, 0)


def test_the_report_names_the_design_as_mrmcaov_calls_it(synthetic):
    analysis, html = synthetic["binormal_auc", "jackknife"]
    design = analysis.mrmc_auc.result.or_result.mrmcaov_design
    assert design == "factorial (partially paired)"
    section = _section(html, "mrmc_auc")
    assert f"Design, as MRMCaov calls it: {escape(design)}." in section
    assert "Figure of merit: binormal AUC. Covariance: a jackknife estimate" in section
    assert "binormal AUC per arm" in section
    methods = _section(html, "methods")
    assert f"MRMCaov calls this design “{escape(design)}”" in methods
    assert "binormal ROC curve" in methods


def test_the_report_names_the_bootstrap_covariance(synthetic):
    _, html = synthetic["auc", "bootstrap"]
    section = _section(html, "mrmc_auc")
    assert "Covariance: a case-bootstrap estimate of the case-sampling covariance" in section
    assert "OR variance components (bootstrap covariance)" in section
    assert "OR variance components (jackknife covariance)" in _section(html, "mrmc_accuracy")
    assert "case-bootstrap estimate" in _section(html, "methods")


def test_an_impossible_pair_of_choices_is_refused_by_the_study_metadata():
    with pytest.raises(ValueError, match="DeLong and unbiased covariance"):
        blind_meta(auc_fom="binormal_auc", cov_method="delong")


def test_delong_covariance_with_the_binormal_auc_is_refused(coordinator, finished_study):
    with pytest.raises(ServiceError) as refused:
        services.report_request(
            acting_user=coordinator, study=finished_study, fom="binormal_auc", cov_method="delong"
        )
    assert refused.value.problems == [REFUSAL]
    assert not StudyReport.objects.exists()


def test_unknown_choices_are_refused_one_line_each(coordinator, finished_study):
    with pytest.raises(ServiceError) as refused:
        services.report_request(
            acting_user=coordinator, study=finished_study, fom="partial_auc", cov_method="magic"
        )
    assert len(refused.value.problems) == 2
    assert "figure of merit" in refused.value.problems[0]
    assert "covariance method" in refused.value.problems[1]


def test_the_audit_row_records_the_choices(coordinator, finished_study, eager):
    services.report_request(
        acting_user=coordinator, study=finished_study, fom="binormal_auc", cov_method="jackknife"
    )
    entry = AuditEntry.objects.get(action="report.request")
    assert entry.after["fom"] == "binormal_auc" and entry.after["cov_method"] == "jackknife"


def test_the_reports_page_offers_the_choices_with_the_defaults_selected(
    client, coordinator, finished_study
):
    client.force_login(coordinator)
    page = client.get(f"/studies/{finished_study.pk}/reports/").content.decode()
    assert 'name="fom"' in page and 'name="cov_method"' in page
    assert '<option value="auc" selected>' in page
    assert '<option value="jackknife" selected>' in page
    assert '<option value="binormal_auc">' in page and '<option value="bootstrap">' in page


def test_the_reports_page_refuses_delong_with_the_binormal_auc_and_says_why(
    client, coordinator, finished_study, eager
):
    client.force_login(coordinator)
    url = f"/studies/{finished_study.pk}/reports/request/"
    response = client.post(url, {"fom": "binormal_auc", "cov_method": "delong"}, follow=True)
    assert response.status_code == 200
    assert REFUSAL in response.content.decode()
    assert not StudyReport.objects.exists()


def test_the_reports_page_requests_a_report_with_the_choices_and_lists_them(
    client, coordinator, finished_study, eager
):
    client.force_login(coordinator)
    url = f"/studies/{finished_study.pk}/reports/request/"
    response = client.post(url, {"fom": "binormal_auc", "cov_method": "bootstrap"}, follow=True)
    report = StudyReport.objects.get()
    assert (report.fom, report.cov_method) == ("binormal_auc", "bootstrap")
    assert "binormal AUC, bootstrap covariance" in response.content.decode()


def test_the_reports_api_accepts_the_choices_and_refuses_a_bad_pair(
    client, coordinator, finished_study, eager
):
    client.force_login(coordinator)
    url = f"/api/v1/studies/{finished_study.pk}/reports/"
    refused = client.post(
        url, {"fom": "binormal_auc", "cov_method": "unbiased"}, content_type="application/json"
    )
    assert refused.status_code == 400 and refused.json()["problems"] == [REFUSAL]
    wrong_type = client.post(url, {"fom": 3}, content_type="application/json")
    assert wrong_type.status_code == 400 and wrong_type.json()["problems"] == [
        "fom must be a string"
    ]
    assert not StudyReport.objects.exists()
    accepted = client.post(
        url, {"fom": "binormal_auc", "cov_method": "jackknife"}, content_type="application/json"
    )
    assert accepted.status_code == 202
    body = accepted.json()
    assert (body["fom"], body["cov_method"]) == ("binormal_auc", "jackknife")
