"""Power for t >= 2 arms (Hillis, Obuchowski & Berbaum 2011; Hillis 2007 ddf) and the
sample-size searches, on the Van Dyke pilot and on assumed components."""

import math

import pytest
from scipy import stats

from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import VarianceComponents, or_analysis
from analysis.stats.power import (
    arms_power,
    cases_for_power,
    cases_needed,
    plan,
    power,
    readers_needed,
)
from tests.analysis.reference_data import shared_path


@pytest.fixture(scope="module")
def pilot():
    return or_analysis(read_long_csv(shared_path("vandyke/RocData.csv")))


def _components(**changes):
    values = {"var_r": 0.0015, "var_tr": 0.0002, "cov1": 0.00035, "cov2": 0.00034,
              "cov3": 0.00024, "var_error": 0.0008, "corr1": 0, "corr2": 0, "corr3": 0,
              "n_cases": 114, "n_readers": 5, "n_treatments": 3}
    return VarianceComponents(**{**values, **changes})


@pytest.mark.parametrize("analysis", ["rrrc", "frrc", "rrfc"])
@pytest.mark.parametrize(("readers", "cases"), [(6, 111), (3, 40), (10, 500)])
def test_two_arm_aucs_give_exactly_the_two_arm_result(pilot, analysis, readers, cases):
    aucs = (0.81, 0.87)
    two = power(pilot, readers, cases, aucs[1] - aucs[0], analysis=analysis)
    t_arms = arms_power(pilot, readers, cases, aucs, analysis=analysis)
    for name in ("power", "noncentrality", "df1", "df2", "critical_value", "effect"):
        assert getattr(t_arms, name) == getattr(two, name), name


def test_observed_arm_aucs_reproduce_rjafroc_power_and_cases(pilot):
    aucs = list(pilot.arm_means)  # the observed effect RJafroc's test uses
    assert arms_power(pilot, 6, 111, aucs).power == pytest.approx(0.5526116, abs=5e-8)
    found = cases_needed(pilot, 6, aucs, target=0.8)
    two_arm = cases_for_power(pilot, 6, aucs[1] - aucs[0], target=0.8)
    assert found.n_cases == two_arm.n_cases == 251
    assert found.power == two_arm.power


@pytest.mark.parametrize("analysis", ["rrrc", "frrc", "rrfc"])
def test_three_arms_match_a_hand_computation(analysis):
    vc = _components()
    r, c, aucs, alpha = 5, 150, (0.80, 0.85, 0.88), 0.05
    s = vc.n_cases / c
    mean = sum(aucs) / 3
    spread = sum((a - mean) ** 2 for a in aucs)
    diff = max(vc.cov2 - vc.cov3, 0)
    var_tr = max(vc.var_tr, 0)
    if analysis == "rrrc":
        denom = var_tr + s * (vc.var_error - vc.cov1 + (r - 1) * diff)
        ms_tr = var_tr + s * (vc.var_error - vc.cov1 - diff)
        ddf = denom**2 / (ms_tr**2 / (2 * (r - 1)))
    elif analysis == "frrc":
        denom = s * (vc.var_error - vc.cov1 + (r - 1) * diff)
        ddf = math.inf
    else:
        denom = var_tr + s * (vc.var_error - vc.cov1 - diff)
        ddf = 2 * (r - 1)
    ncp = r * spread / denom
    if math.isinf(ddf):
        by_hand = stats.ncx2.sf(stats.chi2.isf(alpha, 2), 2, ncp)
    else:
        by_hand = stats.ncf.sf(stats.f.isf(alpha, 2, ddf), 2, ddf, ncp)
    result = arms_power(vc, r, c, aucs, alpha=alpha, analysis=analysis)
    assert result.df1 == 2
    assert result.noncentrality == pytest.approx(ncp, rel=1e-12)
    assert result.df2 == pytest.approx(ddf, rel=1e-12)
    assert result.power == pytest.approx(by_hand, rel=1e-10)
    assert result.aucs == aucs


def test_arm_order_does_not_matter_and_equal_aucs_give_alpha():
    vc = _components()
    a = arms_power(vc, 5, 100, (0.8, 0.85, 0.9)).power
    assert arms_power(vc, 5, 100, (0.9, 0.8, 0.85)).power == pytest.approx(a, rel=1e-12)
    assert arms_power(vc, 5, 100, (0.8, 0.8, 0.8), alpha=0.05).power == pytest.approx(0.05)


