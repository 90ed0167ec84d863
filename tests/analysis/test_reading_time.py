import json
import math
import warnings
from dataclasses import replace
from pathlib import Path

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


def failing_crossed(*args, **kwargs):
    raise np.linalg.LinAlgError("Singular matrix")


def test_falls_back_to_least_squares_clustered_by_reader_when_the_crossed_model_fails(
        monkeypatch):
    import statsmodels.api as sm

    monkeypatch.setattr(reading_time, "fit_crossed", failing_crossed)
    reads = simulated(seed=4, n_readers=8, n_cases=20)
    res = reading_time_analysis(reads)
    assert res.model == "ols" and res.reason is None
    assert [(t.model, t.used) for t in res.attempts] == [("crossed", False), ("ols", True)]
    data = frame(reads)
    exog = np.column_stack([np.ones(len(data)), (data["arm"] == "B").astype(float)])
    groups = np.unique(data["reader"], return_inverse=True)[1]
    ref = sm.OLS(data["y"].to_numpy(), exog).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert res.ratios[0].log_ratio == pytest.approx(ref.params[1], rel=1e-9)
    assert res.ratios[0].se == pytest.approx(ref.bse[1], rel=1e-9)
    assert res.model_note == (f"The {MODEL_WORDS['crossed']} failed (Singular matrix). "
                              f"Reported: {MODEL_WORDS['ols']}.")
    assert res.variance_components == {} and res.zero_variances == ()


def test_crossed_fit_without_finite_standard_errors_is_not_reported(monkeypatch):
    real = reading_time.fit_crossed

    def nan_se(*args, **kwargs):
        fit = real(*args, **kwargs)
        return replace(fit, vcov=fit.vcov * np.nan)

    monkeypatch.setattr(reading_time, "fit_crossed", nan_se)
    res = reading_time_analysis(simulated(seed=3, n_readers=6, n_cases=10))
    assert res.model == "ols"
    assert f"{MODEL_WORDS['crossed']} gave no finite standard errors" in res.model_note


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


def no_effects(seed=5):
    rng = np.random.default_rng(seed)
    return [
        Read(f"r{r}", f"c{c}", "B" if (r + c) % 2 else "A",
             seconds=float(np.exp(3.3 + (ARM_EFFECT if (r + c) % 2 else 0) + rng.normal(0, 0.35))))
        for r in range(6) for c in range(24)
    ]


def test_times_without_reader_or_case_effects_still_give_the_crossed_model_and_ratios():
    res = reading_time_analysis(no_effects())
    assert res.model == "crossed" and res.zero_variances
    assert res.ratios[0].ci_low < math.exp(ARM_EFFECT) < res.ratios[0].ci_high


def test_no_warning_escapes_and_the_note_says_which_variance_is_at_zero():
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        res = reading_time_analysis(no_effects())
    assert [str(w.message) for w in escaped] == []
    assert res.model == "crossed" and res.zero_variances  # a singular fit, kept as planned
    for name in res.zero_variances:
        assert f"The {name} variance is estimated at 0 (a singular fit" in res.model_note
    assert res.model_note.count("Reported:") == 1
    assert res.model_note.endswith(f"Reported: {MODEL_WORDS['crossed']}.")


def test_warnings_raised_while_fitting_are_captured_and_counted_not_passed_on(monkeypatch):
    real = reading_time.fit_crossed

    def warns(*args, **kwargs):
        warnings.warn("invalid value encountered in sqrt", RuntimeWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reading_time, "fit_crossed", warns)
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        res = reading_time_analysis(simulated(seed=3, n_readers=6, n_cases=10))
    assert [str(w.message) for w in escaped] == []
    assert res.optimizer_warnings == ("invalid value encountered in sqrt",)
    assert "sqrt" not in res.model_note
    assert "1 warning while fitting (listed in the JSON export" in res.model_note


# ----------------------------------------------------------------------------- lme4 parity


LMER = Path(__file__).parent / "fixtures" / "r_reference" / "lmer"


def lmer_reads(name):
    data = pd.read_csv(LMER / f"{name}.csv")
    return [Read(r.reader, r.case, r.arm, seconds=float(r.seconds)) for r in data.itertuples()]


@pytest.mark.parametrize("name", ["interior", "no_reader", "no_effects", "unbalanced"])
def test_the_crossed_model_equals_lmer(name):
    """lme4 1.1.31's lmer on each fixture (make_reference.R): estimates, standard errors and
    variance components to 1e-4 relative, the REML criterion to 1e-9, the same zero variances."""
    ref = json.loads((LMER / "lmer.json").read_text())["fits"]["reml"][name]
    res = reading_time_analysis(lmer_reads(name))
    assert res.model == "crossed"
    for ratio in res.ratios:
        assert ratio.log_ratio == pytest.approx(ref["fixef"][f"arm{ratio.arm}"], rel=1e-5)
        assert ratio.se == pytest.approx(ref["se"][f"arm{ratio.arm}"], rel=1e-4)
    assert len(res.ratios) == len(ref["fixef"]) - 1
    for name_, value in res.variance_components.items():
        assert value == pytest.approx(ref["variances"][name_], rel=1e-4, abs=1e-7)
    assert res.residual_variance == pytest.approx(ref["variances"]["Residual"], rel=1e-5)
    assert res.reml_criterion == pytest.approx(ref["criterion"], rel=1e-9)
    assert bool(res.zero_variances) == ref["singular"]
    for name_ in res.zero_variances:
        assert ref["variances"][name_] == 0


def test_a_singular_fit_keeps_the_planned_model_and_says_so():
    res = reading_time_analysis(lmer_reads("no_reader"))
    assert (res.model, res.zero_variances) == ("crossed", ("reader",))
    assert res.variance_components["reader"] == 0.0
    assert res.model_note.startswith("The reader variance is estimated at 0 (a singular fit, "
                                     "as lme4 reports it)")
    assert [(t.model, t.used) for t in res.attempts] == [("crossed", True)]
