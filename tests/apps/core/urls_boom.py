"""Test-only URLs: the real ones plus API and page views that fail unexpectedly."""

from django.http import HttpResponse
from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as real


@api_view(["GET"])
@permission_classes([AllowAny])
def api_boom(request):
    raise RuntimeError("a bug the user cannot see")


def plain_api_boom(request):
    raise ValueError("a bug in a plain Django view under /api/")


def page_boom(request) -> HttpResponse:
    raise RuntimeError("a bug on a page")


urlpatterns = [
    path("api/v1/test-boom/", api_boom),
    path("api/v1/test-plain-boom/", plain_api_boom),
    path("test-page-boom/", page_boom),
    *real,
]
