"""The study's long-format CSV, its codebook and the JSON snapshot."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.urls import reverse

from analysis import export
from analysis.stats.io import read_study
from analysis.stats.mrmc import or_analysis
from analysis.study_data import study_reads, study_rows
from core.errors import ServiceError
from core.models import AuditEntry
from studies import services as study_services
from studies.models import ReaderProfile
from studies.services.reading import enrollment_consent
from tests.analysis.conftest import read_everything


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_has_one_row_per_reader_case_and_stage(finished_study):
    rows = study_rows(study=finished_study)
    table = _rows(export.long_csv(rows))
    trials = finished_study.enrollments.count() * 12
    two_stage = sum(1 for t in rows.trials if t.arm.shows_ai)
    assert len(table) == trials + two_stage
    assert {r["reader"] for r in table} == {"R01", "R02"}
    assert {r["stage"] for r in table} == {"first", "final"}
    assert all(r["arm"] in "ABCD" for r in table)
    assert not any("reader_a" in value for r in table for value in r.values())  # pseudonymous


def test_the_ai_output_is_blank_in_the_unaided_first_stage_and_filled_after_the_reveal(finished_study):
    table = _rows(export.long_csv(study_rows(study=finished_study)))
    first = [r for r in table if r["stage"] == "first"]
    assert first and all(r["ai_shown"] == "false" and r["ai_prediction"] == "" for r in first)
    revealed = [r for r in table if r["stage"] == "final" and r["arm"] != "A"]
    assert all(r["ai_prediction"] in ("nodule", "normal") and r["ai_correct"] in ("true", "false") for r in revealed)
    # the fixture's predictions are wrong on 3 cases
    wrong_cases = {r["case"] for r in revealed if r["ai_correct"] == "false"}
    assert len(wrong_cases) == 3


def test_answers_times_and_interactions_are_exported(finished_study):
    table = _rows(export.long_csv(study_rows(study=finished_study)))
    final = [r for r in table if r["stage"] == "final"]
    assert all(r["answer_diagnosis"] in ("nodule", "normal") for r in final)
    assert all(r["answer_confidence"] in ("20", "80") for r in final)
    assert all(r["viewer_window_changes"] == "2" for r in final)
    assert all(r["trial_shown_at"] and r["submitted_at"] for r in table)
    assert all(float(r["seconds_on_stage"]) >= 0 for r in table)
    assert {r["reader_years_experience"] for r in table} == {"12", "2"}


def test_the_codebook_describes_every_column(finished_study):
    rows = study_rows(study=finished_study)
    header = export.long_csv(rows).splitlines()[0].split(",")
    book = _rows(export.codebook_csv(rows))
    assert [b["variable"] for b in book] == header
    assert all(b["type"] and b["meaning"] for b in book)
    diagnosis = next(b for b in book if b["variable"] == "answer_diagnosis")
    assert diagnosis["allowed values"] == "normal, nodule"


def test_the_blinded_snapshot_hides_the_explainers(finished_study):
    rows = study_rows(study=finished_study)
    blind = export.snapshot(rows, unblinded=False)
    text = str(blind)
    assert "gradcam" not in text and "placebo" not in text
    assert blind["configuration"]["seed"] == finished_study.seed
    assert blind["configuration"]["schedule_algorithm"] == "xrs-schedule/1"
    assert blind["model"]["sha256"] == finished_study.model.file_sha256
    assert [e["reader"] for e in blind["enrollments"]] == ["R01", "R02"]
    assert "numpy" in blind["library_versions"]
    unblinded = export.snapshot(rows, unblinded=True)
    assert unblinded["configuration"]["arms"][2]["explainer"] == "gradcam"


def test_reads_carry_both_stages_truth_and_the_ai(finished_study):
    reads = study_reads(study_rows(study=finished_study))
    assert len(reads) == 24
    aided = [r for r in reads if r.ai_shown]
    assert all(r.first_positive is not None and r.final_positive is not None for r in aided)
    unaided = [r for r in reads if not r.ai_shown]
    assert all(r.first_positive is None and r.ai_positive is None for r in unaided)
    first_reader = [r for r in reads if r.reader == "R01"]
    assert all(r.final_positive == r.truth for r in first_reader)
    assert {r.reader_experience for r in reads} == {12.0, 2.0}
    assert all(r.ratings for r in aided)


def test_trials_that_showed_an_empty_explanation_are_marked(finished_study):
    from analysis.services import study_meta
    from analysis.stats.study import analyse_study
    from explain.compute.heatmaps import EMPTY_RULE
    from explain.models import Explanation
    from studies.models import Arm, Trial
    from studies.selectors import study_empty_explanations

    explainer_arm = finished_study.arms.get(kind=Arm.Kind.AI_EXPLAINER)
    shown = Trial.objects.filter(session__enrollment__study=finished_study, arm=explainer_arm,
                                 kind="main").select_related("case")
    emptied = {t.case for t in shown[:2]}
    Explanation.objects.filter(case__in=emptied, explainer=explainer_arm.explainer,
                               placebo=False).update(highlighted_fraction=0.0, raw_max=0.0)
    expected = {(row["arm"], row["case_key"]) for row in study_empty_explanations(study=finished_study)}
    assert {key for _, key in expected} == {c.key for c in emptied}
    heatmap_arms = {a.code for a in finished_study.arms.all() if a.shows_heatmap}
    assert heatmap_arms == {"C", "D"}

    rows = study_rows(study=finished_study)
    table = _rows(export.long_csv(rows))
    for r in table:
        if r["arm"] in heatmap_arms:
            assert r["explanation_empty"] == ("true" if (r["arm"], r["case"]) in expected else "false")
        else:
            assert r["explanation_empty"] == ""
    assert sum(r["explanation_empty"] == "true" for r in table) >= 2
    book = {b["variable"]: b for b in _rows(export.codebook_csv(rows))}
    assert book["explanation_empty"]["type"] == "boolean"
    assert EMPTY_RULE in book["explanation_empty"]["meaning"]

    reads = study_reads(rows)
    assert {r.explanation_empty for r in reads if r.arm not in heatmap_arms} == {None}
    assert {(r.arm, r.case) for r in reads if r.explanation_empty} == {
        (r.arm, r.case) for r in reads if (r.arm, r.case) in expected}
    meta = study_meta(study=finished_study, unblinded=False)
    assert meta.empty_rule == EMPTY_RULE
    counts = {c.arm: c for c in analyse_study(reads, meta).counts.result.empty_explanations}
    assert counts["C"].empty_trials == sum(1 for r in reads if r.arm == "C" and r.explanation_empty)
    assert counts["D"].empty_trials == 0


# --- ratings for iMRMC, MRMCaov and RJafroc -------------------------------------------------


@pytest.fixture
def closed_study(finished_study, coordinator):
    """The finished (Latin-square) study, closed."""
    return study_services.study_close(acting_user=coordinator, study=finished_study)


@pytest.fixture
def crossed_study(coordinator, ready_study, reader_a, reader_b):
    """A closed fully crossed two-stage study: both readers read every case under every arm."""
    study_services.study_update(
        acting_user=coordinator,
        study=ready_study,
        protocol="two_stage",
        design="fully_crossed",
        sessions=4,
    )
    ReaderProfile.objects.create(user=reader_a, years_experience=12)
    ReaderProfile.objects.create(user=reader_b, years_experience=2)
    study_services.study_open(acting_user=coordinator, study=ready_study)
    for reader in (reader_a, reader_b):
        enrollment = study_services.reader_enroll(
            acting_user=coordinator, study=ready_study, reader=reader
        )
        enrollment_consent(
            acting_user=reader, enrollment=enrollment, consent_version=ready_study.consent_version
        )
        read_everything(enrollment)
    return study_services.study_close(acting_user=coordinator, study=ready_study)


def assert_same_data(read, direct, *, with_diagnosis=True):
    assert (read.treatments, read.readers, read.cases) == (
        direct.treatments,
        direct.readers,
        direct.cases,
    )
    np.testing.assert_array_equal(read.truth, direct.truth)
    np.testing.assert_array_equal(read.ratings, direct.ratings)
    if with_diagnosis:
        np.testing.assert_array_equal(read.diagnosis, direct.diagnosis)
    else:  # iMRMC files hold scores only
        assert read.diagnosis is None


def _saved(tmp_path, study, fmt, user=None):
    content, content_type, filename = export.interop_export(acting_user=user, study=study, fmt=fmt)
    path = tmp_path / filename
    path.write_bytes(content)
    return path, content_type


@pytest.mark.parametrize("fmt", ["imrmc", "mrmcaov"])
def test_a_latin_square_study_reads_back_into_the_same_ratings(closed_study, tmp_path, fmt):
    path, _ = _saved(tmp_path, closed_study, fmt)
    direct = export.study_mrmc_data(study_rows(study=closed_study))
    assert direct.design != "crossed" and direct.readers == ("R01", "R02")
    read = read_study(path, "imrmc" if fmt == "imrmc" else "csv")
    assert direct.diagnosis is not None
    assert_same_data(read, direct, with_diagnosis=fmt == "mrmcaov")


@pytest.mark.parametrize("fmt", ["imrmc", "mrmcaov"])
def test_a_crossed_study_analysed_from_the_file_gives_the_same_or_analysis(
    crossed_study, tmp_path, fmt
):
    path, _ = _saved(tmp_path, crossed_study, fmt)
    direct = export.study_mrmc_data(study_rows(study=crossed_study))
    assert direct.design == "crossed" and direct.treatments == ("A", "B", "C", "D")
    read = read_study(path, "imrmc" if fmt == "imrmc" else "csv")
    assert_same_data(read, direct, with_diagnosis=fmt == "mrmcaov")
    from_file, from_study = or_analysis(read).to_dict(), or_analysis(direct).to_dict()
    assert from_file.pop("source").endswith(path.name) and from_study.pop("source") == f"study {crossed_study.pk}"
    assert json.dumps(from_file, sort_keys=True) == json.dumps(from_study, sort_keys=True)


def test_the_rjafroc_workbook_of_a_crossed_study_has_every_rating(crossed_study, tmp_path):
    from openpyxl import load_workbook  # only this test reads Excel

    path, content_type = _saved(tmp_path, crossed_study, "rjafroc")
    assert path.suffix == ".xlsx" and "spreadsheetml" in content_type
    direct = export.study_mrmc_data(study_rows(study=crossed_study))
    book = load_workbook(path, read_only=True)
    fp = list(book["FP"].iter_rows(min_row=2, values_only=True))
    tp = list(book["TP"].iter_rows(min_row=2, values_only=True))
    assert len(fp) + len(tp) == int(direct.read.sum()) == 2 * 4 * 12
    cases = dict(book["Cases"].iter_rows(min_row=2, values_only=True))
    for reader, arm, case_id, *rest in tp:
        t, r = direct.treatments.index(arm), direct.readers.index(reader)
        c = direct.cases.index(cases[case_id])
        assert direct.truth[c] == 1 and rest == [1, direct.ratings[t, r, c]]
    for reader, arm, case_id, rating in fp:
        t, r = direct.treatments.index(arm), direct.readers.index(reader)
        c = direct.cases.index(cases[case_id])
        assert direct.truth[c] == 0 and rating == direct.ratings[t, r, c]


def test_the_rjafroc_workbook_refuses_a_latin_square_study(closed_study):
    with pytest.raises(ServiceError) as info:
        export.interop_export(acting_user=None, study=closed_study, fmt="rjafroc")
    assert "fully crossed" in info.value.problems[0]


def test_ratings_exports_need_a_closed_study_and_a_known_format(finished_study, coordinator):
    with pytest.raises(ServiceError) as info:
        export.interop_export(acting_user=coordinator, study=finished_study, fmt="sas")
    assert len(info.value.problems) == 2
    assert "unknown format 'sas'" in info.value.problems[0]
    assert "close it" in info.value.problems[1]


def test_ratings_exports_are_audited_and_follow_the_report_permission(
    closed_study, coordinator, reader_a
):
    with pytest.raises(PermissionError):
        export.interop_export(acting_user=reader_a, study=closed_study, fmt="imrmc")
    export.interop_export(acting_user=coordinator, study=closed_study, fmt="mrmcaov")
    entry = AuditEntry.objects.filter(action="study.ratings_export").get()
    assert entry.actor == coordinator and entry.study_id == closed_study.pk
    assert entry.after["format"] == "mrmcaov"


def test_the_report_page_offers_the_ratings_downloads(client, closed_study, coordinator, reader_a):
    client.force_login(reader_a)
    url = reverse("analysis:report-list", args=[closed_study.pk]) + "?ratings=imrmc"
    assert client.get(url).status_code == 404  # not a viewer of the study
    client.force_login(coordinator)
    page_url = reverse("analysis:report-list", args=[closed_study.pk])
    page = client.get(page_url)
    url = page_url + "?ratings=imrmc"
    assert url.encode() in page.content
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"BEGIN DATA:" in response.content
    bad = client.get(page_url + "?ratings=rjafroc")
    assert bad.status_code == 404 and b"fully crossed" in bad.content


def test_the_ratings_downloads_wait_for_the_study_to_close(client, finished_study, coordinator):
    client.force_login(coordinator)
    page = client.get(reverse("analysis:report-list", args=[finished_study.pk]))
    assert b"once the study is closed" in page.content
    url = reverse("analysis:report-list", args=[finished_study.pk]) + "?ratings=imrmc"
    response = client.get(url)
    assert response.status_code == 404 and b"close it" in response.content
