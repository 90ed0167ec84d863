from django.urls import path

from explain import api, views

app_name = "explain"

urlpatterns = [
    path("library/models/", views.model_list, name="model-list"),
    path("library/models/register/", views.model_register, name="model-register"),
    path("library/models/<int:model_id>/", views.model_detail, name="model-detail"),
    path("library/precompute/", views.job_list, name="job-list"),
    path("library/precompute/<int:job_id>/", views.job_detail, name="job-detail"),
    path("library/precompute/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
]

api_urlpatterns = [
    path("models/", api.ModelListApi.as_view(), name="api-models"),
    path("models/<int:model_id>/", api.ModelDetailApi.as_view(), name="api-model"),
    path(
        "models/<int:model_id>/explanation-metrics/",
        api.ModelMetricsApi.as_view(),
        name="api-model-metrics",
    ),
    path("precompute/", api.PrecomputeListApi.as_view(), name="api-precompute-list"),
    path("precompute/<int:job_id>/", api.PrecomputeDetailApi.as_view(), name="api-precompute"),
    path(
        "precompute/<int:job_id>/cancel/",
        api.PrecomputeCancelApi.as_view(),
        name="api-precompute-cancel",
    ),
]
