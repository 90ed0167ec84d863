"""A draft's pre-registered analysis plan and data-quality rules: validated, audited, frozen
with a hash when the study opens, and shown and changed on the coordinator's page and API."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.errors import ServiceError
from core.models import AuditEntry
from studies import selectors, services
from tests.studies import api_helpers
from tests.studies.api_helpers import client_for, mentions, url

pytestmark = pytest.mark.django_db

study_statistician = api_helpers.study_statistician

PLAN = {
    "primary_endpoint": "auc",
    "fom": "empirical_auc",
    "comparisons": [["C", "A"], ["B", "A"]],
    "alpha": 0.05,
    "test": "or_rrrc",
}
RULES = {"attention_max_failures": 1, "fast_read_seconds": 3, "exclude_fast_reads": False}


def _problems(call) -> list[str]:
    with pytest.raises(ServiceError) as refused:
        call()
    return refused.value.problems


def test_a_valid_plan_and_rules_are_stored_and_audited(draft_study, coordinator):
    services.study_analysis_plan_set(acting_user=coordinator, study=draft_study, plan=PLAN)
    services.study_quality_rules_set(acting_user=coordinator, study=draft_study, rules=RULES)
    draft_study.refresh_from_db()
    assert draft_study.analysis_plan == PLAN
    assert draft_study.quality_rules == RULES
    plan_row = AuditEntry.objects.get(action="study.analysis_plan")
    assert plan_row.before == {"analysis_plan": {}} and plan_row.after == {"analysis_plan": PLAN}
    rules_row = AuditEntry.objects.get(action="study.quality_rules")
    assert rules_row.after == {"quality_rules": RULES}


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"comparisons": [["C", "Z"]]}, "Z is not an arm"),
        ({"comparisons": [["A", "A"]]}, "with itself"),
        ({"comparisons": [["B", "A"], ["A", "B"]]}, "listed twice"),
        ({"comparisons": []}, "non-empty list"),
        ({"alpha": 0}, "alpha must be"),
        ({"alpha": 0.51}, "alpha must be"),
        ({"alpha": True}, "alpha must be"),
        ({"test": "t_test"}, "test must be one of"),
        ({"primary_endpoint": "f1"}, "primary_endpoint must be one of"),
        ({"fom": "pauc"}, "fom must be one of"),
        ({"power": 0.8}, "unknown plan field 'power'"),
    ],
)
def test_a_plan_with_a_bad_field_is_refused_with_the_reason(draft_study, coordinator, change, phrase):
    problems = _problems(
        lambda: services.study_analysis_plan_set(
            acting_user=coordinator, study=draft_study, plan={**PLAN, **change}
        )
    )
    assert mentions(problems, phrase)
    draft_study.refresh_from_db()
    assert draft_study.analysis_plan == {}
    assert not AuditEntry.objects.filter(action="study.analysis_plan").exists()


def test_an_alpha_of_exactly_one_half_is_accepted(draft_study, coordinator):
    services.study_analysis_plan_set(
        acting_user=coordinator, study=draft_study, plan={**PLAN, "alpha": 0.5}
    )
    assert draft_study.analysis_plan["alpha"] == 0.5


@pytest.mark.parametrize(
    ("rules", "phrase"),
    [
        ({"attention_max_failures": -1}, "attention_max_failures must be"),
        ({"attention_max_failures": 1.5}, "attention_max_failures must be"),
        ({"attention_max_failures": True}, "attention_max_failures must be"),
        ({"fast_read_seconds": 0}, "fast_read_seconds must be"),
        ({"fast_read_seconds": -2.5}, "fast_read_seconds must be"),
        ({"fast_read_seconds": float("inf")}, "fast_read_seconds must be"),
        ({"exclude_fast_reads": True}, "needs fast_read_seconds"),
        ({"exclude_fast_reads": "yes", "fast_read_seconds": 2}, "true or false"),
        ({"k": 1}, "unknown rule 'k'"),
    ],
)
def test_bad_quality_rules_are_refused_with_the_reason(draft_study, coordinator, rules, phrase):
    problems = _problems(
        lambda: services.study_quality_rules_set(
            acting_user=coordinator, study=draft_study, rules=rules
        )
    )
    assert mentions(problems, phrase)


def test_zero_allowed_failures_is_a_valid_rule(draft_study, coordinator):
    services.study_quality_rules_set(
        acting_user=coordinator, study=draft_study, rules={"attention_max_failures": 0}
    )
    assert draft_study.quality_rules == {"attention_max_failures": 0}


def test_the_snapshot_freezes_the_plan_with_the_sha256_of_its_canonical_json(
    ready_study, coordinator
):
    services.study_analysis_plan_set(acting_user=coordinator, study=ready_study, plan=PLAN)
    services.study_quality_rules_set(acting_user=coordinator, study=ready_study, rules=RULES)
    services.study_open(acting_user=coordinator, study=ready_study)
    frozen = ready_study.frozen_config
    canonical = json.dumps(PLAN, sort_keys=True, separators=(",", ":"))
    assert frozen["analysis_plan"] == PLAN
    assert frozen["quality_rules"] == RULES
    assert frozen["analysis_plan_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_study_opens_without_a_plan_with_a_warning_that_everything_is_exploratory(
    ready_study, coordinator
):
    warning = "no pre-registered analysis plan: every result will be marked exploratory"
    assert warning in selectors.study_warnings(study=ready_study)
    services.study_open(acting_user=coordinator, study=ready_study)
    assert ready_study.frozen_config["analysis_plan"] == {}
    assert ready_study.frozen_config["analysis_plan_sha256"] is None
    opened = AuditEntry.objects.get(action="study.open")
    assert warning in opened.after["warnings"]


def test_a_study_with_a_plan_has_no_such_warning(draft_study, coordinator):
    services.study_analysis_plan_set(acting_user=coordinator, study=draft_study, plan=PLAN)
    assert not any("analysis plan" in w for w in selectors.study_warnings(study=draft_study))


def test_the_plan_and_rules_are_frozen_once_the_study_opens(open_study, coordinator):
    for call in (
        lambda: services.study_analysis_plan_set(
            acting_user=coordinator, study=open_study, plan=PLAN
        ),
        lambda: services.study_quality_rules_set(
            acting_user=coordinator, study=open_study, rules=RULES
        ),
    ):
        assert mentions(_problems(call), "frozen")
    api = client_for(coordinator)
    answer = api.put(url(open_study, "analysis-plan/"), PLAN, format="json")
    assert answer.status_code == 400 and mentions(answer.json()["problems"], "frozen")
    assert api.put(url(open_study, "quality-rules/"), RULES, format="json").status_code == 400
    page = client_for(coordinator).post(
        f"/studies/{open_study.pk}/plan/",
        {"primary_endpoint": "auc", "fom": "empirical_auc", "comparisons": "C-A", "alpha": "0.05",
         "test": "or_rrrc"},
    )
    assert page.status_code == 400


def test_the_api_fixes_shows_and_clears_a_drafts_plan_and_rules(draft_study, coordinator):
    api = client_for(coordinator)
    answer = api.put(url(draft_study, "analysis-plan/"), PLAN, format="json")
    assert answer.status_code == 200
    assert answer.json() == {"analysis_plan": PLAN, "analysis_plan_sha256": None, "frozen": False}
    bad = api.put(url(draft_study, "analysis-plan/"), {**PLAN, "alpha": 2}, format="json")
    assert bad.status_code == 400 and mentions(bad.json()["problems"], "alpha")
    rules = api.put(url(draft_study, "quality-rules/"), RULES, format="json")
    assert rules.json() == {"quality_rules": RULES, "frozen": False}
    assert api.put(url(draft_study, "analysis-plan/"), {}, format="json").json()[
        "analysis_plan"
    ] == {}
    assert api.get(url(draft_study, "quality-rules/")).json()["quality_rules"] == RULES


def test_the_api_shows_the_frozen_plan_and_its_hash_to_the_statistician(
    ready_study, coordinator, study_statistician
):
    services.study_analysis_plan_set(acting_user=coordinator, study=ready_study, plan=PLAN)
    services.study_open(acting_user=coordinator, study=ready_study)
    body = client_for(study_statistician).get(url(ready_study, "analysis-plan/")).json()
    assert body["frozen"] is True and body["analysis_plan"] == PLAN
    assert body["analysis_plan_sha256"] == ready_study.frozen_config["analysis_plan_sha256"]
    refused = client_for(study_statistician).put(url(ready_study, "analysis-plan/"), {}, format="json")
    assert refused.status_code == 403


def test_the_coordinator_fixes_the_plan_and_rules_on_the_analysis_plan_page(
    draft_study, coordinator
):
    client = client_for(coordinator)
    page = client.get(f"/studies/{draft_study.pk}/plan/")
    assert page.status_code == 200
    assert "Analysis plan" in page.content.decode()
    assert "every result will be marked exploratory" in page.content.decode()
    saved = client.post(
        f"/studies/{draft_study.pk}/plan/",
        {"primary_endpoint": "auc", "fom": "empirical_auc", "comparisons": "C-A, B-A",
         "alpha": "0.05", "test": "or_rrrc"},
    )
    assert saved.status_code == 302
    draft_study.refresh_from_db()
    assert draft_study.analysis_plan == PLAN
    refused = client.post(
        f"/studies/{draft_study.pk}/plan/",
        {"primary_endpoint": "auc", "fom": "empirical_auc", "comparisons": "C-Q",
         "alpha": "0.05", "test": "or_rrrc"},
    )
    assert refused.status_code == 400 and "Q is not an arm" in refused.content.decode()
    rules = client.post(
        f"/studies/{draft_study.pk}/plan/quality/",
        {"attention_max_failures": "1", "fast_read_seconds": "3"},
    )
    assert rules.status_code == 302
    draft_study.refresh_from_db()
    assert draft_study.quality_rules == {"attention_max_failures": 1, "fast_read_seconds": 3.0}
    shown = client.get(f"/studies/{draft_study.pk}/plan/").content.decode()
    assert "fails more than 1 attention check" in shown and "shorter than 3.0 s" in shown
    cleared = client.post(f"/studies/{draft_study.pk}/plan/", {"clear": "1"})
    assert cleared.status_code == 302
    draft_study.refresh_from_db()
    assert draft_study.analysis_plan == {}
