"""A study's questionnaire scores for the report: the rows (pseudonymous reader codes), the
summaries per instrument, score and session (the scoring module's), the CSV and the report
fragment."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import asdict

import pytest

from analysis.questionnaire_data import (
    CSV_COLUMNS,
    questionnaire_rows,
    questionnaire_summary,
    questionnaires_csv,
)
from analysis.report_questionnaires import questionnaires_section
from analysis.stats.questionnaires import (
    TLX_SUBSCALES,
    score_sus,
    score_tlx,
    scores_by_group,
    summarize_groups,
    tlx_pairs,
)
from studies import services
from studies.models import QuestionnaireResponse
from tests.studies.conftest import draft_study, ready_study, study_collection, study_model  # noqa: F401


def tlx(*values):
    return dict(zip(TLX_SUBSCALES, values, strict=True))


def sus(*values):
    return {f"sus_{n}": v for n, v in enumerate(values, start=1)}


def store(enrollment, instrument, session_index, scores):
    QuestionnaireResponse.objects.create(
        enrollment=enrollment,
        instrument=instrument,
        session_index=session_index,
        answers={},
        scores=asdict(scores),
        client_key=uuid.uuid4(),
    )


@pytest.fixture
def answered(coordinator, ready_study, reader_a, reader_b):  # noqa: F811
    study = services.study_open(acting_user=coordinator, study=ready_study)
    a = services.reader_enroll(acting_user=coordinator, study=study, reader=reader_a)
    b = services.reader_enroll(acting_user=coordinator, study=study, reader=reader_b)
    comparisons = [[x, y, x] for x, y in tlx_pairs()]
    store(a, "nasa_tlx", 0, score_tlx(tlx(50, 10, 40, 30, 60, 20)))
    store(b, "nasa_tlx", 0, score_tlx(tlx(80, 20, 70, 40, 90, 50)))
    store(a, "nasa_tlx", 1, score_tlx(tlx(40, 10, 30, 20, 50, 10), comparisons))
    store(b, "sus", 1, score_sus(sus(5, 1, 5, 1, 5, 1, 5, 1, 5, 1)))
    return study, a, b


def test_rows_carry_reader_codes_instruments_sessions_and_scores(answered, reader_a):
    study, a, b = answered
    rows = questionnaire_rows(study=study)
    assert [(r["reader"], r["instrument"], r["session"]) for r in rows] == [
        ("R01", "nasa_tlx", 1),
        ("R01", "nasa_tlx", 2),
        ("R02", "nasa_tlx", 1),
        ("R02", "sus", 2),
    ]
    assert rows[0]["scores"] == {"raw_tlx": 35.0, "weighted_tlx": None}
    assert rows[3]["scores"] == {"score": 100.0}
    assert reader_a.username not in str(rows)


def test_the_summary_is_the_scoring_modules_per_instrument_score_and_session(answered):
    study, _, _ = answered
    summary = questionnaire_summary(study=study)
    assert [(s["instrument"], s["score"]) for s in summary] == [
        ("nasa_tlx", "raw_tlx"),
        ("nasa_tlx", "weighted_tlx"),
        ("sus", "score"),
    ]
    raw = summary[0]
    expected = summarize_groups(
        scores_by_group(
            [
                ("R01", "session 1", 35.0),
                ("R02", "session 1", 58.333333333333336),
                ("R01", "session 2", 26.666666666666668),
            ]
        )
    )
    assert raw["sessions"] == [asdict(s) for s in expected]
    assert [s["group"] for s in raw["sessions"]] == ["session 1", "session 2"]
    assert raw["sessions"][0]["n"] == 2
    assert summary[1]["sessions"][0]["group"] == "session 2"  # weighted only where asked
    assert summary[2]["sessions"][0]["mean"] == 100.0


def test_a_study_without_answers_has_no_rows_and_says_so(coordinator, ready_study):  # noqa: F811
    assert questionnaire_rows(study=ready_study) == []
    assert questionnaire_summary(study=ready_study) == []
    html = questionnaires_section([])
    assert "No end-of-session questionnaire was answered" in html


def test_the_report_fragment_has_a_table_per_instrument_and_score(answered):
    study, _, _ = answered
    html = questionnaires_section(questionnaire_summary(study=study))
    assert "<h2>" not in html and html.startswith("<p>")  # report.py adds the heading
    assert html.count("<table") == 3
    assert "NASA Task Load Index" in html and "System Usability Scale" in html
    assert "Raw TLX (0–100)" in html and "SUS score (0–100)" in html
    assert "46.7" in html  # the mean raw TLX of session 1: (35 + 58.3) / 2
    assert "R01" not in html


def test_the_csv_has_one_line_per_reader_instrument_session_and_score(answered):
    study, _, _ = answered
    lines = list(csv.reader(io.StringIO(questionnaires_csv(questionnaire_rows(study=study)))))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert [line[:5] for line in lines[1:]] == [
        ["R01", "nasa_tlx", "1", "raw_tlx", "35.0"],
        ["R01", "nasa_tlx", "2", "raw_tlx", "26.666666666666668"],
        ["R01", "nasa_tlx", "2", "weighted_tlx", lines[3][4]],
        ["R02", "nasa_tlx", "1", "raw_tlx", "58.333333333333336"],
        ["R02", "sus", "2", "score", "100.0"],
    ]
    assert float(lines[3][4]) == pytest.approx(
        score_tlx(tlx(40, 10, 30, 20, 50, 10), [[x, y, x] for x, y in tlx_pairs()]).weighted_tlx
    )
