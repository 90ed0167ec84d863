"""Obuchowski-Rockette analysis against the published OR-DBM MRMC 2.5 report of Van Dyke.

Every number is compared to the digits the report prints (|ours - printed| <= half a unit in
the last printed place). The report's treatments 1, 2 and readers 1-5 are our 0, 1 and 0-4.
"""

import math
import re

import numpy as np
import pytest

from analysis.stats.data import MRMCData, MRMCInputError
from analysis.stats.inference import holm
from analysis.stats.io import read_imrmc, read_long_csv
from analysis.stats.mrmc import (
    CovarianceComponents,
    MeanSquares,
    _rrrc,
    or_analysis,
)
from tests.analysis.reference_data import shared_path

REPORT = "vandyke/reference_outputs/ORDBM-MRMC-2.5_VanDyke_OR_jackknife.txt"
N = r"(-?\d+\.\d+|-?\d+)"
CI = r"\(\s*" + N + r"\s*,\s*" + N + r"\s*\)"


def assert_printed(value, printed):
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    assert abs(value - float(printed)) <= 0.5 * 10**-decimals + 1e-12, (value, printed)


def rows(text, pattern):
    found = re.findall(pattern, text, flags=re.MULTILINE)
    assert found, f"pattern not found in the report: {pattern}"
    return found


@pytest.fixture(scope="module")
def report():
    text = shared_path(REPORT).read_text()
    head, rest = text.split("Analysis 1 (OR Analysis)")
    a1, rest = rest.split("Analysis 2 (OR Analysis)")
    a2, a3 = rest.split("Analysis 3 (OR Analysis)")
    return {"head": head, "rrrc": a1, "frrc": a2, "rrfc": a3}


@pytest.fixture(scope="module")
def van_dyke():
    return or_analysis(read_long_csv(shared_path("vandyke/RocData.csv")))


def test_reader_aucs_and_arm_means_match_the_report(report, van_dyke):
    head = report["head"]
    table = head.split("TREATMENT x READER AUC ESTIMATES")[1].split("TREATMENT AUC MEANS")[0]
    printed = rows(table, r"^\s+(\d)\s+" + N + r"\s+" + N + r"\s*$")
    assert len(printed) == 5
    for reader, auc0, auc1 in printed:
        assert_printed(van_dyke.fom_table[0, int(reader) - 1], auc0)
        assert_printed(van_dyke.fom_table[1, int(reader) - 1], auc1)
    means = head.split("TREATMENT AUC MEANS")[1].split("MEAN DIFFERENCES")[0]
    for arm, mean in rows(means, r"^\s+([12])\s+" + N + r"\s*$"):
        assert_printed(van_dyke.arm_means[int(arm) - 1], mean)


def test_anova_mean_squares_match_the_report(report, van_dyke):
    ms = van_dyke.mean_squares
    ours = {"T": ms.ms_t, "R": ms.ms_r, "T*R": ms.ms_tr}
    anova = report["head"].split("TREATMENT X READER ANOVA")[1].split("READER ANOVAs")[0]
    found = rows(anova, r"^\s+(T|R|T\*R)\s+" + N + r"\s+" + N + r"\s+" + N + r"\s*$")
    assert len(found) == 3
    for source, _ss, _df, mean_square in found:
        assert_printed(ours[source], mean_square)
    (ms1, ms2), = rows(report["head"], r"^\s+R\s+4\s+" + N + r"\s+" + N + r"\s*$")
    assert_printed(ms.ms_r_by_arm[0], ms1)
    assert_printed(ms.ms_r_by_arm[1], ms2)


def test_variance_components_and_correlations_match_the_report(report, van_dyke):
    block = report["head"].split("Obuchowski-Rockette variance component")[1]
    block = block.split("Corresponding DBM")[0]
    vc = van_dyke.components
    ours = {"Var(R)": (vc.var_r, None), "Var(T*R)": (vc.var_tr, None),
            "COV1": (vc.cov1, vc.corr1), "COV2": (vc.cov2, vc.corr2),
            "COV3": (vc.cov3, vc.corr3), "Var(Error)": (vc.var_error, None)}
    found = rows(block, r"^\s*(Var\(R\)|Var\(T\*R\)|COV1|COV2|COV3|Var\(Error\))\s+" + N
                 + r"(?:\s+" + N + r")?\s*$")
    assert len(found) == 6
    for name, estimate, correlation in found:
        assert_printed(ours[name][0], estimate)
        if correlation:
            assert_printed(ours[name][1], correlation)


