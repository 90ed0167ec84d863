import json
import math
from dataclasses import replace

import numpy as np
import pytest

from analysis.stats.agreement import BOOTSTRAP_INTERVAL, fleiss_by_arm, reader_ai_kappa
from analysis.stats.explanation_gain import by_experience, explanation_gain
from analysis.stats.inference import to_jsonable
from analysis.stats.mrmc import or_analysis
from analysis.stats.proportions import diagnostic_proportions
from analysis.stats.ratings import ordinal_regression, rating_analysis
from analysis.stats.reading_time import reading_time_analysis
from analysis.stats.reads import Read, to_mrmc_data
from analysis.stats.reliance import reliance
from analysis.stats.roc import auc_from_ratings
from analysis.stats.study import (
    SECTIONS,
    ArmMeta,
    StudyMeta,
    analyse_study,
    flipped,
    roc_points,
)

ARMS = ("A", "B", "C", "D")
# final-read separation of the latent score: the AI and explanations help
SEPARATION = {"A": 1.3, "B": 1.5, "C": 1.9, "D": 1.7}
# how far the AI's call pulls the final score in each aided arm: C > B > D
PULL = {"A": 0.0, "B": 0.8, "C": 1.3, "D": 0.4}
SLOWER = {"A": 0.0, "B": 0.1, "C": 0.3, "D": 0.25}  # log-seconds added
EXPERIENCE = (1.0, 3.0, 5.0, 9.0, 14.0, 22.0)
METRIC_NAMES = ("deletion_auc", "insertion_auc", "pointing_game")


def blind_meta(**overrides) -> StudyMeta:
    arms = (
        ArmMeta("A", "Arm A: unaided", False, False, None),
        ArmMeta("B", "Arm B: AI prediction", True, False, None),
        ArmMeta("C", "Arm C: AI prediction and explanation", True, True, None),
        ArmMeta("D", "Arm D: AI prediction and explanation", True, True, None),
    )
    base = dict(title="Pneumothorax reader study", design="latin_square", protocol="two_stage",
                arms=arms, unaided="A", positive_class="pneumothorax", n_bootstrap=500)
    return StudyMeta(**{**base, **overrides})


def unblinded_meta(**overrides) -> StudyMeta:
    arms = blind_meta().arms
    arms = arms[:2] + (
        ArmMeta("C", "Arm C: AI + GradientShapZebra", True, True, "GradientShapZebra"),
        ArmMeta("D", "Arm D: AI + OcclusionQuokka", True, True, "OcclusionQuokka"),
    )
    return blind_meta(arms=arms, **overrides)


