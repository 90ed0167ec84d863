"""Intervals inside the range of their parameter: logit-scale per-arm intervals, the bootstrap
interval of Cohen's kappa, and every interval of a study with extreme data."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest
from scipy import special, stats
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from analysis.report import render_html
from analysis.stats.agreement import (
    BOOTSTRAP_INTERVAL,
    cohen_kappa,
    cohen_kappa_bootstrap,
    reader_ai_kappa,
)
from analysis.stats.intervals import (
    CLIPPED,
    LOGIT,
    ZERO_WIDTH,
    clipped_interval,
    logit_interval,
)
from analysis.stats.study import analyse_study
from tests.analysis.test_study_analysis import blind_meta, synthetic_reads

# ----------------------------------------------------------------------------- logit interval


@pytest.mark.parametrize(("estimate", "se", "df"), [(0.973, 0.0198, 5.0), (0.62, 0.08, 15.0),
                                                    (0.04, 0.03, math.inf), (0.5, 0.2, 3.0)])
def test_logit_interval_is_the_back_transformed_delta_method_interval(estimate, se, df):
    b = logit_interval(estimate, se, df=df, conf_level=0.95)
    q = stats.norm.ppf(0.975) if math.isinf(df) else stats.t.ppf(0.975, df)
    se_logit = se / (estimate * (1 - estimate))
    assert b.method == LOGIT
    assert b.ci_low == pytest.approx(special.expit(special.logit(estimate) - q * se_logit))
    assert b.ci_high == pytest.approx(special.expit(special.logit(estimate) + q * se_logit))
    assert (b.wald_low, b.wald_high) == pytest.approx((estimate - q * se, estimate + q * se))
    assert 0 < b.ci_low < estimate < b.ci_high < 1


def test_an_untransformed_interval_past_1_comes_back_inside():
    b = logit_interval(0.973, 0.0198, df=5.0)  # the Wald interval is 0.922 to 1.024
    assert b.wald_high > 1 and b.wald_outside
    assert b.ci_high < 1


def test_zero_se_gives_a_zero_width_interval_and_a_bound_with_se_is_clipped():
    assert (logit_interval(1.0, 0.0).ci_low, logit_interval(1.0, 0.0).ci_high) == (1.0, 1.0)
    assert logit_interval(1.0, 0.0).method == ZERO_WIDTH
    clipped = logit_interval(1.0, 0.05, df=10)
    assert clipped.method == CLIPPED and clipped.ci_high == 1.0 and clipped.wald_high > 1
    assert clipped.ci_low == pytest.approx(1 - stats.t.ppf(0.975, 10) * 0.05)
    with pytest.raises(ValueError):
        logit_interval(1.2, 0.1)


def test_clipped_interval_says_whether_it_clipped():
    assert clipped_interval(-1.2, 0.4, -1.0, 1.0) == (-1.0, 0.4, True)
    assert clipped_interval(-0.2, 0.4, -1.0, 1.0) == (-0.2, 0.4, False)


# ----------------------------------------------------------------------------- Cohen's kappa


def test_the_wald_interval_of_cohens_kappa_stays_the_statsmodels_one():
    table = [[5, 0], [1, 4]]  # kappa 0.8 on 10 reads
    wald = cohen_kappa(table)
    ref = cohens_kappa(np.array(table))
    assert (wald.ci_low, wald.ci_high) == pytest.approx((ref.kappa_low, ref.kappa_upp))
    assert wald.ci_high > 1  # why the report does not use it


def test_the_bootstrap_interval_of_kappa_near_1_stays_within_the_range():
    low, high, undefined = cohen_kappa_bootstrap([[5, 0], [1, 4]], n_bootstrap=4000, seed=1)
    assert -1 <= low < 0.8 <= high <= 1
    assert high == 1.0  # a third of the resamples agree perfectly
    assert undefined < 40  # resamples with one category only are rare here
    assert cohen_kappa_bootstrap([[6, 0], [0, 4]], n_bootstrap=500)[:2] == (1.0, 1.0)


def test_the_bootstrap_interval_of_kappa_approaches_the_wald_interval_in_large_samples():
    table = [[160, 40], [30, 170]]
    wald = cohen_kappa(table)
    low, high, undefined = cohen_kappa_bootstrap(table, n_bootstrap=4000, seed=3)
    assert undefined == 0
    assert low == pytest.approx(wald.ci_low, abs=0.02)
    assert high == pytest.approx(wald.ci_high, abs=0.02)


def test_reader_ai_kappa_with_bootstrap_is_seeded_and_keeps_the_se():
    reads = synthetic_reads()
    wald = reader_ai_kappa(reads)
    boot = reader_ai_kappa(reads, n_bootstrap=300, seed=5)
    assert boot == reader_ai_kappa(reads, n_bootstrap=300, seed=5)
    assert [k.se for k in boot] == [k.se for k in wald]
    assert {k.interval for k in boot} == {BOOTSTRAP_INTERVAL}
    assert any(k.ci_high > 1 for k in wald)
    assert all(-1 <= k.ci_low <= k.ci_high <= 1 for k in boot)


# ----------------------------------------------------------------------------- whole study


def perfect(reads, arms=("B", "C", "D")):
    """Every main read of ``arms`` right, with a confidence that separates the classes."""
    return [replace(r, final_positive=r.truth, final_confidence=90.0 if r.truth else 10.0)
            if r.kind == "main" and r.arm in arms else r for r in reads]


@pytest.fixture(scope="module")
def extreme():
    analysis = analyse_study(perfect(synthetic_reads()), blind_meta(n_bootstrap=200))
    return analysis, render_html(analysis, generated_at="now", versions={})


@pytest.fixture(scope="module")
def ordinary():
    analysis = analyse_study(synthetic_reads(), blind_meta(n_bootstrap=200))
    return analysis, render_html(analysis, generated_at="now", versions={})


def section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start:html.index("</section>", start)]


def intervals(text: str) -> list[tuple[float, float]]:
    """Every "a to b" of ``text`` outside the table notes (which may quote the untransformed
    interval of the reference software, labelled as such)."""
    text = re.sub(r'<p class="table-note">.*?</p>', "", text, flags=re.S)
    number = r"(−?\d+\.\d+)"
    return [(float(a.replace("−", "-")), float(b.replace("−", "-")))
            for a, b in re.findall(rf"{number} to {number}", text)]


BOUNDED = ("proportions", "mrmc_auc", "mrmc_accuracy", "reliance", "agreement",
           "explanation_gain", "subgroups")


@pytest.mark.parametrize("which", ["extreme", "ordinary"])
def test_every_interval_of_a_bounded_measure_lies_in_its_range(which, request):
    _, html = request.getfixturevalue(which)
    for name in BOUNDED:
        found = intervals(section(html, name))
        assert found or name == "reliance", name
        for low, high in found:
            assert -1 <= low <= high <= 1, (name, low, high)
    for name in ("proportions", "reliance"):
        assert all(0 <= low <= high <= 1 for low, high in intervals(section(html, name)))


def test_perfect_arms_have_auc_1_zero_width_intervals_and_accuracy_1(extreme):
    analysis, html = extreme
    for fom in ("mrmc_auc", "mrmc_accuracy"):
        bounded = analysis.__getattribute__(fom).result.arm_intervals["rrrc"]
        for arm in ("B", "C", "D"):
            assert (bounded[arm].estimate, bounded[arm].method) == (1.0, ZERO_WIDTH)
            assert (bounded[arm].ci_low, bounded[arm].ci_high) == (1.0, 1.0)
        assert 0 < bounded["A"].ci_low < bounded["A"].estimate < bounded["A"].ci_high < 1
    accuracy = {p.arm: p.accuracy for p in analysis.proportions.result.final.arms}
    wilson = proportion_confint(60, 60, method="wilson")
    assert accuracy["B"].estimate == 1.0
    assert (accuracy["B"].ci_low, accuracy["B"].ci_high) == pytest.approx(wilson)
    assert accuracy["B"].ci_high <= 1.0
    assert "zero-width interval for Arm B: AI prediction" in section(html, "mrmc_auc")


def test_the_per_arm_table_shows_the_logit_interval_and_names_the_untransformed_one(ordinary):
    analysis, html = ordinary
    rrrc = analysis.mrmc_auc.result.or_result.analyses["rrrc"]
    bounded = analysis.mrmc_auc.result.arm_intervals["rrrc"]
    crossing = [bounded[e.treatment] for e in rrrc.arms if bounded[e.treatment].wald_outside]
    assert crossing  # arm D: 0.973, Wald interval 0.922 to 1.024
    auc = section(html, "mrmc_auc")
    for e in rrrc.arms:
        b = bounded[e.treatment]
        # the OR result's own interval is the Wald one truncated to [0, 1], as MRMCaov's
        assert (max(b.wald_low, 0), min(b.wald_high, 1)) == pytest.approx((e.ci_low, e.ci_high))
        assert f"{b.ci_low:.3f} to {b.ci_high:.3f}" in auc
    for b in crossing:
        assert f"{b.wald_low:.3f} to {b.wald_high:.3f} (both are in the JSON export)" in auc
    # the OR differences keep the reference software's intervals
    for c in analysis.mrmc_auc.result.primary:
        assert f"{c.ci_low:.3f} to {c.ci_high:.3f}".replace("-", "−") in auc


def test_the_methods_name_the_interval_methods(ordinary):
    _, html = ordinary
    methods = section(html, "methods")
    for phrase in ("logit scale", "delta-method SE", "MRMCaov", "RJafroc",
                   "percentile bootstrap over reads", "Wilson score", "zero width",
                   "clipped"):
        assert phrase in methods, phrase
