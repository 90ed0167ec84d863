"""Attention checks, fast reads and the pre-registered plan in the study analysis and report."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from analysis.report import render_html
from analysis.report_quality import NO_PLAN
from analysis.stats.mrmc import or_analysis
from analysis.stats.plan import AnalysisPlan, plan_status
from analysis.stats.quality import QualityRules, attention_scores, data_quality, fast_reads
from analysis.stats.reads import Read, to_mrmc_data
from analysis.stats.study import analyse_study
from analysis.stats.study_quality import quality_section
from tests.analysis.test_study_analysis import blind_meta, lean, synthetic_reads

SHA = "ab" * 32


def attention(reader: str, case: str, *, truth: bool | None, call: bool | None) -> Read:
    return Read(reader, case, "A", kind="attention", truth=truth, final_positive=call)


def test_a_reader_failing_k_plus_one_of_n_checks_is_excluded_and_one_failing_k_is_not():
    reads = [
        attention("R01", "a1", truth=True, call=False),
        attention("R01", "a2", truth=False, call=True),
        attention("R01", "a3", truth=True, call=True),
        attention("R02", "a1", truth=True, call=False),
        attention("R02", "a2", truth=False, call=False),
        attention("R02", "a3", truth=True, call=True),
        Read("R03", "c1", "A", truth=True, final_positive=True),
    ]
    scores = {s.reader: s for s in attention_scores(reads, max_failures=1)}
    assert (scores["R01"].checks, scores["R01"].passed, scores["R01"].failed) == (3, 1, 2)
    assert scores["R01"].excluded
    assert (scores["R02"].passed, scores["R02"].failed, scores["R02"].excluded) == (2, 1, False)
    assert (scores["R03"].checks, scores["R03"].excluded) == (0, False)
    assert data_quality(reads, QualityRules(attention_max_failures=1)).excluded == ("R01",)
    assert data_quality(reads, QualityRules(attention_max_failures=2)).excluded == ()
    assert data_quality(reads, QualityRules()).excluded == ()


def test_a_missing_diagnosis_fails_a_check_and_an_unknown_truth_is_not_scored():
    reads = [
        attention("R01", "a1", truth=True, call=None),
        attention("R01", "a2", truth=None, call=True),
    ]
    (score,) = attention_scores(reads, max_failures=0)
    assert (score.checks, score.passed, score.failed, score.unscored) == (2, 0, 1, 1)
    assert score.excluded


def test_fast_reads_are_counted_per_reader_and_arm_below_the_threshold():
    reads = [
        Read("R01", "c1", "A", seconds=2.0),
        Read("R01", "c2", "A", seconds=3.0),  # not shorter than 3
        Read("R01", "c3", "B", seconds=1.0),
        Read("R01", "c4", "B", seconds=None),  # no time: not counted
        Read("R02", "c1", "B", seconds=10.0),
        Read("R02", "a1", "B", kind="attention", seconds=0.5),  # main reads only
    ]
    counted = [(f.reader, f.arm, f.timed, f.fast) for f in fast_reads(reads, 3.0)]
    assert counted == [("R01", "A", 2, 1), ("R01", "B", 1, 1), ("R02", "B", 1, 0)]
    assert fast_reads(reads, None) == ()


def test_malformed_rules_are_refused():
    with pytest.raises(ValueError, match="negative"):
        QualityRules(attention_max_failures=-1)
    with pytest.raises(ValueError, match="positive"):
        QualityRules(fast_read_seconds=0)


def _reads_with_a_careless_reader() -> list[Read]:
    """The synthetic study plus three attention checks per reader; r2 fails two of them."""
    reads = lean(synthetic_reads())
    for i in range(1, 7):
        reader = f"r{i}"
        for j in range(3):
            wrong = reader == "r2" and j < 2
            reads.append(attention(reader, f"attn{j}", truth=True, call=not wrong))
    return reads


@pytest.fixture(scope="module")
def careless():
    reads = _reads_with_a_careless_reader()
    plan = AnalysisPlan("auc", (("C", "A"), ("B", "A")), 0.05, "or_rrrc", "empirical_auc", SHA)
    meta = blind_meta(
        n_bootstrap=50,
        quality_rules=QualityRules(attention_max_failures=1, fast_read_seconds=15.0),
        analysis_plan=plan,
    )
    return reads, meta, analyse_study(reads, meta)


def test_the_rule_excludes_the_careless_reader_and_the_auc_analysis_is_rerun_without_them(careless):
    reads, meta, analysis = careless
    section = analysis.quality
    assert section.ok
    assert section.result.quality.excluded == ("r2",)
    without = section.result.mrmc_auc_without_excluded
    assert without.ok
    kept = [r for r in reads if r.reader != "r2"]
    expected = or_analysis(
        to_mrmc_data(kept, rating="final_confidence", diagnosis_from="final_positive"),
        "auc", "jackknife", conf_level=meta.conf_level,
    )
    got = without.result.or_result
    assert got.readers == expected.readers and "r2" not in got.readers
    np.testing.assert_allclose(got.arm_means, expected.arm_means)
    ours = {(c.minuend, c.subtrahend): c.p_value for c in got.analyses["rrrc"].comparisons}
    theirs = {(c.minuend, c.subtrahend): c.p_value for c in expected.analyses["rrrc"].comparisons}
    assert ours == pytest.approx(theirs)
    # the main analysis keeps every reader
    assert "r2" in analysis.mrmc_auc.result.or_result.readers


def test_fast_reads_are_flagged_but_kept_unless_the_rules_exclude_them():
    timed = [replace(r, seconds=5.0 if r.reader == "r3" and r.arm == "B" else 60.0)
             for r in _reads_with_a_careless_reader()]
    flagged_only = quality_section(timed, blind_meta(
        quality_rules=QualityRules(fast_read_seconds=10.0)))
    q = flagged_only.result.quality
    assert q.n_fast == sum(1 for r in timed if r.kind == "main" and r.reader == "r3"
                           and r.arm == "B") > 0
    assert flagged_only.result.mrmc_auc_without_excluded is None
    excluded = quality_section(timed, blind_meta(
        quality_rules=QualityRules(fast_read_seconds=10.0, exclude_fast_reads=True)))
    without = excluded.result.mrmc_auc_without_excluded
    assert excluded.result.quality.excluded == ()
    assert without.ok
    # r3's B reads are left out, so r3 has no B reads and is left out of the rerun
    assert "r3" not in without.result.or_result.readers


def test_without_a_rule_nothing_is_excluded_and_there_is_no_second_analysis():
    analysis = analyse_study(_reads_with_a_careless_reader(), blind_meta(n_bootstrap=20))
    assert analysis.quality.result.quality.excluded == ()
    assert analysis.quality.result.mrmc_auc_without_excluded is None


def test_plan_status_needs_the_pair_endpoint_test_and_figure_of_merit_of_the_plan():
    plan = AnalysisPlan("auc", (("C", "A"),), 0.05, "or_rrrc", "empirical_auc")
    assert plan_status(plan, fom="auc", analysis="rrrc", minuend="C", subtrahend="A") == (
        "pre-specified"
    )
    assert plan_status(plan, fom="auc", analysis="rrrc", minuend="A", subtrahend="C") == (
        "pre-specified"
    )
    for fom, analysis, pair in [
        ("auc", "rrrc", ("B", "A")),
        ("auc", "frrc", ("C", "A")),
        ("binormal_auc", "rrrc", ("C", "A")),
        ("accuracy", "rrrc", ("C", "A")),
    ]:
        assert plan_status(plan, fom=fom, analysis=analysis, minuend=pair[0],
                           subtrahend=pair[1]) == "exploratory"
    assert plan_status(None, fom="auc", analysis="rrrc", minuend="C", subtrahend="A") == (
        "exploratory"
    )


def _section(html: str, section: str) -> str:
    return html.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]


def test_the_report_marks_pre_specified_and_exploratory_rows_and_states_the_rule(careless):
    *_, analysis = careless
    html = render_html(analysis, generated_at="now", versions={})
    assert "<h2>Data quality</h2>" in html
    assert "more than 1 of their attention checks" in html
    assert "shorter than 15 seconds are flagged" in html
    assert f"SHA-256 of the frozen plan: {SHA}" in html
    assert "Excluded by the rule (more than 1 failed): r2." in html
    assert "with and without the excluded readers" in html
    auc = _section(html, "mrmc_auc")
    rrrc = auc.split("Differences between arms, RRRC", 1)[1].split("Differences between arms", 1)[0]
    prespecified = [row for row in rrrc.split("<tr") if "pre-specified" in row]
    assert len(prespecified) == 2  # arm C and arm B minus unaided, as the plan names them
    assert all("Arm A" in row and ("Arm C" in row or "Arm B" in row) for row in prespecified)
    assert rrrc.count("exploratory") == 4  # the other pairs of the 4 arms
    frrc = auc.split("Differences between arms, FRRC", 1)[1]
    assert "pre-specified" not in frrc and "exploratory" in frrc
    accuracy = _section(html, "mrmc_accuracy")
    assert "pre-specified" not in accuracy and "exploratory" in accuracy
    assert NO_PLAN not in html


def test_a_report_without_a_plan_says_every_result_is_exploratory():
    reads = lean(synthetic_reads())
    analysis = analyse_study(reads, blind_meta(n_bootstrap=20))
    html = render_html(analysis, generated_at="now", versions={})
    assert NO_PLAN in html
    auc = _section(html, "mrmc_auc")
    assert "pre-specified" not in auc and "exploratory" in auc
    assert "no attention-check exclusion rule was stated" in html
