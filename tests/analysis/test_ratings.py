import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.stats.inference import to_jsonable
from analysis.stats.ratings import distribution, ordinal_regression, rating_analysis
from analysis.stats.reads import Read


def rated(arm, value, reader="r1", case="c1", item="trust", kind="main"):
    return Read(reader, case, arm, kind=kind, ratings={item: value})


def test_distribution_counts_shares_and_quartiles_by_hand():
    d = distribution([1, 2, 2, 3, 5], 5)
    assert [lc.count for lc in d.levels] == [1, 2, 1, 0, 1]
    assert [lc.share for lc in d.levels] == pytest.approx([0.2, 0.4, 0.2, 0.0, 0.2])
    assert (d.median, d.q1, d.q3, d.iqr) == (2.0, 2.0, 3.0, 1.0)
    even = distribution([4, 1, 3, 2], 4)
    # linear interpolation: positions 0.75, 1.5, 2.25 of the sorted values 1, 2, 3, 4
    assert (even.median, even.q1, even.q3) == (2.5, 1.75, 3.25)


def test_analysis_reports_every_arm_and_item_with_empty_arms_as_none():
    reads = [rated("A", 4), rated("A", 5, case="c2"), rated("A", 2, item="clarity"),
             rated("B", 3, item="clarity"), rated("B", 1, kind="training"),
             Read("r1", "c3", "C")]
    res = rating_analysis(reads, points=5)
    assert res.items == ("clarity", "trust") and res.arms == ("A", "B", "C")
    by = {(d.item, d.arm): d for d in res.distributions}
    assert by["trust", "A"].n == 2 and by["trust", "A"].median == 4.5
    assert by["trust", "B"].n == 0 and by["trust", "B"].median is None
    assert by["trust", "B"].levels[0].share is None
    assert res.points == {"clarity": 5, "trust": 5}
    json.dumps(to_jsonable(res), allow_nan=False)


def test_ratings_outside_the_scale_are_refused():
    with pytest.raises(ValueError, match="above its 4 points"):
        rating_analysis([rated("A", 5)], points=4)
    with pytest.raises(ValueError, match="below 1"):
        rating_analysis([rated("A", 0)])


def test_two_levels_reduce_to_the_odds_ratio_of_the_2x2_table():
    # arm A: 10 of 40 rated high; arm B: 25 of 40 -> OR = (25/15) / (10/30) = 5,
    # model-based SE of log OR = sqrt(1/10 + 1/30 + 1/25 + 1/15)
    reads = ([rated("A", 2, case=f"a{i}") for i in range(10)]
             + [rated("A", 1, case=f"b{i}") for i in range(30)]
             + [rated("B", 2, case=f"c{i}") for i in range(25)]
             + [rated("B", 1, case=f"d{i}") for i in range(15)])
    fit = ordinal_regression(reads, "trust", cluster=False)
    assert fit.reason is None and fit.converged and fit.cov_type == "nonrobust"
    (orr,) = fit.odds_ratios
    assert (orr.arm, orr.reference) == ("B", "A")
    assert orr.odds_ratio == pytest.approx(5.0, rel=1e-4)
    se = math.sqrt(1 / 10 + 1 / 30 + 1 / 25 + 1 / 15)
    assert orr.se == pytest.approx(se, rel=1e-3)
    assert orr.ci_low == pytest.approx(5.0 * math.exp(-1.959964 * se), rel=1e-3)
    # the single threshold is the logit of P(rating 1) in the reference arm: log(30/10)
    assert fit.thresholds["1|2"] == pytest.approx(math.log(3), rel=1e-4)


def simulated(seed=11, n_readers=20, per_arm=60):
    """Latent logistic ratings with shifts B +1.0, C -0.7 vs A and a reader effect."""
    rng = np.random.default_rng(seed)
    shift = {"A": 0.0, "B": 1.0, "C": -0.7}
    cuts = np.array([-1.5, -0.5, 0.5, 1.5])
    reads = []
    for r in range(n_readers):
        bias = rng.normal(0, 0.4)
        for arm, beta in shift.items():
            latent = beta + bias + rng.logistic(size=per_arm)
            for i, level in enumerate(np.searchsorted(cuts, latent) + 1):
                reads.append(rated(arm, int(level), reader=f"r{r}", case=f"c{i}"))
    return reads, shift


