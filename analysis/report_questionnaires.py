"""The study report's Questionnaires section (an HTML fragment; see report.py): per instrument
and score, the readers' end-of-session scores summarized per session (n, mean, SD, median,
minimum, maximum), from ``analysis.questionnaire_data.questionnaire_summary``, and the methods
sentence naming the instruments and their scoring."""

from __future__ import annotations

from html import escape

from analysis.report_format import and_list, num, paragraph, table
from analysis.stats.questionnaires import INSTRUMENTS

HEADER = ("session", "n", "mean", "SD", "median", "min", "max")
SCORING = {
    "nasa_tlx": "NASA-TLX: raw TLX is the mean of the six 0–100 subscale ratings; the weighted "
    "TLX (when the 15 pairwise comparisons were asked) weights each rating by the times its "
    "subscale was chosen, divided by 15",
    "sus": "SUS: odd items contribute the answer minus 1, even items 5 minus the answer; the sum "
    "times 2.5 gives 0–100",
    "jian_trust": "trust in automation (Jian et al. 2000): the mean of the 12 items with items 1–5 "
    "reversed, and the means of items 1–5 (distrust) and 6–12 (trust), each 1–7",
}


def methods_text(summary: list[dict]) -> str:
    """One sentence on the instruments answered and how they are scored ('' when none)."""
    keys = list(dict.fromkeys(entry["instrument"] for entry in summary))
    if not keys:
        return ""
    return (
        f"At the end of reading sessions, readers answered {and_list([INSTRUMENTS[k].name for k in keys])}, "
        f"scored by their standard rules ({'; '.join(SCORING[k] for k in keys)}). Scores are "
        "summarized per session across the readers who answered (SD: sample standard deviation)."
    )


def _rows(sessions: list[dict]) -> list[list[str]]:
    return [
        [
            s["group"],
            str(s["n"]),
            num(s["mean"], 1),
            num(s["sd"], 1),
            num(s["median"], 1),
            num(s["minimum"], 1),
            num(s["maximum"], 1),
        ]
        for s in sessions
    ]


def questionnaires_section(summary: list[dict]) -> str:
    """The section's body (report.py adds its heading): the methods sentence and one table per
    instrument and score; a sentence when no questionnaire was answered."""
    out = []
    if not summary:
        out.append(paragraph("No end-of-session questionnaire was answered in this study."))
        return "\n".join(out)
    out.append(paragraph(methods_text(summary)))
    current = None
    for entry in summary:
        if entry["instrument"] != current:
            current = entry["instrument"]
            out.append(f"<h3>{escape(entry['name'])}</h3>")
        out.append(table(HEADER, _rows(entry["sessions"]), caption=entry["label"]))
    return "\n".join(out)
