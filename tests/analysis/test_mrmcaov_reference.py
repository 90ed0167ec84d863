"""The OR analysis against MRMCaov 0.3.0 itself, on every design it accepts.

``fixtures/r_reference/mrmcaov/mrmcaov.json`` holds MRMCaov's ``summary(mrmc(...))`` on the shared
reference data (Franken and VanDyke fully crossed, VanDyke's cases nested within readers and
within treatments, Kundel partially paired) for the empirical, binormal and partial AUCs and
binary sensitivity and specificity, with every covariance method MRMCaov accepts for each, under
RRRC, FRRC and RRFC (``make_reference.R`` says how it was made). Each entry is one test here.
"""

import functools
import json
import math
from pathlib import Path

import pytest

from analysis.stats.data import MRMCInputError
from analysis.stats.fom_curves import partial_range
from analysis.stats.inference import display_ids
from analysis.stats.io import read_long_csv
from analysis.stats.mrmc import or_analysis
from tests.analysis.reference_data import shared_path

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "r_reference" / "mrmcaov" / "mrmcaov.json").read_text()
)
RESULTS = REFERENCE["results"]
SETS = {
    "franken": ("Franken", "case"),
    "vandyke": ("VanDyke", "case"),
    "vandyke_case2": ("VanDyke", "case2"),
    "vandyke_case3": ("VanDyke", "case3"),
    "kundel": ("Kundel", "case"),
}
FOMS = {
    "empirical_auc": ("auc", {}),
    "binormal_auc": ("binormal_auc", {}),
    "partial_auc_specificity": ("partial_auc", {"partial": ((0.7, 1), "specificity")}),
    "partial_auc_sensitivity": ("partial_auc", {"partial": ((0.7, 1), "sensitivity")}),
    "sensitivity": ("sensitivity", {"threshold": 3}),
    "specificity": ("specificity", {"threshold": 3}),
}
COVS = {"jackknife": "jackknife", "unbiased": "unbiased", "DeLong": "delong"}
# MRMCaov fits the binormal curve with trust(), which stops about 1e-6 (relative) short of the
# maximum of the likelihood that our Newton-polished fit reaches: AUCs agree to ~1e-7, the
# quantities built from small differences of leave-one-out fits to ~1e-3.
REL = {"binormal_auc": 2e-3}
ABS = 1e-12


@functools.cache
def analysis(set_name: str, metric: str, cov: str):
    file, case_column = SETS[set_name]
    data = read_long_csv(shared_path(f"mrmcaov_datasets/{file}.csv"), case_column=case_column)
    fom, options = FOMS[metric]
    options = dict(options)
    if "partial" in options:
        options["partial"] = partial_range(*options["partial"])
    return or_analysis(data, fom, COVS[cov], **options)


def close(ours: float, theirs: float, rel: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=rel, abs_tol=ABS)


def assert_matches(result, name: str, ref: dict, rel: float) -> None:
    mismatches = []

    def check(label, ours, theirs):
        if not close(float(ours), float(theirs), rel):
            mismatches.append(f"{label}: ours {ours!r}, MRMCaov {theirs!r}")

    if name != "rrfc":
        cc, vc = result.covariance_components, ref["vcov_comps"]
        for label, ours in (("Error", cc.var_error), ("Cov1", cc.cov1), ("Cov2", cc.cov2),
                            ("Cov3", cc.cov3)):
            check(label, ours, vc[label])
    found = result.analysis(name)
    (test,) = ref["test_equality"]
    check("statistic", found.global_test.statistic, test.get("F", test.get("X2")))
    check("p", found.global_test.p_value, test["p-value"])
    if "df2" in test:
        check("ddf", found.global_test.df2, test["df2"])
    assert len(found.comparisons) == len(ref["test_diffs"])
    for ours, theirs in zip(found.comparisons, ref["test_diffs"], strict=True):
        shown = display_ids(result.treatments)  # Kundel's "1.0" is MRMCaov's 1
        assert f"{shown[ours.minuend]} - {shown[ours.subtrahend]}" == theirs["Comparison"]
        for label, value, expected in (
            ("difference", ours.estimate, theirs["Estimate"]),
            ("SE", ours.se, theirs["StdErr"]),
            ("CI low", ours.ci_low, theirs["CI"][0]),
            ("CI high", ours.ci_high, theirs["CI"][1]),
            ("p", ours.p_value, theirs["p-value"]),
        ):
            check(f"{theirs['Comparison']} {label}", value, expected)
    for ours, theirs in zip(found.arms, ref["test_means"], strict=True):
        for label, value, expected in (
            ("estimate", ours.estimate, theirs["Estimate"]),
            ("SE", ours.se, theirs["StdErr"]),
            ("CI low", ours.ci_low, theirs["CI"][0]),
            ("CI high", ours.ci_high, theirs["CI"][1]),
        ):
            check(f"arm {ours.treatment} {label}", value, expected)
        if "df" in theirs:
            check(f"arm {ours.treatment} df", ours.df, theirs["df"])
    assert not mismatches, "\n".join(mismatches)