def synthetic_reads(*, n_readers: int = 6, n_cases: int = 40, seed: int = 7,
                    two_stage: bool = True) -> list[Read]:
    """A 4-arm Latin-square study: reader i reads case block b under arm (b + i) mod 4."""
    rng = np.random.default_rng(seed)
    block = n_cases // len(ARMS)
    truth = np.tile([True] * (block // 2) + [False] * (block - block // 2), len(ARMS))
    ai_positive = np.where(rng.random(n_cases) < 0.8, truth, ~truth)
    case_effect = rng.normal(0, 0.5, n_cases)
    reads = []
    for i in range(n_readers):
        reader = f"r{i + 1}"
        skill = rng.normal(0, 0.2)
        speed = rng.normal(0, 0.2)
        for c in range(n_cases):
            arm = ARMS[(c // block + i) % len(ARMS)]
            sign = 1.0 if truth[c] else -1.0
            noise = rng.normal()
            first = sign * (SEPARATION["A"] + skill) / 2 + case_effect[c] * sign + noise
            ai_sign = 1.0 if ai_positive[c] else -1.0
            final = (sign * (SEPARATION[arm] + skill) / 2 + case_effect[c] * sign + noise
                     + PULL[arm] * ai_sign / 2)
            shown = arm != "A"
            ratings = {"confidence_in_call": int(np.clip(round(3 + final / 1.5), 1, 5))}
            if shown:
                ratings["trust_in_ai"] = int(np.clip(round(3 + PULL[arm] - 1 + rng.normal()),
                                                     1, 5))
            if arm in ("C", "D"):
                ratings["explanation_useful"] = int(np.clip(
                    round(3 + (1 if arm == "C" else -0.5) + rng.normal()), 1, 5))
            reads.append(Read(
                reader=reader, case=f"case{c + 1:02d}", arm=arm, truth=bool(truth[c]),
                first_positive=bool(first > 0) if two_stage else None,
                first_confidence=float(round(100 / (1 + math.exp(-first)))) if two_stage
                else None,
                final_positive=bool(final > 0) if shown or not two_stage else bool(first > 0),
                final_confidence=float(round(100 / (1 + math.exp(-final)))) if shown
                or not two_stage else float(round(100 / (1 + math.exp(-first)))),
                ai_shown=shown, ai_positive=bool(ai_positive[c]) if shown else None,
                ratings=ratings,
                seconds=float(np.exp(3.2 + SLOWER[arm] + speed + rng.normal(0, 0.3))),
                reader_experience=EXPERIENCE[i % len(EXPERIENCE)],
            ))
    # not analysed: two training trials and an attention check of reader r1
    reads.append(Read("r1", "train1", "A", kind="training", truth=True, final_positive=True,
                      final_confidence=90.0))
    reads.append(Read("r1", "train2", "B", kind="training", truth=False, final_positive=True,
                      final_confidence=70.0))
    reads.append(Read("r1", "attn1", "C", kind="attention", truth=True, final_positive=False))
    return reads


def synthetic_metrics(reads, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    cases = sorted({r.case for r in reads if r.kind == "main"})
    return {arm: {case: {name: float(rng.random()) for name in METRIC_NAMES} for case in cases}
            for arm in ("C", "D")}


@pytest.fixture(scope="module")
def study():
    reads = synthetic_reads()
    metrics = synthetic_metrics(reads)
    meta = blind_meta()
    return reads, metrics, meta, analyse_study(reads, meta, metrics=metrics)


def lean(reads):
    """The reads without ratings and times (skips the slow model fits in shape tests)."""
    return [replace(r, ratings={}, seconds=None) for r in reads]


def test_every_section_is_present_and_computed_for_a_latin_square_two_stage_study(study):
    *_, analysis = study
    sections = analysis.sections()
    assert tuple(sections) == SECTIONS
    assert {name: s.reason for name, s in sections.items()} == dict.fromkeys(SECTIONS)
    assert all(s.result is not None for s in sections.values())


def test_counts_give_readers_cases_reads_per_arm_and_exclusions(study):
    reads, _, _, analysis = study
    counts = analysis.counts.result
    assert (counts.readers, counts.cases, counts.main_reads, counts.all_reads) == (6, 40, 240,
                                                                                 len(reads))
    assert [(a.arm, a.reads, a.readers, a.cases) for a in counts.arms] == [
        (arm, 60, 6, 40) for arm in ARMS]
    assert (counts.arms[0].positive_cases, counts.arms[0].negative_cases) == (20, 20)
    excluded = {why.split(" (")[0]: n for why, n in counts.excluded.items()}
    assert excluded["training trial"] == 2 and excluded["attention-check trial"] == 1
    assert excluded["unknown truth"] == 0
    assert counts.readers_with_experience == 6


def test_proportions_are_those_of_the_proportions_module_for_both_stages(study):
    reads, _, meta, analysis = study
    res = analysis.proportions.result
    assert res.final == diagnostic_proportions(reads, stage="final", conf_level=meta.conf_level)
    assert res.first == diagnostic_proportions(reads, stage="first", conf_level=meta.conf_level)


def test_auc_analysis_is_the_or_analysis_of_the_partially_paired_latin_square(study):
    reads, _, meta, analysis = study
    section = analysis.mrmc_auc.result
    direct = or_analysis(to_mrmc_data(reads), "auc", "jackknife", conf_level=meta.conf_level)
    assert section.design == direct.design == "partially paired"
    assert section.readers_left_out == ()
    np.testing.assert_array_equal(section.or_result.fom_table, direct.fom_table)
    for name in ("rrrc", "frrc", "rrfc"):
        assert section.or_result.analyses[name] == direct.analyses[name]
    # each reader reads a case under one arm only: no case is shared between its arms
    assert section.or_result.components.cov1 == 0.0


def test_comparisons_with_the_unaided_arm_come_first_as_arm_minus_unaided(study):
    *_, analysis = study
    section = analysis.mrmc_auc.result
    rrrc = section.or_result.analyses["rrrc"]
    means = dict(zip(section.or_result.treatments, section.or_result.arm_means, strict=True))
    groups = section.groups["rrrc"]
    assert section.primary == groups.versus_unaided
    assert [(c.minuend, c.subtrahend) for c in groups.versus_unaided] == [("B", "A"), ("C", "A"),
                                                                          ("D", "A")]
    original = {(c.minuend, c.subtrahend): c for c in rrrc.comparisons}
    for c in groups.versus_unaided:
        assert c.estimate == pytest.approx(means[c.minuend] - means["A"])
        assert c == flipped(original[("A", c.minuend)])
        assert (c.p_value, c.p_holm) == (original[("A", c.minuend)].p_value,
                                         original[("A", c.minuend)].p_holm)
        assert c.ci_low < c.estimate < c.ci_high
    assert [(c.minuend, c.subtrahend) for c in groups.between_explainers] == [("C", "D")]
    assert {(c.minuend, c.subtrahend) for c in groups.other} == {("B", "C"), ("B", "D")}
    # the simulation gives the AI-aided arm B a higher AUC than unaided A
    assert groups.versus_unaided[0].estimate > 0


def test_accuracy_analysis_is_the_or_analysis_of_the_final_calls(study):
    reads, _, meta, analysis = study
    direct = or_analysis(to_mrmc_data(reads, rating="final_positive"), "accuracy",
                         conf_level=meta.conf_level)
    section = analysis.mrmc_accuracy.result
    assert section.fom == "accuracy"
    np.testing.assert_array_equal(section.or_result.fom_table, direct.fom_table)
    assert section.or_result.analyses["rrrc"] == direct.analyses["rrrc"]


def test_roc_curves_are_pooled_empirical_curves_with_the_pooled_auc(study):
    reads, _, _, analysis = study
    curves = analysis.roc.result
    assert [c.arm for c in curves] == list(ARMS)
    for curve in curves:
        mine = [r for r in reads if r.kind == "main" and r.arm == curve.arm]
        ratings = np.array([r.final_confidence for r in mine])
        truth = np.array([r.truth for r in mine])
        assert (curve.n_positive, curve.n_negative) == (truth.sum(), (~truth).sum())
        assert curve.auc == auc_from_ratings(ratings, truth)
        fpr, tpr = np.array(curve.fpr), np.array(curve.tpr)
        assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
        assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
        assert np.trapezoid(tpr, fpr) == pytest.approx(curve.auc)


def test_roc_points_count_ratings_at_or_above_each_threshold():
    fpr, tpr = roc_points([0.9, 0.4, 0.4, 0.1], [True, True, False, False])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 1.0, 1.0]


def test_reliance_is_the_reliance_module_and_follows_the_simulated_pull_of_the_ai(study):
    reads, _, meta, analysis = study
    res = analysis.reliance.result
    assert res == reliance(reads, conf_level=meta.conf_level)
    switch = {m.arm: m.switch_rate.estimate for m in res.arms}
    assert set(switch) == {"B", "C", "D"}  # the unaided arm shows no AI
    assert switch["D"] < switch["B"] and switch["D"] < switch["C"]  # D pulls least


def test_agreement_is_fleiss_per_arm_and_cohen_with_the_ai(study):
    reads, _, meta, analysis = study
    res = analysis.agreement.result
    assert res.fleiss == fleiss_by_arm(reads, conf_level=meta.conf_level,
                                       n_bootstrap=meta.n_bootstrap, seed=meta.seed)
    assert res.reader_ai == reader_ai_kappa(reads, conf_level=meta.conf_level,
                                            n_bootstrap=meta.n_bootstrap, seed=meta.seed)
    # the reader-AI kappa intervals are the bootstrap ones, inside the range of kappa
    assert {k.interval for k in res.reader_ai} == {BOOTSTRAP_INTERVAL}
    assert all(-1 <= k.ci_low <= k.kappa <= k.ci_high <= 1 for k in res.reader_ai)
    assert [a.arm for a in res.fleiss] == list(ARMS)


def test_ratings_use_the_unaided_arm_as_reference_only_for_items_it_rated(study):
    reads, _, meta, analysis = study
    res = analysis.ratings.result
    fits = {f.item: f for f in res.models}
    assert fits["confidence_in_call"].reference == "A"
    assert fits["trust_in_ai"].reference == "B"  # arm A was not asked about the AI
    assert fits["explanation_useful"].reference == "C"
    for item, fit in fits.items():
        assert fit == ordinal_regression(reads, item, reference=fit.reference,
                                         conf_level=meta.conf_level)
        assert fit.reason is None and fit.odds_ratios
    assert res.distributions == rating_analysis(reads).distributions


def test_reading_time_is_the_mixed_model_against_the_unaided_arm_with_box_summaries(study):
    reads, _, meta, analysis = study
    res = analysis.reading_time.result
    assert res.model == reading_time_analysis(reads, reference="A", conf_level=meta.conf_level)
    assert [r.arm for r in res.model.ratios] == ["B", "C", "D"]
    for s in res.summaries:
        seconds = np.array([r.seconds for r in reads if r.kind == "main" and r.arm == s.arm])
        assert s.n == seconds.size
        assert s.median == pytest.approx(np.median(seconds))
        assert s.whisker_low <= s.q1 <= s.median <= s.q3 <= s.whisker_high
        assert s.geometric_mean == pytest.approx(np.exp(np.log(seconds).mean()))


def test_explanation_gain_is_the_gain_module_with_a_correlation_per_metric(study):
    reads, metrics, meta, analysis = study
    res = analysis.explanation_gain.result
    kwargs = dict(conf_level=meta.conf_level, n_bootstrap=meta.n_bootstrap, seed=meta.seed)
    assert res.gain == explanation_gain(reads, "A", **kwargs)
    assert res.metric_names == METRIC_NAMES
    assert [(c.arm, c.metric) for c in res.correlations] == [
        (arm, name) for arm in ("C", "D") for name in METRIC_NAMES]
    for c in res.correlations:
        one = {c.arm: {case: values[c.metric] for case, values in metrics[c.arm].items()}}
        direct = explanation_gain(reads, "A", metrics=one, **kwargs)
        assert c.correlation == next(g for g in direct.arms if g.arm == c.arm).correlation
        assert len(c.points) == c.correlation.n == 40
        assert all(p.value == metrics[c.arm][p.case][c.metric] for p in c.points)


def test_subgroups_split_readers_at_the_median_experience(study):
    reads, _, meta, analysis = study
    res = analysis.subgroups.result
    assert res.threshold == float(np.median(EXPERIENCE))
    assert res.threshold_source.startswith("median")
    below, above = res.groups
    assert below.readers == ("r1", "r2", "r3") and above.readers == ("r4", "r5", "r6")
    low_reads, _ = by_experience([r for r in reads if r.kind == "main"], res.threshold)
    assert below.proportions == diagnostic_proportions(low_reads, conf_level=meta.conf_level)
    assert below.gain == explanation_gain(low_reads, "A", conf_level=meta.conf_level,
                                          n_bootstrap=meta.n_bootstrap, seed=meta.seed)


def test_a_given_experience_threshold_is_used():
    reads = lean(synthetic_reads())
    analysis = analyse_study(reads, blind_meta(experience_threshold=4.0, n_bootstrap=50))
    res = analysis.subgroups.result
    assert (res.threshold, res.threshold_source) == (4.0, "given")
    assert [g.readers for g in res.groups] == [("r1", "r2"), ("r3", "r4", "r5", "r6")]


def test_analysis_round_trips_through_strict_json(study):
    *_, analysis = study
    text = json.dumps(analysis.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert set(data) == {"meta", *SECTIONS}
    auc = data["mrmc_auc"]["result"]
    assert auc["or_result"]["arm_means"] == pytest.approx(
        dict(zip(ARMS, analysis.mrmc_auc.result.or_result.arm_means, strict=True)))
    assert auc["groups"]["rrrc"]["versus_unaided"][0]["minuend"] == "B"
    assert data["meta"]["arms"][2]["label"] == "Arm C: AI prediction and explanation"
    # the generic converter works on the whole analysis too
    json.dumps(to_jsonable(analysis), allow_nan=False)


def test_single_stage_study_has_a_reliance_reason_and_no_first_stage_proportions():
    reads = lean(synthetic_reads(two_stage=False))
    analysis = analyse_study(reads, blind_meta(protocol="single_stage", n_bootstrap=50))
    assert analysis.reliance.result is None
    assert "single-stage" in analysis.reliance.reason
    assert analysis.proportions.result.first is None
    assert analysis.mrmc_auc.ok and analysis.explanation_gain.ok
    json.dumps(analysis.to_dict(), allow_nan=False)


def test_single_stage_study_without_an_unaided_arm_has_a_gain_reason():
    reads = lean([r for r in synthetic_reads(two_stage=False) if r.arm != "A"])
    meta = blind_meta(protocol="single_stage", unaided=None, arms=blind_meta().arms[1:],
                      n_bootstrap=50)
    analysis = analyse_study(reads, meta, metrics=synthetic_metrics(reads))
    assert analysis.explanation_gain.result is None
    assert "no unaided arm" in analysis.explanation_gain.reason
    assert all(g.gain is None and g.gain_reason for g in analysis.subgroups.result.groups)
    groups = analysis.mrmc_auc.result.groups["rrrc"]
    assert groups.versus_unaided == ()
    assert any("no unaided arm" in n for n in analysis.mrmc_auc.notes)
    assert [(c.minuend, c.subtrahend) for c in groups.between_explainers] == [("C", "D")]


def test_two_stage_study_without_an_unaided_arm_gains_over_the_first_answers():
    reads = lean([r for r in synthetic_reads() if r.arm != "A"])
    meta = blind_meta(unaided=None, arms=blind_meta().arms[1:], n_bootstrap=50)
    analysis = analyse_study(reads, meta)
    gain = analysis.explanation_gain.result.gain
    assert gain == explanation_gain(reads, None, n_bootstrap=50, seed=0)
    assert gain.unaided == "first stage"
    assert any("first-stage" in n for n in analysis.explanation_gain.notes)


def test_one_reader_gives_reasons_instead_of_an_mrmc_analysis():
    reads = lean([r for r in synthetic_reads() if r.reader == "r1"])
    analysis = analyse_study(reads, blind_meta(n_bootstrap=50))
    for name in ("mrmc_auc", "mrmc_accuracy"):
        section = getattr(analysis, name)
        assert section.result is None and "at least 2 readers" in section.reason
    assert analysis.roc.ok and analysis.proportions.ok and analysis.reliance.ok
    assert "at least 2 ratings" in analysis.agreement.reason  # every case has one reader
    json.dumps(analysis.to_dict(), allow_nan=False)


def test_a_reader_missing_an_arm_is_left_out_of_the_or_analysis_with_a_note():
    reads = lean([r for r in synthetic_reads() if not (r.reader == "r6" and r.arm == "D")])
    analysis = analyse_study(reads, blind_meta(n_bootstrap=50))
    section = analysis.mrmc_auc.result
    assert section.readers_left_out == ("r6",)
    assert any("r6" in n and "treatment D" in n for n in analysis.mrmc_auc.notes)
    direct = or_analysis(to_mrmc_data([r for r in reads if r.reader != "r6"]))
    assert section.or_result.analyses["rrrc"] == direct.analyses["rrrc"]


def test_data_without_reads_ratings_times_or_experience_gives_reasons_not_errors():
    empty = analyse_study([], blind_meta(n_bootstrap=50))
    assert empty.counts.ok and empty.counts.result.main_reads == 0
    assert all(s.reason for name, s in empty.sections().items() if name != "counts")
    json.dumps(empty.to_dict(), allow_nan=False)

    reads = [replace(r, reader_experience=None) for r in lean(synthetic_reads())]
    analysis = analyse_study(reads, blind_meta(n_bootstrap=50))
    assert analysis.ratings.result is None and "no Likert ratings" in analysis.ratings.reason
    assert "positive reading time" in analysis.reading_time.reason
    assert analysis.reading_time.result.summaries == ()
    assert "experience" in analysis.subgroups.reason
    assert analysis.mrmc_auc.ok


def test_one_sided_experience_gives_a_subgroup_reason():
    reads = [replace(r, reader_experience=5.0) for r in lean(synthetic_reads())]
    analysis = analyse_study(reads, blind_meta(n_bootstrap=50))
    assert "one side" in analysis.subgroups.reason
    below, above = analysis.subgroups.result.groups
    assert below.reason and above.readers == tuple(f"r{i}" for i in range(1, 7))


@pytest.mark.parametrize("change, message", [
    ({"design": "crossover"}, "design"),
    ({"protocol": "three_stage"}, "protocol"),
    ({"unaided": "Z"}, "unaided arm"),
    ({"conf_level": 1.5}, "conf_level"),
])
def test_malformed_study_metadata_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        blind_meta(**change)


def test_duplicate_reads_are_counted_and_refused_by_the_or_analysis_only():
    reads = lean(synthetic_reads())
    repeat = next(r for r in reads if r.reader == "r2" and r.arm == "B")
    analysis = analyse_study(reads + [repeat], blind_meta(n_bootstrap=50))
    assert analysis.counts.result.duplicate_reads == 1
    assert any("repeat" in n for n in analysis.counts.notes)
    assert "duplicate rating for reader r2" in analysis.mrmc_auc.reason
    assert analysis.proportions.ok


def test_a_single_arm_study_has_arm_estimates_and_no_comparisons():
    reads = lean([r for r in synthetic_reads() if r.arm == "C"])
    analysis = analyse_study(reads, blind_meta(n_bootstrap=50))
    section = analysis.mrmc_auc.result
    assert section.or_result.treatments == ("C",)
    assert [a.treatment for a in section.or_result.analyses["rrrc"].arms] == ["C"]
    assert section.groups["rrrc"].versus_unaided == () and section.primary == ()
    assert any("one arm" in n for n in analysis.mrmc_auc.notes)
    # the unaided arm has no reads: two-stage reading falls back to the first answers
    assert analysis.explanation_gain.result.gain.unaided == "first stage"
    assert "unaided arm A has no main reads" in analysis.explanation_gain.notes[0]
