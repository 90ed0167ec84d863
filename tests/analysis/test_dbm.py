"""DBM pseudovalue analysis: published JAFROC 4.2.1 output and the OR equivalence.

JAFROC works in single precision (its Van Dyke AUCs differ from OR-DBM's in the 8th decimal),
so numbers it prints with 8 decimals are compared at a relative 5e-6; numbers printed with at
most 5 decimals (F, df, p, differences, CIs) are compared to the printed digits.
"""

import re

import numpy as np
import pytest

from analysis.stats.data import MRMCInputError
from analysis.stats.dbm import dbm_analysis, pseudovalues
from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import or_analysis
from tests.analysis.reference_data import shared_path

JAFROC = "vandyke/reference_outputs/JAFROC-4.2.1_VanDyke_DBM.txt"
ORDBM = "vandyke/reference_outputs/ORDBM-MRMC-2.5_VanDyke_OR_jackknife.txt"
N = r"(-?\d+\.\d+|-?\d+)"
CI = r"\(?\s*" + N + r"\s*,\s*" + N + r"\s*\)?"


def assert_printed(value, printed):
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    tolerance = 0.5 * 10**-decimals + 1e-12
    if decimals >= 8:
        tolerance = max(tolerance, 5e-6 * abs(float(printed)))
    assert abs(value - float(printed)) <= tolerance, (value, printed)


def rows(text, pattern):
    found = re.findall(pattern, text, flags=re.MULTILINE)
    assert found, f"pattern not found in the report: {pattern}"
    return found


@pytest.fixture(scope="module")
def report():
    text = shared_path(JAFROC).read_text(errors="replace")
    head, rest = text.split("Analysis 1: Random Readers and Random Cases")
    a1, rest = rest.split("Analysis 2: Fixed Readers and Random Cases")
    a2, a3 = rest.split("Analysis 3: Random Readers and Fixed Cases")
    return {"head": head, "rrrc": a1, "frrc": a2, "rrfc": a3}


@pytest.fixture(scope="module")
def van_dyke():
    return read_long_csv(shared_path("vandyke/RocData.csv"))


@pytest.fixture(scope="module")
def dbm(van_dyke):
    return dbm_analysis(van_dyke)


def test_three_way_anova_of_pseudovalues_matches_jafroc(report, dbm):
    ms = dbm.mean_squares
    ours = {"T": ms.ms_t, "R": ms.ms_r, "C": ms.ms_c, "TR": ms.ms_tr, "TC": ms.ms_tc,
            "RC": ms.ms_rc, "TRC": ms.ms_trc}
    found = rows(report["head"], r"^\s+(T|R|C|TR|TC|RC|TRC)\s+" + N + r"\s+(\d+)\s+" + N
                 + r"\s*$")
    assert {f[0] for f in found} == set(ours)
    for source, _ss, _df, mean_square in found:
        assert_printed(ours[source], mean_square)
    per_arm = report["head"].split("READER X CASE ANOVAs")[1]
    for source, key in (("R", "ms_r"), ("C", "ms_c"), ("RC", "ms_rc")):
        (ms0, ms1), = rows(per_arm, r"^\s+" + source + r"\s+\d+\s+" + N + r"\s+" + N + r"\s*$")
        assert_printed(ms.by_arm[0][key], ms0)
        assert_printed(ms.by_arm[1][key], ms1)


def test_dbm_variance_components_match_or_dbm_to_printed_digits(dbm):
    text = shared_path(ORDBM).read_text().split("Corresponding DBM")[1].split("=====")[0]
    vc = dbm.components
    ours = {"Var(R)": vc.var_r, "Var(C)": vc.var_c, "Var(T*R)": vc.var_tr,
            "Var(T*C)": vc.var_tc, "Var(R*C)": vc.var_rc, "Var(T*R*C) + Var(Error)": vc.var_error}
    found = rows(text, r"^\s*(Var\(.*?\)(?: \+ Var\(Error\))?)\s+" + N + r"\s*$")
    assert len(found) == 6
    for name, printed in found:
        decimals = len(printed.split(".")[1])
        assert abs(ours[name] - float(printed)) <= 0.5 * 10**-decimals + 1e-12, name


def test_rrrc_matches_jafroc(report, dbm):
    text, a = report["rrrc"], dbm.analyses["rrrc"]
    (_ms, f_value, p), = rows(text, r"^\s*Treatment\s+1\s+" + N + r"\s+" + N + r"\s+" + N)
    (ddf, error), = rows(text, r"^\s*Error\s+" + N + r"\s+" + N)
    for ours, printed in ((a.global_test.statistic, f_value), (a.global_test.p_value, p),
                          (a.global_test.df2, ddf), (a.global_test.error_term, error)):
        assert_printed(ours, printed)
    (est, se, df, t, p, lo, hi), = rows(text, r"^0\s+- 1\s+" + r"\s+".join([N] * 5) + r"\s+" + CI)
    c = a.comparisons[0]
    for ours, printed in ((c.estimate, est), (c.se, se), (c.df, df), (c.statistic, t),
                          (c.p_value, p), (c.ci_low, lo), (c.ci_high, hi)):
        assert_printed(ours, printed)
    arms = rows(text, r"^\s+([01])\s+" + N + r"\s+" + N + r"\s+" + N + r"\s+" + CI)
    assert len(arms) == 2
    for arm, area, se, df, lo, hi in arms:
        e = a.arms[int(arm)]
        for ours, printed in ((e.estimate, area), (e.se, se), (e.df, df), (e.ci_low, lo),
                              (e.ci_high, hi)):
            assert_printed(ours, printed)