def test_a_third_arm_at_the_mean_lowers_power():
    """Same spread of AUCs spread over one more numerator df: less power."""
    vc = _components()
    two = arms_power(vc, 5, 100, (0.80, 0.90)).power
    three = arms_power(vc, 5, 100, (0.80, 0.85, 0.90)).power
    assert three < two


@pytest.mark.parametrize("analysis", ["rrrc", "frrc", "rrfc"])
@pytest.mark.parametrize("target", [0.7, 0.8, 0.9])
def test_cases_needed_is_the_smallest_count_reaching_the_target(analysis, target):
    vc, aucs = _components(), (0.80, 0.84, 0.88)
    found = cases_needed(vc, 8, aucs, target=target, analysis=analysis)
    assert found.power >= target
    assert arms_power(vc, 8, found.n_cases - 1, aucs, analysis=analysis).power < target


@pytest.mark.parametrize("analysis", ["rrrc", "frrc", "rrfc"])
@pytest.mark.parametrize("target", [0.7, 0.8, 0.9])
def test_readers_needed_is_the_smallest_count_reaching_the_target(analysis, target):
    vc, aucs = _components(), (0.80, 0.82, 0.84)
    found = readers_needed(vc, 200, aucs, target=target, analysis=analysis)
    assert found.power >= target and found.n_cases == 200 and found.n_readers > 2
    assert arms_power(vc, found.n_readers - 1, 200, aucs, analysis=analysis).power < target


def test_readers_needed_says_when_the_target_is_out_of_reach():
    vc = _components(cov2=0.0006, cov3=0.0001)  # large Cov2 - Cov3 caps power in readers
    with pytest.raises(ValueError, match="not reachable with 20 cases: even 1000 readers"):
        readers_needed(vc, 20, (0.80, 0.81, 0.82), target=0.9)


def test_cases_needed_says_when_the_target_is_out_of_reach():
    vc = _components(var_tr=0.002)  # large Var(T*R) caps power in cases
    with pytest.raises(ValueError, match="not reachable with 3 readers"):
        cases_needed(vc, 3, (0.80, 0.81, 0.82), target=0.9)


def test_bad_input_is_refused_with_the_reason():
    vc = _components()
    with pytest.raises(ValueError, match="at least 2 arms"):
        arms_power(vc, 5, 100, (0.8,))
    with pytest.raises(ValueError, match="at least 2 readers"):
        arms_power(vc, 1, 100, (0.8, 0.9))
    with pytest.raises(ValueError, match="non-positive error term"):
        arms_power(_components(var_tr=0, var_error=0.0003, cov1=0.0003, cov2=0.0001,
                               cov3=0.0001), 5, 100, (0.8, 0.9), analysis="frrc")


def test_plan_gives_the_table_and_each_search_row():
    vc = _components(var_tr=0.002)
    result = plan(vc, (0.80, 0.85, 0.90), readers=[3, 6], cases=[100, 200], target=0.8,
                  analyses=("rrrc", "frrc"))
    assert [(r.analysis, r.n_readers, r.n_cases) for r in result.table] == [
        ("rrrc", 3, 100), ("rrrc", 3, 200), ("rrrc", 6, 100), ("rrrc", 6, 200),
        ("frrc", 3, 100), ("frrc", 3, 200), ("frrc", 6, 100), ("frrc", 6, 200)]
    for row in result.table:
        expected = arms_power(vc, row.n_readers, row.n_cases, (0.80, 0.85, 0.90),
                              analysis=row.analysis)
        assert row == expected
    assert len(result.cases_needed) == 4 and len(result.readers_needed) == 4
    # with Var(T*R) this large, 3 random readers cannot reach 80% however many cases they read
    unreachable, *found = result.cases_needed
    assert (unreachable.analysis, unreachable.n_given, unreachable.result) == ("rrrc", 3, None)
    assert "not reachable with 3 readers" in unreachable.problem
    for n in [*found, *result.readers_needed]:
        expected = (cases_needed(vc, n.n_given, result.aucs, target=0.8, analysis=n.analysis)
                    if n.given == "readers" else
                    readers_needed(vc, n.n_given, result.aucs, target=0.8, analysis=n.analysis))
        assert n.result == expected and not n.problem
    data = result.to_dict()
    assert data["power"][4]["df2"] is None and data["target_power"] == 0.8
