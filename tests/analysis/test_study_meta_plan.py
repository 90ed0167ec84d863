"""The analysis reads the plan, its hash and the quality rules frozen when the study opened."""

from __future__ import annotations

import pytest

from analysis.services import study_meta
from analysis.stats.plan import AnalysisPlan
from analysis.stats.quality import QualityRules
from studies import services

pytestmark = pytest.mark.django_db

PLAN = {
    "primary_endpoint": "accuracy",
    "comparisons": [["B", "A"]],
    "alpha": 0.025,
    "test": "or_frrc",
}


def test_the_study_meta_of_an_opened_study_carries_the_frozen_plan_hash_and_rules(
    ready_study, coordinator
):
    services.study_analysis_plan_set(acting_user=coordinator, study=ready_study, plan=PLAN)
    services.study_quality_rules_set(
        acting_user=coordinator,
        study=ready_study,
        rules={"attention_max_failures": 2, "fast_read_seconds": 4.5, "exclude_fast_reads": True},
    )
    services.study_open(acting_user=coordinator, study=ready_study)
    meta = study_meta(study=ready_study, unblinded=False)
    assert meta.analysis_plan == AnalysisPlan(
        primary_endpoint="accuracy",
        comparisons=(("B", "A"),),
        alpha=0.025,
        test="or_frrc",
        sha256=ready_study.frozen_config["analysis_plan_sha256"],
    )
    assert len(meta.analysis_plan.sha256) == 64
    assert meta.quality_rules == QualityRules(2, 4.5, True)


def test_an_opened_study_without_a_plan_has_none_and_no_rules(ready_study, coordinator):
    services.study_open(acting_user=coordinator, study=ready_study)
    meta = study_meta(study=ready_study, unblinded=False)
    assert meta.analysis_plan is None
    assert meta.quality_rules == QualityRules()
