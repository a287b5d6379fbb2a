"""Recordings: multipart upload of eye-tracker exports, parse status, re-parse, delete."""

from __future__ import annotations

import json

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.api import StrictSerializer, error_body
from apps.gaze import selectors, services
from apps.gaze.api.sessions import CountOf, OwnSessionMixin
from apps.gaze.models import Recording
from apps.labs.tenancy import LabScopedMixin


# --- Recordings -------------------------------------------------------------------------------
class RecordingStatusSerializer(serializers.ModelSerializer):
    class Meta:
        model = Recording
        fields = ["id", "status", "progress", "errors", "finished_at"]
        read_only_fields = fields


class RecordingSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reading_count = CountOf("readings")

    class Meta:
        model = Recording
        fields = [
            "id", "lab", "session", "original_name", "size", "sha256", "format",
            "companion_name", "options", "status", "progress", "errors", "warnings", "quality",
            "unmatched_stimuli", "reading_count", "uploaded_by", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class RecordingUploadSerializer(StrictSerializer):
    session = serializers.IntegerField(help_text="The reading session the exports belong to.")
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        help_text="Eye-tracker exports (repeat the field); EGD-CXR's master_sheet.csv or "
        "REFLACX metadata may come with the exports they describe.",
    )
    options = serializers.JSONField(
        required=False,
        help_text='Reader options as JSON, e.g. {"time_unit": "ms", "space": "screen_px", '
        '"image_key": "..."} for a generic CSV, {"reading_id": "P102R108"} for REFLACX.',
    )

    def validate_options(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise serializers.ValidationError("Not valid JSON.") from None
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class RecordingViewSet(
    OwnSessionMixin,
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Uploaded eye-tracker exports and their parse: status, progress, quality report and the
    stimulus names that matched no image. Upload with multipart (field ``files``, repeated)."""

    # An aggregate drops the model's default order: pages need a stable one.
    queryset = (
        Recording.objects.select_related("session__reader", "uploaded_by")
        .annotate(readings_n=Count("readings"))
        .order_by("-created_at", "-id")
    )
    serializer_class = RecordingSerializer
    filterset_fields = ["lab", "session", "status", "format"]
    ordering_fields = ["created_at", "original_name", "status"]
    parser_classes = [MultiPartParser, JSONParser]
    http_method_names = ["get", "post", "delete", "head", "options"]
    reader_user_field = "session__reader__user_id"

    @extend_schema(
        request={"multipart/form-data": RecordingUploadSerializer},
        responses={201: RecordingSerializer(many=True)},
        description="Store one or many exports of a session and queue their parse (Celery, "
        "queue `default`); poll `/recordings/{id}/status/`. The format is detected from the "
        "content at once: a file that is no supported export is refused with 400 naming it.",
    )
    def create(self, request, *args, **kwargs):
        data = RecordingUploadSerializer(data=request.data)
        session_id = request.data.get("session")
        try:
            session = selectors.reading_session_get(
                user_labs=list(self.lab_roles()), pk=int(session_id)
            )
        except (TypeError, ValueError):
            session = None
        if session is None:
            return Response(
                error_body(
                    "invalid", "session: No such session.", {"session": ["No such session."]}
                ),
                status=400,
            )
        services.check_can_upload(session=session, user=request.user)
        data.is_valid(raise_exception=True)
        uploads = [
            services.Upload(file=f.file, filename=f.name, size=f.size)
            for f in data.validated_data["files"]
        ]
        try:
            recordings = services.recording_upload(
                session=session,
                uploaded_by=request.user,
                uploads=uploads,
                options=data.validated_data.get("options") or {},
            )
        except services.RecordingRejected as exc:
            field = "files" if exc.filename else "options"
            return Response(error_body("invalid", str(exc), {field: [str(exc)]}), status=400)
        body = RecordingSerializer(recordings, many=True, context=self.get_serializer_context())
        return Response(body.data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=RecordingStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """The parse's status and progress (0-100), cheap enough to poll."""
        return Response(RecordingStatusSerializer(self.get_object()).data)

    @extend_schema(request=None, responses={202: RecordingStatusSerializer})
    @action(detail=True, methods=["post"])
    def reparse(self, request, pk=None):
        """Parse again (after the session's geometry changed or images were added)."""
        rec = services.recording_reparse(recording=self.get_object(), actor=request.user)
        return Response(RecordingStatusSerializer(rec).data, status=status.HTTP_202_ACCEPTED)

    def perform_destroy(self, instance):
        services.recording_delete(recording=instance)