def test_rrrc_test_difference_and_single_arm_intervals_match_the_report(report, van_dyke):
    text = report["rrrc"]
    result = van_dyke.analysis("rrrc")
    g = result.global_test
    (ms_t, f_value, p), = rows(text, r"^\s*Treatment\s+1\s+" + N + r"\s+" + N + r"\s+" + N)
    (ddf, error), = rows(text, r"^\s*Error term\s+" + N + r"\s+" + N)
    for ours, printed in ((g.statistic, f_value), (g.p_value, p), (g.df2, ddf),
                          (g.error_term, error), (van_dyke.mean_squares.ms_t, ms_t)):
        assert_printed(ours, printed)
    assert not g.clamped
    diff = result.comparisons[0]
    (est, se, df, t, p, lo, hi), = rows(
        text, r"^\s+1 - 2\s+" + r"\s+".join([N] * 5) + r"\s+" + CI)
    for ours, printed in ((diff.estimate, est), (diff.se, se), (diff.df, df),
                          (diff.statistic, t), (diff.p_value, p), (diff.ci_low, lo),
                          (diff.ci_high, hi)):
        assert_printed(ours, printed)
    arms = rows(text, r"^\s+([12])\s+" + r"\s+".join([N] * 3) + r"\s+" + CI + r"\s+" + N)
    assert len(arms) == 2
    for arm, auc, se, df, lo, hi, cov2 in arms:
        e = result.arms[int(arm) - 1]
        for ours, printed in ((e.estimate, auc), (e.se, se), (e.df, df), (e.ci_low, lo),
                              (e.ci_high, hi), (e.terms["cov2"], cov2)):
            assert_printed(ours, printed)


def test_frrc_chi_square_differences_and_per_reader_results_match_the_report(report,
                                                                            van_dyke):
    pooled, per_reader = report["frrc"].split("d) Single-reader")
    result = van_dyke.analysis("frrc")
    (x2, p), = rows(pooled, r"^\s+" + N + r"\s+1\s+" + N + r"\s*$")
    assert_printed(result.global_test.statistic, x2)
    assert_printed(result.global_test.p_value, p)
    assert result.global_test.statistic_name == "X2" and math.isinf(result.global_test.df2)
    diff = result.comparisons[0]
    (est, se, z, p, lo, hi), = rows(pooled, r"^\s+1 - 2\s+" + r"\s+".join([N] * 4) + r"\s+" + CI)
    for ours, printed in ((diff.estimate, est), (diff.se, se), (diff.statistic, z),
                          (diff.p_value, p), (diff.ci_low, lo), (diff.ci_high, hi)):
        assert_printed(ours, printed)
    for arm, auc, se, lo, hi in rows(pooled, r"^\s+([12])\s+" + N + r"\s+" + N + r"\s+" + CI):
        e = result.arms[int(arm) - 1]
        for ours, printed in ((e.estimate, auc), (e.se, se), (e.ci_low, lo), (e.ci_high, hi)):
            assert_printed(ours, printed)
    cc = van_dyke.covariance_components
    for arm, var, cov2 in rows(pooled, r"^\s+([12])\s+" + N + r"\s+" + N + r"\s*$"):
        assert_printed(cc.var_error_by_arm[int(arm) - 1], var)
        assert_printed(cc.cov2_by_arm[int(arm) - 1], cov2)
    readers = rows(per_reader, r"^\s+(\d)\s+1 - 2\s+" + r"\s+".join([N] * 4) + r"\s+" + CI)
    assert len(readers) == 5
    for reader, est, se, z, p, lo, hi in readers:
        c = result.reader_comparisons[int(reader) - 1]
        assert c.reader == str(int(reader) - 1)
        for ours, printed in ((c.estimate, est), (c.se, se), (c.statistic, z),
                              (c.p_value, p), (c.ci_low, lo), (c.ci_high, hi)):
            assert_printed(ours, printed)
    for reader, var, cov1 in rows(per_reader, r"^\s+(\d)\s+" + N + r"\s+" + N + r"\s*$"):
        assert_printed(cc.var_error_by_reader[int(reader) - 1], var)
        assert_printed(cc.cov1_by_reader[int(reader) - 1], cov1)


