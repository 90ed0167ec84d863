from django.urls import path

from library import api, views

app_name = "library"

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
]

api_urlpatterns = [
    path("collections/", api.CollectionListApi.as_view(), name="api-collections"),
    path(
        "collections/<int:collection_id>/", api.CollectionDetailApi.as_view(), name="api-collection"
    ),
    path("collections/<int:collection_id>/cases/", api.CaseListApi.as_view(), name="api-cases"),
    path("collections/<int:collection_id>/import/", api.CaseImportApi.as_view(), name="api-import"),
    path("cases/<int:case_id>/", api.CaseDetailApi.as_view(), name="api-case"),
]
