"""The reliance section's table of how quickly readers aligned with the AI or departed from it
(stats/alignment.py)."""

from __future__ import annotations

from analysis.report_format import num, table


def alignment_table(alignment, label) -> str:
    """Median (quartiles) seconds from the AI output to the final answer, per arm, AI
    correctness and decision; '' when no read has a final-stage time."""
    if not alignment:
        return ""
    rows = [
        [
            label(t.arm),
            "right" if t.ai_right else "wrong",
            "with the AI" if t.decision == "aligned" else "against the AI",
            t.n,
            t.switched if t.decision == "aligned" else "",
            num(t.median_seconds, 1),
            f"{num(t.q1_seconds, 1)} to {num(t.q3_seconds, 1)}",
        ]
        for t in alignment
    ]
    return table(
        ["arm", "AI", "final call", "reads", "switched to the AI", "median (s)", "quartiles (s)"],
        rows,
        caption="Time from the AI output to the final answer",
        numeric_from=3,
    )
