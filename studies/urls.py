"""Coordinator pages of the studies app, and the invitation page readers open."""

from django.urls import path

from studies import (
    reader_questionnaire_views,
    reader_views,
    views,
    views_cases,
    views_people,
    views_plan,
    views_questionnaires,
    views_questions,
)

app_name = "studies"

urlpatterns = [
    path("studies/", views.study_list, name="study-list"),
    path("studies/new/", views.study_create, name="study-create"),
    path("studies/<int:study_id>/", views.study_detail, name="study-detail"),
    path("studies/<int:study_id>/open/", views.study_open, name="study-open"),
    path("studies/<int:study_id>/close/", views.study_close, name="study-close"),
    path("studies/<int:study_id>/edit/", views.study_edit, name="study-edit"),
    path("studies/<int:study_id>/arms/", views_questions.study_arms, name="study-arms"),
    path("studies/<int:study_id>/arms/<int:arm_id>/remove/", views_questions.arm_remove, name="arm-remove"),
    path(
        "studies/<int:study_id>/arms/<int:arm_id>/clinical-history/",
        views_questions.arm_clinical_history,
        name="arm-clinical-history",
    ),
    path("studies/<int:study_id>/questions/", views_questions.study_questions, name="study-questions"),
    path(
        "studies/<int:study_id>/questions/defaults/",
        views_questions.questions_defaults,
        name="questions-defaults",
    ),
    path(
        "studies/<int:study_id>/questions/<int:question_id>/remove/",
        views_questions.question_remove,
        name="question-remove",
    ),
    path(
        "studies/<int:study_id>/questions/<int:question_id>/edit/",
        views_questions.question_edit,
        name="question-edit",
    ),
    path(
        "studies/<int:study_id>/questions/<int:question_id>/move/",
        views_questions.question_move,
        name="question-move",
    ),
    path(
        "studies/<int:study_id>/questionnaires/",
        views_questionnaires.study_questionnaires,
        name="study-questionnaires",
    ),
    path("studies/<int:study_id>/cases/", views_cases.study_cases, name="study-cases"),
    path("studies/<int:study_id>/cases/add/", views_cases.cases_add, name="cases-add"),
    path("studies/<int:study_id>/cases/exclude/", views_cases.cases_exclude, name="cases-exclude"),
    path("studies/<int:study_id>/readiness/", views_cases.study_readiness, name="study-readiness"),
    path("studies/<int:study_id>/plan/", views_plan.study_plan, name="study-plan"),
    path(
        "studies/<int:study_id>/plan/quality/",
        views_plan.study_quality_rules,
        name="study-quality-rules",
    ),
    path("studies/<int:study_id>/people/", views_people.study_people, name="study-people"),
    path("studies/<int:study_id>/people/remove/", views_people.role_remove, name="role-remove"),
    path("studies/<int:study_id>/people/invite/", views_people.invitation_create, name="invitation-create"),
    path(
        "studies/<int:study_id>/invitations/<int:invitation_id>/revoke/",
        views_people.invitation_revoke,
        name="invitation-revoke",
    ),
    path("studies/<int:study_id>/progress/", views.study_progress, name="study-progress"),
    path("studies/<int:study_id>/responses/", views.study_responses, name="study-responses"),
    path("studies/<int:study_id>/precompute/", views_cases.study_precompute, name="study-precompute"),
    path("studies/<int:study_id>/reveal/", views.study_reveal, name="study-reveal"),
    path("studies/<int:study_id>/audit/", views.study_audit, name="study-audit"),
    path("studies/<int:study_id>/audit.csv", views.study_audit_csv, name="study-audit-csv"),
    path("invite/<str:token>/", views.invitation_accept, name="invitation-accept"),
    # The reader's pages
    path("read/", reader_views.reader_home, name="reader-home"),
    path("read/<int:study_id>/", reader_views.reader_study, name="reader-study"),
    path("read/<int:study_id>/next/", reader_views.reader_next, name="reader-next"),
    path(
        "read/<int:study_id>/questionnaire/",
        reader_questionnaire_views.reader_questionnaire,
        name="reader-questionnaire",
    ),
    path("read/trials/<uuid:trial_uid>/", reader_views.reader_trial, name="reader-trial"),
    path(
        "read/trials/<uuid:trial_uid>/files/<str:name>",
        reader_views.reader_trial_file,
        name="reader-trial-file",
    ),
]
