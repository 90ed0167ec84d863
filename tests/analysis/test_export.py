"""The study's long-format CSV, its codebook and the JSON snapshot."""

from __future__ import annotations

import csv
import io

from analysis import export
from analysis.study_data import study_reads, study_rows


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
