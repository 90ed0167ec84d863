"""A study's end-of-session questionnaire scores for the report and the exports: one row per
stored response (pseudonymous reader code, instrument, session, its standard scores as stored
when it was submitted) and, per instrument, score and session, the summary across readers
(n, mean, SD, median, min, max: ``analysis.stats.questionnaires``).

Readers are coded as in the rest of the report (``study_data.reader_code``: R01, R02... in
enrollment order); nothing here names a reader or an arm."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict

from analysis.stats.questionnaires import INSTRUMENTS, scores_by_group, summarize_groups
from analysis.study_data import reader_code
from studies.models import QuestionnaireResponse, Study

# The scores each instrument reports, in order, with their names in the report.
SCORES = {
    "nasa_tlx": (("raw_tlx", "Raw TLX (0–100)"), ("weighted_tlx", "Weighted TLX (0–100)")),
    "sus": (("score", "SUS score (0–100)"),),
    "jian_trust": (
        ("trust", "Trust (1–7, items 1–5 reversed)"),
        ("distrust_mean", "Distrust items 1–5 (1–7)"),
        ("trust_mean", "Trust items 6–12 (1–7)"),
    ),
}
CSV_COLUMNS = ("reader", "instrument", "session", "score", "value", "submitted_at")


def questionnaire_rows(*, study: Study) -> list[dict]:
    """One row per stored response: reader code, instrument, session (1-based), scores."""
    responses = (
        QuestionnaireResponse.objects.filter(enrollment__study=study)
        .select_related("enrollment")
        .order_by("enrollment__reader_index", "session_index", "instrument")
    )
    return [
        {
            "reader": reader_code(r.enrollment.reader_index),
            "instrument": r.instrument,
            "session": r.session_index + 1,
            "scores": {name: r.scores.get(name) for name, _ in SCORES.get(r.instrument, ())},
            "submitted_at": r.submitted_at,
        }
        for r in responses
    ]


def _score_summaries(rows: list[dict], instrument: str, score: str) -> list[dict]:
    picked = [
        (row["reader"], f"session {row['session']}", row["scores"][score])
        for row in sorted(rows, key=lambda row: row["session"])
        if row["instrument"] == instrument and row["scores"].get(score) is not None
    ]
    groups = scores_by_group(picked)
    return [asdict(summary) for summary in summarize_groups(groups)]


def questionnaire_summary(*, study: Study, rows: list[dict] | None = None) -> list[dict]:
    """Per instrument answered and each of its scores: the summary per session, in session
    order (`group` is "session N"); a score no reader has (weighted TLX without the pairwise
    comparisons) is left out."""
    rows = questionnaire_rows(study=study) if rows is None else rows
    answered = {row["instrument"] for row in rows}
    out = []
    for instrument, scores in SCORES.items():
        if instrument not in answered:
            continue
        for score, label in scores:
            sessions = _score_summaries(rows, instrument, score)
            if sessions:
                out.append(
                    {
                        "instrument": instrument,
                        "name": INSTRUMENTS[instrument].name,
                        "score": score,
                        "label": label,
                        "sessions": sessions,
                    }
                )
    return out


def questionnaires_csv(rows: list[dict]) -> str:
    """The rows as a long CSV: one line per reader, instrument, session and score."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        for score, value in row["scores"].items():
            if value is not None:
                when = row["submitted_at"]
                writer.writerow(
                    [
                        row["reader"],
                        row["instrument"],
                        row["session"],
                        score,
                        repr(float(value)),
                        when.isoformat() if when else "",
                    ]
                )
    return buffer.getvalue()