def test_simulated_shift_is_recovered_with_reader_clustered_errors():
    reads, shift = simulated()
    fit = ordinal_regression(reads, "trust")
    assert fit.cov_type == "cluster" and fit.n_readers == 20 and fit.reason is None
    assert fit.levels == (1, 2, 3, 4, 5)
    by = {o.arm: o for o in fit.odds_ratios}
    assert by["B"].odds_ratio > 1 and by["B"].p_value < 1e-6
    assert by["C"].odds_ratio < 1 and by["C"].p_value < 1e-6
    for arm in ("B", "C"):
        assert by[arm].ci_low < math.exp(shift[arm]) < by[arm].ci_high
    naive = ordinal_regression(reads, "trust", cluster=False)
    # same point estimates, different (cluster-robust) standard errors
    assert naive.odds_ratios[0].odds_ratio == pytest.approx(by["B"].odds_ratio, rel=1e-6)
    assert naive.odds_ratios[0].se != pytest.approx(by["B"].se, rel=1e-3)


def test_default_reference_is_the_first_arm_with_ratings():
    reads, _ = simulated(n_readers=4, per_arm=20)
    reads = [Read(r.reader, r.case, "0") for r in reads[:5]] + reads  # an unrated arm "0"
    fit = ordinal_regression(reads, "trust")
    assert fit.reference == "A" and fit.arms == ("A", "B", "C")
    assert fit.notes == ("arm 0 has no 'trust' ratings and is left out",)
    assert [o.arm for o in fit.odds_ratios] == ["B", "C"]


def test_reference_arm_can_be_chosen():
    reads, _ = simulated(n_readers=6, per_arm=30)
    fit = ordinal_regression(reads, "trust", reference="B")
    assert [o.arm for o in fit.odds_ratios] == ["A", "C"]
    assert all(o.odds_ratio < 1 for o in fit.odds_ratios)


def test_degenerate_inputs_give_a_reason_instead_of_raising():
    one_level = [rated("A", 3, case="c1"), rated("B", 3, case="c2")]
    assert "every 'trust' rating is 3" in ordinal_regression(one_level, "trust").reason
    one_arm = [rated("A", 3), rated("A", 4, case="c2"), Read("r1", "c3", "B")]
    fit = ordinal_regression(one_arm, "trust")
    assert "only arm A" in fit.reason and fit.odds_ratios == ()
    assert fit.notes == ("arm B has no 'trust' ratings and is left out",)
    no_ref = [Read("r1", "c0", "A"), rated("B", 3), rated("C", 4, case="c2")]
    assert "reference arm A has no" in ordinal_regression(no_ref, "trust", reference="A").reason
    assert "no ratings" in ordinal_regression(one_arm, "clarity").reason


def test_separated_arms_give_a_reason():
    reads = ([rated("A", v, case=f"a{i}") for i, v in enumerate([1, 2, 3, 1, 2, 3])]
             + [rated("B", 5, case=f"b{i}") for i in range(6)])
    fit = ordinal_regression(reads, "trust", cluster=False)
    assert fit.odds_ratios == () and "separation" in fit.reason


def test_one_reader_falls_back_to_model_based_errors_with_a_note():
    reads = [rated(arm, v, case=f"{arm}{i}") for arm, values in
             {"A": [1, 2, 2, 3, 4, 2], "B": [2, 3, 4, 4, 3, 5]}.items()
             for i, v in enumerate(values)]
    fit = ordinal_regression(reads, "trust")
    assert fit.cov_type == "nonrobust" and fit.reason is None
    assert any("one reader" in n for n in fit.notes)
    assert fit.odds_ratios[0].odds_ratio > 1


CLM = Path(__file__).parent / "fixtures" / "r_reference" / "clm"


def test_the_proportional_odds_model_equals_ordinal_clm():
    """ordinal 2022.11.16's clm(rating ~ arm, link = "logit") on trust.csv (make_reference.R):
    odds ratios, thresholds and model-based standard errors to 4 decimals."""
    ref = json.loads((CLM / "clm.json").read_text())
    data = pd.read_csv(CLM / "trust.csv")
    reads = [rated(r.arm, int(r.rating), reader=r.reader, case=r.case)
             for r in data.itertuples()]
    fit = ordinal_regression(reads, "trust", cluster=False)
    assert fit.cov_type == "nonrobust"
    for ratio in fit.odds_ratios:
        assert ratio.log_odds_ratio == pytest.approx(ref["estimate"][f"arm{ratio.arm}"], abs=1e-4)
        assert ratio.se == pytest.approx(ref["se"][f"arm{ratio.arm}"], abs=1e-4)
    assert [o.arm for o in fit.odds_ratios] == ["B", "C"]
    for name, value in fit.thresholds.items():
        assert value == pytest.approx(ref["estimate"][name], abs=1e-4)
    assert len(fit.thresholds) == 4