def test_frrc_matches_jafroc_including_each_readers_difference(report, dbm):
    text, a = report["frrc"], dbm.analyses["frrc"]
    (_ms, f_value, p), = rows(text, r"^\s*Treatment\s+1\s+" + N + r"\s+" + N + r"\s+" + N)
    assert_printed(a.global_test.statistic, f_value)
    assert_printed(a.global_test.p_value, p)
    assert a.global_test.df2 == 113
    (est, se, df, t, p, lo, hi), = rows(text, r"^0\s+- 1\s+" + r"\s+".join([N] * 5) + r"\s+" + CI)
    c = a.comparisons[0]
    for ours, printed in ((c.estimate, est), (c.se, se), (c.df, df), (c.statistic, t),
                          (c.p_value, p), (c.ci_low, lo), (c.ci_high, hi)):
        assert_printed(ours, printed)
    arms = rows(text, r"^\s+([01])\s+" + r"\s+".join([N] * 3) + r"\s+" + CI)
    assert len(arms) == 2
    for arm, area, se, df, lo, hi in arms:
        e = a.arms[int(arm)]
        for ours, printed in ((e.estimate, area), (e.se, se), (e.ci_low, lo), (e.ci_high, hi)):
            assert_printed(ours, printed)
    readers = rows(text, r"^([0-4])\s+0\s+-1\s+" + r"\s+".join([N] * 5) + r"\s+" + CI)
    assert len(readers) == 5
    for reader, est, se, df, t, p, lo, hi in readers:
        c = a.reader_comparisons[int(reader)]
        for ours, printed in ((c.estimate, est), (c.se, se), (c.df, df), (c.statistic, t),
                              (c.p_value, p), (c.ci_low, lo), (c.ci_high, hi)):
            assert_printed(ours, printed)


def test_rrfc_matches_jafroc(report, dbm):
    text, a = report["rrfc"], dbm.analyses["rrfc"]
    (_ms, f_value, p), = rows(text, r"^\s*Treatment\s+1\s+" + N + r"\s+" + N + r"\s+" + N)
    assert_printed(a.global_test.statistic, f_value)
    assert_printed(a.global_test.p_value, p)
    (est, se, df, t, p, lo, hi), = rows(text, r"^0\s+- 1\s+" + r"\s+".join([N] * 5) + r"\s+" + CI)
    c = a.comparisons[0]
    for ours, printed in ((c.estimate, est), (c.se, se), (c.df, df), (c.statistic, t),
                          (c.p_value, p), (c.ci_low, lo), (c.ci_high, hi)):
        assert_printed(ours, printed)
    arms = rows(text, r"^\s+([01])\s+" + r"\s+".join([N] * 3) + r"\s+" + CI)
    assert len(arms) == 2
    for arm, area, se, df, lo, hi in arms:
        e = a.arms[int(arm)]
        for ours, printed in ((e.estimate, area), (e.se, se), (e.df, df), (e.ci_low, lo),
                              (e.ci_high, hi)):
            assert_printed(ours, printed)


@pytest.mark.parametrize("name", ["vandyke/RocData.csv", "mrmcaov_datasets/Franken.csv",
                                  "mrmcaov_datasets/Kundel.csv"])
def test_dbm_rrrc_equals_or_rrrc_with_jackknife_covariance(name):
    data = read_long_csv(shared_path(name))
    if data.design != "crossed":
        with pytest.raises(MRMCInputError, match="DBM needs every reader"):
            dbm_analysis(data)
        return
    dbm = dbm_analysis(data).analyses["rrrc"]
    oro = or_analysis(data, cov="jackknife").analysis("rrrc")
    assert dbm.global_test.statistic == pytest.approx(oro.global_test.statistic, rel=1e-9)
    assert dbm.global_test.df2 == pytest.approx(oro.global_test.df2, rel=1e-9)
    assert dbm.global_test.p_value == pytest.approx(oro.global_test.p_value, rel=1e-9)
    for d, o in zip(dbm.comparisons + dbm.arms, oro.comparisons + oro.arms, strict=True):
        assert (d.ci_low, d.ci_high) == pytest.approx((o.ci_low, o.ci_high), rel=1e-9)


def test_pseudovalues_average_to_each_readers_auc(van_dyke):
    y, table = pseudovalues(van_dyke)
    assert y.shape == (2, 5, 114)
    np.testing.assert_allclose(y.mean(axis=2), table, atol=1e-12)


def test_sensitivity_pseudovalues_use_only_diseased_cases(van_dyke):
    y, table = pseudovalues(van_dyke, "sensitivity", threshold=3)
    assert y.shape == (2, 5, van_dyke.n_diseased)
    np.testing.assert_allclose(y.mean(axis=2), table, atol=1e-12)
