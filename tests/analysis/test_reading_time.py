import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analysis.stats import reading_time
from analysis.stats.inference import to_jsonable
from analysis.stats.reading_time import MODEL_WORDS, reading_time_analysis
from analysis.stats.reads import Read

ARM_EFFECT = 0.2  # B takes exp(0.2) = 1.22 times as long as A


def simulated(seed=1, n_readers=12, n_cases=40):
    """Latin-square log times: 3.5 + 0.2 [arm B] + reader + case + noise."""
    rng = np.random.default_rng(seed)
    reader_fx = rng.normal(0, 0.3, n_readers)
    case_fx = rng.normal(0, 0.4, n_cases)
    reads = []
    for r in range(n_readers):
        for c in range(n_cases):
            arm = "A" if (r + c) % 2 == 0 else "B"
            log_t = (3.5 + (ARM_EFFECT if arm == "B" else 0.0) + reader_fx[r] + case_fx[c]
                     + rng.normal(0, 0.3))
            reads.append(Read(f"r{r}", f"c{c}", arm, seconds=float(np.exp(log_t))))
    return reads


def frame(reads):
    return pd.DataFrame({"y": [math.log(r.seconds) for r in reads], "arm": [r.arm for r in reads],
                         "reader": [r.reader for r in reads], "case": [r.case for r in reads],
                         "g": 1})


def test_known_arm_effect_is_recovered_by_the_crossed_model():
    res = reading_time_analysis(simulated())
    assert res.model == "crossed" and res.reason is None
    (ratio,) = res.ratios
    assert (ratio.arm, ratio.reference) == ("B", "A")
    assert ratio.ci_low < math.exp(ARM_EFFECT) < ratio.ci_high
    assert ratio.p_value < 1e-6
    assert set(res.variance_components) == {"reader", "case"}
    # true variances 0.09 (reader), 0.16 (case), 0.09 (residual)
    assert 0.005 < res.variance_components["reader"] < 0.3
    assert 0.05 < res.variance_components["case"] < 0.4
    assert res.residual_variance == pytest.approx(0.09, rel=0.25)


def test_crossed_model_equals_the_statsmodels_formula_fit():
    reads = simulated(seed=4, n_readers=8, n_cases=20)
    ref = smf.mixedlm("y ~ arm", frame(reads), groups="g", re_formula="0",
                      vc_formula={"reader": "0 + C(reader)", "case": "0 + C(case)"}
                      ).fit(reml=True)
    res = reading_time_analysis(reads)
    (ratio,) = res.ratios
    assert ratio.log_ratio == pytest.approx(ref.fe_params["arm[T.B]"], rel=1e-6)
    assert ratio.se == pytest.approx(ref.bse_fe["arm[T.B]"], rel=1e-4)
    vc = dict(zip(ref.model.exog_vc.names, ref.vcomp, strict=True))
    assert res.variance_components["case"] == pytest.approx(vc["case"], rel=1e-4)
    assert res.variance_components["reader"] == pytest.approx(vc["reader"], rel=1e-4)


def test_per_arm_geometric_means_by_hand_and_unusable_times_left_out():
    reads = [Read("r1", "c1", "A", seconds=10.0), Read("r1", "c2", "A", seconds=40.0),
             Read("r1", "c3", "B", seconds=8.0), Read("r1", "c4", "B", seconds=0.0),
             Read("r1", "c5", "B", seconds=None), Read("r1", "c6", "B", seconds=-3.0),
             Read("r1", "c7", "B", seconds=500.0, kind="training")]
    res = reading_time_analysis(reads)
    a, b = res.arms
    assert a.geometric_mean_seconds == pytest.approx(20.0)  # sqrt(10 * 40)
    assert a.median_seconds == pytest.approx(20.0)
    assert (b.n, b.geometric_mean_seconds) == (1, pytest.approx(8.0))
    assert (res.n, res.n_excluded) == (3, 3)
    assert res.model is None and "at least 2 readers" in res.reason


def test_falls_back_to_a_reader_intercept_when_the_crossed_model_fails(monkeypatch):
    real_fit = reading_time._fit

    def failing(endog, exog, groups, exog_vc=None):
        if exog_vc is not None:
            raise np.linalg.LinAlgError("Singular matrix")
        return real_fit(endog, exog, groups)

    monkeypatch.setattr(reading_time, "_fit", failing)
    reads = simulated(seed=2, n_readers=8, n_cases=20)
    res = reading_time_analysis(reads)
    assert res.model == "reader"
    assert [(t.model, t.used) for t in res.attempts] == [("crossed", False), ("reader", True)]
    assert res.model_note.startswith("The mixed model on log time with crossed reader and case "
                                     "intercepts failed (Singular matrix).")
    assert f"Reported: {MODEL_WORDS['reader']}" in res.model_note
    ref = smf.mixedlm("y ~ arm", frame(reads), groups="reader").fit(reml=True)
    assert res.ratios[0].log_ratio == pytest.approx(ref.fe_params["arm[T.B]"], rel=1e-6)
    assert res.variance_components["reader"] == pytest.approx(ref.cov_re.iloc[0, 0], rel=1e-4)


def test_non_converged_crossed_model_also_falls_back(monkeypatch):
    real_fit = reading_time._fit

    def unconverged(endog, exog, groups, exog_vc=None):
        result, messages = real_fit(endog, exog, groups, exog_vc)
        if exog_vc is not None:
            result.converged = False
        return result, messages

    monkeypatch.setattr(reading_time, "_fit", unconverged)
    res = reading_time_analysis(simulated(seed=3, n_readers=6, n_cases=10))
    assert res.model == "reader"
    assert "crossed reader and case intercepts did not converge" in res.model_note