def test_rrfc_test_difference_and_single_arm_intervals_match_the_report(report, van_dyke):
    text = report["rrfc"]
    result = van_dyke.analysis("rrfc")
    (_ms_t, f_value, p), = rows(text, r"^\s*Treatment\s+1\s+" + N + r"\s+" + N + r"\s+" + N)
    assert_printed(result.global_test.statistic, f_value)
    assert_printed(result.global_test.p_value, p)
    assert result.global_test.df2 == 4
    diff = result.comparisons[0]
    (est, se, df, t, p, lo, hi), = rows(
        text, r"^\s+1 - 2\s+" + r"\s+".join([N] * 5) + r"\s+" + CI)
    for ours, printed in ((diff.estimate, est), (diff.se, se), (diff.df, df),
                          (diff.statistic, t), (diff.p_value, p), (diff.ci_low, lo),
                          (diff.ci_high, hi)):
        assert_printed(ours, printed)
    arms = rows(text, r"^\s+([12])\s+" + r"\s+".join([N] * 4) + r"\s+" + CI)
    assert len(arms) == 2
    for arm, auc, ms_r, se, df, lo, hi in arms:
        e = result.arms[int(arm) - 1]
        for ours, printed in ((e.estimate, auc), (e.terms["ms_r"], ms_r), (e.se, se),
                              (e.df, df), (e.ci_low, lo), (e.ci_high, hi)):
            assert_printed(ours, printed)


def test_imrmc_input_gives_the_same_analysis_as_csv(van_dyke):
    other = or_analysis(read_imrmc(shared_path("vandyke/RocData.imrmc")))
    np.testing.assert_array_equal(other.covariance, van_dyke.covariance)
    assert other.analysis("rrrc").global_test == van_dyke.analysis("rrrc").global_test


def test_differences_are_labelled_earlier_arm_minus_later_arm(van_dyke):
    diff = van_dyke.analysis("rrrc").comparisons[0]
    assert (diff.minuend, diff.subtrahend, diff.label) == ("0", "1", "treatment 0 - treatment 1")
    assert diff.estimate == pytest.approx(van_dyke.arm_means[0] - van_dyke.arm_means[1])


def test_two_arm_global_f_is_the_square_of_the_pairwise_t(van_dyke):
    for name in ("rrrc", "rrfc"):
        a = van_dyke.analysis(name)
        assert a.global_test.statistic == pytest.approx(a.comparisons[0].statistic ** 2)
        assert a.global_test.p_value == pytest.approx(a.comparisons[0].p_value)


def test_negative_cov2_minus_cov3_is_clamped_to_zero():
    ms = MeanSquares(0.01, 0.02, 0.004, (0.02, 0.02, 0.02), 2, 4, 8)
    cc = CovarianceComponents(0.001, 0.0004, 0.0002, 0.0003, (0.001,) * 3, (0.0002,) * 3,
                              (0.001,) * 5, (0.0004,) * 5)
    theta = np.full((3, 5), 0.8)
    result = _rrrc(ms, cc, theta, ("a", "b", "c"), 5, 0.95)
    g = result.global_test
    assert g.clamped and g.error_term == 0.004  # MS(T*R) + 5 * max(-0.0001, 0)
    assert g.df2 == pytest.approx(8)  # ddf falls back to (t-1)(r-1)
    assert g.statistic == pytest.approx(0.01 / 0.004)


def test_three_arms_get_a_global_test_and_holm_adjusted_pairwise_differences():
    result = or_analysis(read_long_csv(shared_path("mrmcaov_datasets/Kundel.csv")))
    for name in ("rrrc", "frrc", "rrfc"):
        a = result.analysis(name)
        assert a.global_test.df1 == 2 and len(a.comparisons) == 3
        assert [(c.minuend, c.subtrahend) for c in a.comparisons] == [
            ("1.0", "2.0"), ("1.0", "3.0"), ("2.0", "3.0")]
        assert len({(c.se, c.df) for c in a.comparisons}) == 1  # one error term and ddf
        if name != "frrc":
            assert a.comparisons[0].df == a.global_test.df2
        p = sorted(c.p_value for c in a.comparisons)
        by_hand = [min(1, 3 * p[0])]
        by_hand.append(max(by_hand[0], min(1, 2 * p[1])))
        by_hand.append(max(by_hand[1], min(1, p[2])))
        assert sorted(c.p_holm for c in a.comparisons) == pytest.approx(by_hand)


def test_holm_adjustment_of_a_known_family():
    # p = (0.01, 0.04, 0.03): 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 0.04)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_franken_and_kundel_give_sane_results_with_every_covariance_method():
    for name in ("Franken", "Kundel"):
        data = read_long_csv(shared_path(f"mrmcaov_datasets/{name}.csv"))
        for cov in ("jackknife", "delong", "bootstrap"):
            result = or_analysis(data, cov=cov, bootstrap_samples=200)
            assert np.all((result.fom_table > 0) & (result.fom_table < 1))
            for a in result.analyses.values():
                ps = [a.global_test.p_value] + [c.p_value for c in a.comparisons]
                ps += [c.p_holm for c in a.comparisons]
                assert all(0 <= p <= 1 for p in ps), (name, cov, a.name)
                assert all(e.ci_low < e.estimate < e.ci_high for e in a.arms)


