from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.services import health_check

_component = inline_serializer(
    "HealthComponent",
    {
        "ok": serializers.BooleanField(),
        "latency_ms": serializers.FloatField(),
        "error": serializers.CharField(required=False),
    },
)
_health = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "degraded", "down"]),
        "database": _component,
        "broker": _component,
        "workers": _component,
    },
)


class HealthView(APIView):
    """Liveness of the database, the broker and the workers. Public: it shows no lab data."""

    tenancy = "public"
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "workers",
                str,
                enum=["all"],
                description="`all`: wait the whole ping timeout and list every worker that "
                "answers. Without it the first reply ends the wait.",
            )
        ],
        responses={200: _health, 503: OpenApiResponse(_health, "The database or broker is down.")},
    )
    def get(self, request):
        workers = request.query_params.get("workers")
        if workers not in (None, "all"):
            raise exceptions.ValidationError({"workers": ["Only `all` is understood here."]})
        report = health_check(census=workers == "all")
        return Response(report, status=503 if report["status"] == "down" else 200)
