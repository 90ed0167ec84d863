"""REST endpoints of the studies app (mounted under /api/v1/)."""

from django.urls import path

from studies import api, api_people, api_plan, api_questionnaires, reader_api

_study = "studies/<int:study_id>/"
_trial = "reading/trials/<uuid:trial_uid>/"

api_urlpatterns: list = [
    path("studies/", api.StudyListApi.as_view(), name="studies"),
    path(_study, api.StudyDetailApi.as_view(), name="study"),
    path(_study + "readiness/", api.StudyReadinessApi.as_view(), name="study-readiness"),
    path(_study + "open/", api.StudyOpenApi.as_view(), name="study-open"),
    path(_study + "analysis-plan/", api_plan.AnalysisPlanApi.as_view(), name="study-analysis-plan"),
    path(_study + "quality-rules/", api_plan.QualityRulesApi.as_view(), name="study-quality-rules"),
    path(_study + "precompute/", api.StudyPrecomputeApi.as_view(), name="study-precompute"),
    path(_study + "close/", api.StudyCloseApi.as_view(), name="study-close"),
    path(_study + "arms/", api.ArmListApi.as_view(), name="study-arms"),
    path(_study + "arms/<str:code>/", api.ArmDetailApi.as_view(), name="study-arm"),
    path(_study + "reveal-arms/", api.ArmRevealApi.as_view(), name="study-reveal-arms"),
    path(_study + "questions/", api.QuestionListApi.as_view(), name="study-questions"),
    path(
        _study + "questions/defaults/",
        api.QuestionDefaultsApi.as_view(),
        name="study-questions-defaults",
    ),
    path(_study + "questions/<str:key>/", api.QuestionDetailApi.as_view(), name="study-question"),
    path(
        _study + "questions/<str:key>/move/",
        api.QuestionMoveApi.as_view(),
        name="study-question-move",
    ),
    path(
        _study + "questionnaires/",
        api_questionnaires.StudyQuestionnairesApi.as_view(),
        name="study-questionnaires",
    ),
    path(_study + "cases/", api.StudyCasesApi.as_view(), name="study-cases"),
    path(_study + "cases/select/", api.StudyCasesSelectApi.as_view(), name="study-cases-select"),
    path(_study + "cases/add/", api.StudyCasesAddApi.as_view(), name="study-cases-add"),
    path(_study + "cases/exclude/", api.StudyCasesExcludeApi.as_view(), name="study-cases-exclude"),
    path(_study + "invitations/", api_people.InvitationListApi.as_view(), name="study-invitations"),
    path(
        _study + "invitations/<int:invitation_id>/revoke/",
        api_people.InvitationRevokeApi.as_view(),
        name="study-invitation-revoke",
    ),
    path(_study + "roles/", api_people.RoleListApi.as_view(), name="study-roles"),
    path(
        _study + "roles/<str:username>/<str:role>/",
        api_people.RoleDetailApi.as_view(),
        name="study-role",
    ),
    path(_study + "progress/", api_people.StudyProgressApi.as_view(), name="study-progress"),
    path(_study + "readers/", api_people.StudyReadersApi.as_view(), name="study-readers"),
    path("invitations/accept/", api_people.InvitationAcceptApi.as_view(), name="invitation-accept"),
    # The reader's trial page
    path(_trial, reader_api.ReadingTrialApi.as_view(), name="reading-trial"),
    path(_trial + "answer/", reader_api.ReadingAnswerApi.as_view(), name="reading-trial-answer"),
    path(_trial + "reveal/", reader_api.ReadingRevealApi.as_view(), name="reading-trial-reveal"),
]
