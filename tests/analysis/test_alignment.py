"""How quickly readers align with the AI or depart from it, by hand."""

import numpy as np
import pytest

from analysis.report_alignment import alignment_table
from analysis.stats.alignment import alignment_times
from analysis.stats.reads import Read
from analysis.stats.reliance import reliance


def read(arm, *, truth, ai, first, final, seconds, case="c1", reader="r1", kind="main"):
    return Read(reader, case, arm, kind=kind, truth=truth, first_positive=first,
                final_positive=final, ai_shown=True, ai_positive=ai, final_seconds=seconds)


READS = [
    # arm B, AI right (says positive, truth positive)
    read("B", truth=True, ai=True, first=True, final=True, seconds=4.0),  # aligned, kept
    read("B", truth=True, ai=True, first=False, final=True, seconds=10.0),  # aligned, switched
    read("B", truth=True, ai=True, first=False, final=False, seconds=20.0),  # departed
    # arm B, AI wrong (says positive, truth negative)
    read("B", truth=False, ai=True, first=False, final=True, seconds=30.0),  # aligned, switched
    read("B", truth=False, ai=True, first=False, final=False, seconds=6.0),  # departed
    read("B", truth=False, ai=True, first=False, final=False, seconds=8.0),  # departed
    # arm A
    read("A", truth=True, ai=False, first=True, final=True, seconds=5.0),  # AI wrong, departed
    # left out: no time, not positive, training, no first call
    read("A", truth=True, ai=True, first=True, final=True, seconds=None),
    read("A", truth=True, ai=True, first=True, final=True, seconds=0.0),
    read("A", truth=True, ai=True, first=True, final=True, seconds=3.0, kind="training"),
    read("A", truth=True, ai=True, first=None, final=True, seconds=3.0),
]


def test_times_are_grouped_by_arm_ai_correctness_and_decision():
    got = {(t.arm, t.ai_right, t.decision): t for t in alignment_times(READS)}
    assert list(got) == [("A", False, "departed"), ("B", True, "aligned"),
                         ("B", True, "departed"), ("B", False, "aligned"),
                         ("B", False, "departed")]
    right = got[("B", True, "aligned")]
    assert (right.n, right.switched, right.median_seconds) == (2, 1, 7.0)
    assert (right.q1_seconds, right.q3_seconds) == (5.5, 8.5)  # linear interpolation of 4, 10
    wrong = got[("B", False, "departed")]
    assert (wrong.n, wrong.switched, wrong.median_seconds) == (2, 0, 7.0)
    assert got[("B", False, "aligned")].switched == 1  # followed the wrong AI after disagreeing


def test_the_reliance_result_carries_them_and_the_report_shows_them():
    result = reliance(READS)
    assert result.alignment == alignment_times(READS)
    html = alignment_table(result.alignment, lambda code: f"Arm {code}")
    assert "Time from the AI output to the final answer" in html
    assert html.count("<tr>") == 1 + len(result.alignment)
    assert "against the AI" in html and "with the AI" in html
    assert alignment_table((), str) == ""


def test_medians_equal_numpy_on_random_times():
    rng = np.random.default_rng(3)
    reads = [read("C", truth=True, ai=True, first=True, final=True,
                  seconds=float(s)) for s in rng.uniform(1, 40, 25)]
    (only,) = alignment_times(reads)
    times = [r.final_seconds for r in reads]
    assert only.median_seconds == pytest.approx(np.median(times))
    assert only.q1_seconds == pytest.approx(np.percentile(times, 25))