def test_degenerate_inputs_give_a_reason():
    assert "no main read" in reading_time_analysis([]).reason
    one_arm = [Read(f"r{i}", "c1", "A", seconds=10.0 + i) for i in range(3)]
    assert "only arm A" in reading_time_analysis(one_arm).reason
    no_ref = [Read("r1", "c1", "A"), Read("r1", "c2", "B", seconds=3.0),
              Read("r2", "c2", "C", seconds=4.0)]
    assert "reference arm A" in reading_time_analysis(no_ref, reference="A").reason
    assert reading_time_analysis(no_ref).reference == "B"
    few = [Read("r1", "c1", "A", seconds=5.0), Read("r2", "c1", "B", seconds=6.0),
           Read("r1", "c2", "B", seconds=7.0)]
    assert "too few" in reading_time_analysis(few).reason


def test_tiny_study_returns_a_json_ready_result_without_raising():
    reads = [Read(f"r{r}", f"c{c}", "AB"[(r + c) % 2], seconds=float(10 + r + 2 * c))
             for r in range(2) for c in range(3)]
    res = reading_time_analysis(reads)
    assert res.n == 6
    assert (res.model is None) == (res.reason is not None)
    json.dumps(to_jsonable(res), allow_nan=False)


def test_falls_back_to_least_squares_clustered_by_reader_when_both_mixed_models_fail(monkeypatch):
    import statsmodels.api as sm

    def failing(endog, exog, groups, exog_vc=None):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(reading_time, "_fit", failing)
    reads = simulated(seed=4, n_readers=8, n_cases=20)
    res = reading_time_analysis(reads)
    assert res.model == "ols" and res.reason is None
    data = frame(reads)
    exog = np.column_stack([np.ones(len(data)), (data["arm"] == "B").astype(float)])
    groups = np.unique(data["reader"], return_inverse=True)[1]
    ref = sm.OLS(data["y"].to_numpy(), exog).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert res.ratios[0].log_ratio == pytest.approx(ref.params[1], rel=1e-9)
    assert res.ratios[0].se == pytest.approx(ref.bse[1], rel=1e-9)
    assert res.model_note.endswith(f"Reported: {MODEL_WORDS['ols']}.")
    assert res.model_note.count("failed (Singular matrix)") == 2


def test_times_without_reader_or_case_effects_still_give_ratios():
    rng = np.random.default_rng(5)
    reads = [
        Read(f"r{r}", f"c{c}", "B" if (r + c) % 2 else "A",
             seconds=float(np.exp(3.3 + (ARM_EFFECT if (r + c) % 2 else 0) + rng.normal(0, 0.35))))
        for r in range(6) for c in range(24)
    ]
    res = reading_time_analysis(reads)
    assert res.model in ("crossed", "reader", "ols")
    assert res.ratios[0].ci_low < math.exp(ARM_EFFECT) < res.ratios[0].ci_high


def no_effects(seed=5):
    rng = np.random.default_rng(seed)
    return [
        Read(f"r{r}", f"c{c}", "B" if (r + c) % 2 else "A",
             seconds=float(np.exp(3.3 + (ARM_EFFECT if (r + c) % 2 else 0) + rng.normal(0, 0.35))))
        for r in range(6) for c in range(24)
    ]


RAW_WARNING_TEXTS = ("ConvergenceWarning", "MLE may be on the boundary", "Retrying MixedLM",
                     "Maximum Likelihood optimization failed", "Gradient optimization failed",
                     "Hessian")


def test_optimizer_warnings_are_captured_and_summarised_not_passed_on():
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        res = reading_time_analysis(no_effects())
    assert [str(w.message) for w in escaped] == []
    # statsmodels did warn (boundary fits without reader or case effects): kept for the JSON
    assert res.optimizer_warnings
    assert any("boundary" in m for m in res.optimizer_warnings)
    for text in RAW_WARNING_TEXTS:
        assert text not in res.model_note and all(text not in n for n in res.notes)
    assert "warning" in res.model_note and "JSON export" in res.model_note
    assert res.model_note.count("Reported:") == 1


@pytest.mark.parametrize("failing", [(), ("crossed",), ("crossed", "reader")])
def test_the_model_note_names_the_model_used_and_each_failed_one(monkeypatch, failing):
    real_fit = reading_time._fit

    def fit(endog, exog, groups, exog_vc=None):
        name = "crossed" if exog_vc is not None else "reader"
        if name in failing:
            raise np.linalg.LinAlgError("Singular matrix")
        return real_fit(endog, exog, groups, exog_vc)

    monkeypatch.setattr(reading_time, "_fit", fit)
    res = reading_time_analysis(simulated(seed=6, n_readers=8, n_cases=20))
    used = ("crossed", "reader", "ols")[len(failing)]
    assert res.model == used
    assert [t.model for t in res.attempts if not t.used] == list(failing)
    assert f"Reported: {MODEL_WORDS[used]}" in res.model_note
    for name in failing:
        assert f"{MODEL_WORDS[name]} failed (Singular matrix)" in res.model_note
    for name in set(MODEL_WORDS) - set(failing) - {used}:
        assert MODEL_WORDS[name] not in res.model_note


def test_warnings_raised_while_checking_the_fit_are_captured_too(monkeypatch):
    real_problem = reading_time._problem

    def lazy_warning(result, k, messages):  # statsmodels computes standard errors lazily
        warnings.warn("invalid value encountered in sqrt", RuntimeWarning, stacklevel=1)
        return real_problem(result, k, messages)

    monkeypatch.setattr(reading_time, "_problem", lazy_warning)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        res = reading_time_analysis(simulated(seed=3, n_readers=6, n_cases=10))
    assert [str(w.message) for w in escaped] == []
    assert "invalid value encountered in sqrt" in res.optimizer_warnings
    assert "sqrt" not in res.model_note
