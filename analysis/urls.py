from django.urls import path

from analysis import api, views, views_power

app_name = "analysis"

urlpatterns = [
    path("studies/<int:study_id>/reports/", views.report_list, name="report-list"),
    path("studies/<int:study_id>/reports/request/", views.report_request, name="report-request"),
    path("reports/<uuid:report_uid>/progress/", views.report_progress, name="report-progress"),
    path("reports/<uuid:report_uid>/files/<str:kind>", views.report_file, name="report-file"),
    path("studies/<int:study_id>/sample-size/", views_power.study_power, name="study-power"),
]

api_urlpatterns = [
    path("studies/<int:study_id>/reports/", api.ReportListApi.as_view(), name="reports"),
    path("reports/<uuid:report_uid>/", api.ReportDetailApi.as_view(), name="report"),
]
