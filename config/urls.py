from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from analysis.urls import api_urlpatterns as analysis_api
from core import views as core_views
from explain.urls import api_urlpatterns as explain_api
from library.urls import api_urlpatterns as library_api
from studies import home_views
from studies.api_urls import api_urlpatterns as studies_api

urlpatterns = [
    path("", home_views.home, name="home"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("health/", core_views.health, name="health"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("library.urls")),
    path("", include("explain.urls")),
    path("", include("studies.urls")),
    path("", include("analysis.urls")),
    path("api/v1/", include((library_api, "library-api"))),
    path("api/v1/", include((explain_api, "explain-api"))),
    path("api/v1/", include((studies_api, "studies-api"))),
    path("api/v1/", include((analysis_api, "analysis-api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script from a URL: no inline script (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="core/api_docs.html"),
        name="api-docs",
    ),
]
