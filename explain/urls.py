from django.urls import path

from explain import api, views

app_name = "explain"

urlpatterns = [
    path("library/", views.collection_list, name="collection-list"),
    path(
        "library/collections/<int:collection_id>/",
        views.collection_detail,
        name="collection-detail",
    ),
    path(
        "library/collections/<int:collection_id>/import/",
        views.collection_import,
        name="collection-import",
    ),
    path("library/cases/<int:case_id>/", views.case_detail, name="case-detail"),
    path("library/cases/<int:case_id>/mask.png", views.mask_file, name="case-mask"),
    path("library/cases/<int:case_id>/<str:kind>", views.CaseFileView.as_view(), name="case-file"),
    path("library/models/register/", views.model_register, name="model-register"),
    path("library/models/<int:model_id>/", views.model_detail, name="model-detail"),
    path("library/precompute/", views.job_list, name="job-list"),
    path("library/precompute/<int:job_id>/", views.job_detail, name="job-detail"),
    path("library/precompute/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
]

api_urlpatterns = [
    path("collections/", api.CollectionListApi.as_view(), name="api-collections"),
    path(
        "collections/<int:collection_id>/", api.CollectionDetailApi.as_view(), name="api-collection"
    ),
    path("collections/<int:collection_id>/cases/", api.CaseListApi.as_view(), name="api-cases"),
    path("collections/<int:collection_id>/import/", api.CaseImportApi.as_view(), name="api-import"),
    path("cases/<int:case_id>/", api.CaseDetailApi.as_view(), name="api-case"),
    path("models/", api.ModelListApi.as_view(), name="api-models"),
    path("models/<int:model_id>/", api.ModelDetailApi.as_view(), name="api-model"),
    path("models/<int:model_id>/explanation-metrics/", api.ModelMetricsApi.as_view(), name="api-model-metrics"),
    path("precompute/", api.PrecomputeListApi.as_view(), name="api-precompute-list"),
    path("precompute/<int:job_id>/", api.PrecomputeDetailApi.as_view(), name="api-precompute"),
    path("precompute/<int:job_id>/cancel/", api.PrecomputeCancelApi.as_view(), name="api-precompute-cancel"),
]