def test_cases_nested_within_readers_reduce_rrrc_to_the_treatment_by_reader_anova(van_dyke):
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    split = or_analysis(read_long_csv(path, case_column="case2"))
    vc = split.components
    assert split.design == "cases within readers" and vc.cov2 == 0 and vc.cov3 == 0
    # MRMCaov's jackknife runs over all 570 cases of the study, so (N-1)/N replaces (m-1)/m
    rescale = (569 / 570) / (113 / 114)
    assert vc.var_error == pytest.approx(rescale * van_dyke.components.var_error, rel=1e-12)
    assert vc.cov1 == pytest.approx(rescale * van_dyke.components.cov1, rel=1e-12)
    rrrc, rrfc = split.analysis("rrrc").global_test, split.analysis("rrfc").global_test
    assert (rrrc.statistic, rrrc.df2) == pytest.approx((rrfc.statistic, rrfc.df2))


def test_cases_nested_within_treatments_have_no_cross_treatment_covariance(van_dyke):
    path = shared_path("mrmcaov_datasets/VanDyke.csv")
    split = or_analysis(read_long_csv(path, case_column="case3"))
    vc = split.components
    assert split.design == "cases within treatments" and vc.cov1 == 0 and vc.cov3 == 0
    # MRMCaov's jackknife runs over all 228 cases of the study, so (N-1)/N replaces (m-1)/m
    rescale = (227 / 228) / (113 / 114)
    assert vc.cov2 == pytest.approx(rescale * van_dyke.components.cov2, rel=1e-12)
    assert split.analysis("rrrc").global_test.error_term == pytest.approx(
        van_dyke.mean_squares.ms_tr + 5 * vc.cov2)


def test_binary_figures_of_merit_are_counted_from_thresholded_ratings():
    truth = np.array([0, 0, 0, 1, 1, 1])
    ratings = np.array([[[1, 3, 2, 4, 5, 2], [2, 2, 4, 3, 3, 5.0]],
                        [[1, 1, 1, 5, 4, 4], [3, 1, 2, 5, 1, 4.0]]])
    data = MRMCData.from_arrays(ratings, truth)
    sens = or_analysis(data, "sensitivity", threshold=3).fom_table
    spec = or_analysis(data, "specificity", threshold=3).fom_table
    acc = or_analysis(data, "accuracy", threshold=3).fom_table
    np.testing.assert_allclose(sens, [[2 / 3, 1], [1, 2 / 3]])
    np.testing.assert_allclose(spec, [[2 / 3, 2 / 3], [1, 2 / 3]])
    np.testing.assert_allclose(acc, [[4 / 6, 5 / 6], [1, 4 / 6]])


def test_a_diagnosis_column_is_used_when_no_threshold_is_given():
    truth = np.array([0, 0, 1, 1])
    ratings = np.ones((2, 2, 4))
    calls = np.array([[[0, 1, 1, 1], [0, 0, 1, 0]], [[0, 0, 1, 1], [1, 0, 1, 1]]], float)
    data = MRMCData.from_arrays(ratings, truth, diagnosis=calls)
    np.testing.assert_allclose(or_analysis(data, "sensitivity").fom_table, [[1, 0.5], [1, 1]])
    with pytest.raises(MRMCInputError, match="needs a threshold"):
        or_analysis(MRMCData.from_arrays(ratings, truth), "sensitivity")


def test_an_analysis_needs_two_readers():
    data = MRMCData.from_arrays(np.arange(8.0).reshape(2, 1, 4), [0, 0, 1, 1])
    with pytest.raises(MRMCInputError, match="at least 2 readers"):
        or_analysis(data)


def test_result_dictionary_is_json_ready_with_every_analysis(van_dyke):
    import json

    data = json.loads(json.dumps(van_dyke.to_dict(), allow_nan=False))
    assert set(data["analyses"]) == {"rrrc", "frrc", "rrfc"}
    assert data["analyses"]["frrc"]["global_test"]["df2"] is None  # chi-square: infinite ddf
    assert len(data["covariance"]["matrix"]) == 10
    assert data["components"]["cov2"] == pytest.approx(van_dyke.components.cov2)
