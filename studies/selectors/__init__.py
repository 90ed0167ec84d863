"""Reads of the studies app, one module per subject; every name is also importable from here.
Nothing here writes, and nothing returns an arm's explainer except the draft editor's
`arm_condition` (the statistician's audited reveal is a service: `study_arms_reveal`)."""

from studies.selectors.access import (
    studies_by_role,
    study_can_manage,
    study_can_view,
    study_has_role,
    study_list_for_user,
)
from studies.selectors.audit import (
    AUDIT_CSV_HEADER,
    audit_entries_for_study,
    audit_entry_details,
    audit_filter_choices,
    audit_page_rows,
    audit_rows,
)
from studies.selectors.case_page import (
    AVAILABLE_CASES_SHOWN,
    study_available_cases,
    study_case_rows,
    study_case_splits,
)
from studies.selectors.checklist import (
    study_checklist,
    study_problems,
    study_reader_text_warnings,
    study_warnings,
)
from studies.selectors.configuration import (
    BLINDED_KIND,
    arm_blinded_kind,
    arm_condition,
    study_case_ids,
)
from studies.selectors.explanations import arm_explanations, explanation_is_empty
from studies.selectors.progress import (
    enrollment_sessions,
    session_unlocks_at,
    study_progress,
    study_readers,
    study_responses,
)
from studies.selectors.readiness import (
    arm_readiness,
    study_ai_wrong,
    study_empty_explanation_rows,
    study_empty_explanations,
)
from studies.selectors.reading import (
    Refusal,
    enrollment_has_consented,
    enrollment_next_trial,
    questions_for,
    reader_refusal,
    trial_explanation,
    trial_heatmap_empty,
    trial_stages,
)
from studies.selectors.snapshot import study_config_snapshot
from studies.selectors.truth import case_ai_correctness, case_truth, study_strata

__all__ = [
    "AUDIT_CSV_HEADER",
    "AVAILABLE_CASES_SHOWN",
    "BLINDED_KIND",
    "Refusal",
    "arm_blinded_kind",
    "arm_condition",
    "arm_explanations",
    "arm_readiness",
    "audit_entries_for_study",
    "audit_entry_details",
    "audit_filter_choices",
    "audit_page_rows",
    "audit_rows",
    "case_ai_correctness",
    "case_truth",
    "enrollment_has_consented",
    "enrollment_next_trial",
    "enrollment_sessions",
    "explanation_is_empty",
    "questions_for",
    "reader_refusal",
    "session_unlocks_at",
    "studies_by_role",
    "study_ai_wrong",
    "study_available_cases",
    "study_can_manage",
    "study_can_view",
    "study_case_ids",
    "study_case_rows",
    "study_case_splits",
    "study_checklist",
    "study_config_snapshot",
    "study_empty_explanation_rows",
    "study_empty_explanations",
    "study_has_role",
    "study_list_for_user",
    "study_problems",
    "study_progress",
    "study_reader_text_warnings",
    "study_readers",
    "study_responses",
    "study_strata",
    "study_warnings",
    "trial_explanation",
    "trial_heatmap_empty",
    "trial_stages",
]