FITTED = sorted(key for key, value in RESULTS.items() if "error" not in value)
REFUSED = sorted(key for key, value in RESULTS.items() if "error" in value)


def test_the_reference_covers_every_design_figure_of_merit_and_covariance_method():
    assert REFERENCE["mrmcaov_version"] == "0.3.0"
    assert {key.split("/")[0] for key in FITTED} == set(SETS)
    assert {key.split("/")[1] for key in FITTED} == set(FOMS)
    assert {key.split("/")[2] for key in FITTED} == set(COVS)
    assert {key.split("/")[3] for key in FITTED} == {"rrrc", "frrc", "rrfc"}
    assert len(FITTED) == 104 and len(REFUSED) == 26
    assert set(REFUSED) == set(BINARY_DELONG) | set(UNBALANCED_DELONG)


@pytest.mark.parametrize("key", FITTED)
def test_the_analysis_equals_mrmcaov(key):
    set_name, metric, cov, name = key.split("/")
    result = analysis(set_name, metric, cov)
    assert result.mrmcaov_design == {
        1: "factorial", 2: "cases nested within reader", 3: "cases nested within treatment",
        -1: "factorial (partially paired)",
    }[RESULTS[key]["design"]]
    assert_matches(result, name, RESULTS[key], REL.get(metric, 1e-6))


BINARY_DELONG = [k for k in REFUSED if "must be 'empirical_auc'" in RESULTS[k]["error"]]
UNBALANCED_DELONG = [k for k in REFUSED if "balanced design" in RESULTS[k]["error"]]


@pytest.mark.parametrize("key", BINARY_DELONG)
def test_delong_for_a_binary_figure_of_merit_is_refused_as_mrmcaov_refuses_it(key):
    set_name, metric, cov, _ = key.split("/")
    with pytest.raises(MRMCInputError, match="DeLong covariance is defined for the AUC"):
        analysis(set_name, metric, cov)


@pytest.mark.parametrize("key", UNBALANCED_DELONG)
def test_delong_on_an_unbalanced_design_is_extended_where_mrmcaov_refuses(key):
    """Documented in covariance.py: DeLong's placements over the cases each pair of units shares.
    Where MRMCaov refuses, the analysis still runs and agrees with the jackknife's conclusion."""
    set_name, metric, cov, name = key.split("/")
    delong = analysis(set_name, metric, cov).analysis(name)
    jackknife = analysis(set_name, metric, "jackknife").analysis(name)
    assert math.isfinite(delong.global_test.statistic)
    assert (delong.global_test.p_value < 0.05) == (jackknife.global_test.p_value < 0.05)
    for ours, other in zip(delong.comparisons, jackknife.comparisons, strict=True):
        assert ours.estimate == pytest.approx(other.estimate, rel=1e-12)
        assert ours.se == pytest.approx(other.se, rel=0.25)
