from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from apps.core import api as core_api


def _superusers_only(request) -> bool:
    """The admin site shows every lab's rows and every token hash: superusers only.

    Staff who are not superusers get the admin's sign-in page (as anyone without access does).
    """
    user = request.user
    return user.is_active and user.is_staff and user.is_superuser


admin.site.has_permission = _superusers_only

api_v1 = [
    path("", include("apps.labs.urls_api")),
    path("", include("apps.imaging.urls_api")),
    path("", include("apps.gaze.urls_api")),
    path("", include("apps.datasets.urls_api")),
    path("", include("apps.training.urls_api")),
    path("", include("apps.evaluation.urls_api")),
    path("", include("apps.webhooks.urls_api")),
    path("health/", include("apps.core.urls_api")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("", include("apps.labs.urls")),
    path("", include("apps.imaging.urls")),
    path("", include("apps.gaze.urls")),
    path("", include("apps.datasets.urls")),
    path("", include("apps.training.urls")),
    path("", include("apps.evaluation.urls")),
    path("", include("apps.webhooks.urls")),
]


def handler404(request, exception=None):
    """JSON for API paths, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return core_api.json_404(request, exception)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return core_api.json_500(request)
    from django.views.defaults import server_error

    return server_error(request)
