"""Writes of the studies app. Every service takes `acting_user` (invitation acceptance: the
reader) and records an audit row in the same transaction as its write."""

from core.errors import ServiceError
from studies.services.audit_trail import study_audit_export
from studies.services.cases import (
    study_cases_add,
    study_cases_exclude,
    study_cases_select,
    study_cases_set,
)
from studies.services.configuration import (
    arm_add,
    arm_remove,
    arm_update,
    study_create,
    study_update,
)
from studies.services.lifecycle import (
    reader_enroll,
    study_arms_reveal,
    study_close,
    study_open,
)
from studies.services.people import (
    invitation_accept,
    invitation_create,
    invitation_get_valid,
    invitation_link,
    invitation_revoke,
    reader_profile_update,
)
from studies.services.plan import study_analysis_plan_set, study_quality_rules_set
from studies.services.precompute import study_precompute
from studies.services.questionnaires import questionnaire_submit, study_questionnaires_set
from studies.services.questions import (
    DEFAULT_LIKERT,
    question_add,
    question_move,
    question_remove,
    question_update,
    questions_add_defaults,
)
from studies.services.roles import study_role_add, study_role_remove, user_by_username

__all__ = [
    "DEFAULT_LIKERT",
    "ServiceError",
    "arm_add",
    "arm_remove",
    "arm_update",
    "invitation_accept",
    "invitation_create",
    "invitation_get_valid",
    "invitation_link",
    "invitation_revoke",
    "question_add",
    "question_move",
    "question_remove",
    "question_update",
    "questionnaire_submit",
    "questions_add_defaults",
    "reader_enroll",
    "reader_profile_update",
    "study_analysis_plan_set",
    "study_arms_reveal",
    "study_audit_export",
    "study_cases_add",
    "study_cases_exclude",
    "study_cases_select",
    "study_cases_set",
    "study_close",
    "study_create",
    "study_open",
    "study_precompute",
    "study_questionnaires_set",
    "study_quality_rules_set",
    "study_role_add",
    "study_role_remove",
    "study_update",
    "user_by_username",
]
