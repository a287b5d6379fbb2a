"""REST API of reading sessions: readers, sessions, recordings (multipart upload, parse status,
quality report), readings and fixations (JSON, or CSV with ``?format=csv``)."""

from __future__ import annotations

import csv
import json
from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.storage import default_storage
from django.db.models import Count
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.api import StrictSerializer, error_body
from apps.gaze import selectors, services
from apps.gaze.models import Fixation, Reader, Reading, ReadingSession, Recording, SaliencyMap
from apps.labs.api import UserLabField
from apps.labs.models import User
from apps.labs.roles import Action, role_allows
from apps.labs.tenancy import LabScopedMixin


# --- Readers ----------------------------------------------------------------------------------
class ReaderSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Reader
        fields = ["id", "lab", "code", "years_experience", "specialty", "user", "created_at"]
        read_only_fields = fields


class ReaderWriteSerializer(StrictSerializer):
    code = serializers.CharField(max_length=60)
    years_experience = serializers.IntegerField(
        min_value=0, max_value=80, allow_null=True, required=False
    )
    specialty = serializers.CharField(max_length=120, allow_blank=True, required=False)
    user = serializers.CharField(
        allow_null=True, required=False, help_text="Username of the lab member this reader is."
    )

    def validate_user(self, value: str | None) -> User | None:
        if value in (None, ""):
            return None
        user = User.objects.filter(username=value).first()
        if user is None:
            raise serializers.ValidationError("No such user.")
        return user


class ReaderCreateSerializer(ReaderWriteSerializer):
    lab = UserLabField()


class ReaderViewSet(LabScopedMixin, viewsets.ModelViewSet):
    """Readers (radiologists) of your labs, by code. Researchers and admins manage them."""

    queryset = Reader.objects.select_related("user")
    serializer_class = ReaderSerializer
    filterset_fields = ["lab", "code"]
    ordering_fields = ["code", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=ReaderCreateSerializer, responses={201: ReaderSerializer})
    def create(self, request, *args, **kwargs):
        data = ReaderCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        self.require_lab_action(data.validated_data["lab"])
        reader = services.reader_create(**data.validated_data)
        return Response(ReaderSerializer(reader).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReaderWriteSerializer, responses=ReaderSerializer)
    def partial_update(self, request, *args, **kwargs):
        reader = self.get_object()
        data = ReaderWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        reader = services.reader_update(reader=reader, **data.validated_data)
        return Response(ReaderSerializer(reader).data)

    def perform_destroy(self, instance):
        services.reader_delete(reader=instance)


# --- Sessions ---------------------------------------------------------------------------------
class OwnSessionMixin:
    """Readers (``Action.UPLOAD_OWN``) may change what belongs to their own sessions."""

    reader_user_field = "reader__user_id"

    def allows(self, obj, action: Action) -> bool:
        if super().allows(obj, action):
            return True
        if action != Action.WRITE:
            return False
        role = self.lab_roles().get(obj.lab_id)
        target = obj
        for part in self.reader_user_field.split("__"):
            target = getattr(target, part)
        return role_allows(role, Action.UPLOAD_OWN) and target == self.request.user.pk


class CountOf(serializers.IntegerField):
    """How many rows ``relation`` has: the queryset's annotation ``<relation>_n`` where the view
    made one (a list: one query for the page, not one per row), else a COUNT."""

    def __init__(self, relation: str, **kwargs: Any) -> None:
        self.relation = relation
        super().__init__(read_only=True, source="*", **kwargs)

    def to_representation(self, value: Any) -> int:
        n = getattr(value, f"{self.relation}_n", None)
        return int(n) if n is not None else getattr(value, self.relation).count()


class ReadingSessionSerializer(serializers.ModelSerializer):
    reader_code = serializers.CharField(source="reader.code", read_only=True)
    recording_count = CountOf("recordings")

    class Meta:
        model = ReadingSession
        fields = [
            "id", "lab", "reader", "reader_code", "name", "date", "tracker_make",
            "tracker_model", "sampling_rate_hz", "screen_width_px", "screen_height_px",
            "screen_width_mm", "screen_height_mm", "viewing_distance_mm", "image_placement",
            "fit_padding_px", "image_rect_left", "image_rect_top", "image_rect_width",
            "image_rect_height", "fixation_detection", "detection_velocity_deg_s",
            "detection_dispersion_deg", "detection_min_duration_ms", "notes", "recording_count",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReadingSessionWriteSerializer(StrictSerializer):
    reader = serializers.PrimaryKeyRelatedField(queryset=Reader.objects.all(), required=False)
    name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    date = serializers.DateField(allow_null=True, required=False)
    tracker_make = serializers.CharField(max_length=120, allow_blank=True, required=False)
    tracker_model = serializers.CharField(max_length=120, allow_blank=True, required=False)
    sampling_rate_hz = serializers.FloatField(allow_null=True, required=False, min_value=0)
    screen_width_px = serializers.IntegerField(min_value=1, max_value=100000, required=False)
    screen_height_px = serializers.IntegerField(min_value=1, max_value=100000, required=False)
    screen_width_mm = serializers.FloatField(allow_null=True, required=False, min_value=0)
    screen_height_mm = serializers.FloatField(allow_null=True, required=False, min_value=0)
    viewing_distance_mm = serializers.FloatField(allow_null=True, required=False, min_value=0)
    image_placement = serializers.ChoiceField(
        choices=ReadingSession.Placement.choices, required=False
    )
    fit_padding_px = serializers.IntegerField(min_value=0, max_value=100000, required=False)
    image_rect_left = serializers.FloatField(allow_null=True, required=False)
    image_rect_top = serializers.FloatField(allow_null=True, required=False)
    image_rect_width = serializers.FloatField(allow_null=True, required=False)
    image_rect_height = serializers.FloatField(allow_null=True, required=False)
    fixation_detection = serializers.ChoiceField(
        choices=ReadingSession.Detection.choices, required=False
    )
    detection_velocity_deg_s = serializers.FloatField(allow_null=True, required=False, min_value=0)
    detection_dispersion_deg = serializers.FloatField(allow_null=True, required=False, min_value=0)
    detection_min_duration_ms = serializers.FloatField(allow_null=True, required=False, min_value=0)
    notes = serializers.CharField(max_length=2000, allow_blank=True, required=False)

    def validate_reader(self, reader: Reader) -> Reader:
        roles = self.context["view"].lab_roles()
        if reader.lab_id not in roles:
            raise serializers.ValidationError(f'Invalid pk "{reader.pk}" - object does not exist.')
        return reader


class ReadingSessionCreateSerializer(ReadingSessionWriteSerializer):
    lab = UserLabField()
    reader = serializers.PrimaryKeyRelatedField(queryset=Reader.objects.all())


class ReadingSessionViewSet(OwnSessionMixin, LabScopedMixin, viewsets.ModelViewSet):
    """Reading sessions of your labs with their display geometry. Researchers and admins create
    any; readers create and change their own (sessions whose reader is linked to them)."""

    queryset = ReadingSession.objects.select_related("reader").annotate(
        recordings_n=Count("recordings")
    )
    serializer_class = ReadingSessionSerializer
    filterset_fields = ["lab", "reader"]
    ordering_fields = ["created_at", "date", "name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    reader_user_field = "reader__user_id"

    @extend_schema(
        request=ReadingSessionCreateSerializer, responses={201: ReadingSessionSerializer}
    )
    def create(self, request, *args, **kwargs):
        data = ReadingSessionCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        lab, reader = fields.pop("lab"), fields.pop("reader")
        role = self.lab_roles().get(lab.pk)
        own = reader.user_id == request.user.pk and role_allows(role, Action.UPLOAD_OWN)
        if not (role_allows(role, Action.WRITE) or own):
            raise PermissionDenied("Your role in this lab does not allow creating this session.")
        session = services.reading_session_create(
            lab=lab, reader=reader, created_by=request.user, **fields
        )
        return Response(ReadingSessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReadingSessionWriteSerializer, responses=ReadingSessionSerializer)
    def partial_update(self, request, *args, **kwargs):
        session = self.get_object()
        data = ReadingSessionWriteSerializer(
            data=request.data, partial=True, context=self.get_serializer_context()
        )
        data.is_valid(raise_exception=True)
        reader = data.validated_data.get("reader")
        if reader is not None and not role_allows(
            self.lab_roles().get(session.lab_id), Action.WRITE
        ):
            raise PermissionDenied("Only researchers and admins change a session's reader.")
        session = services.reading_session_update(session=session, **data.validated_data)
        return Response(ReadingSessionSerializer(session).data)

    def perform_destroy(self, instance):
        services.reading_session_delete(session=instance)


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

    queryset = Recording.objects.select_related("session__reader", "uploaded_by").annotate(
        readings_n=Count("readings")
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


# --- Readings and fixations -------------------------------------------------------------------
class ReadingSerializer(serializers.ModelSerializer):
    image_key = serializers.CharField(source="image.key", read_only=True)
    reader_code = serializers.CharField(source="session.reader.code", read_only=True)

    class Meta:
        model = Reading
        fields = [
            "id", "lab", "session", "recording", "image", "image_key", "reader_code",
            "stimulus_name", "start_ms", "end_ms", "fixation_count", "dwell_ms",
            "fixation_source", "quality", "grade", "use_for_training", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReadingUpdateSerializer(StrictSerializer):
    use_for_training = serializers.BooleanField()


class FixationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fixation
        fields = ["id", "reading", "index", "start_ms", "duration_ms", "x", "y", "on_image",
                  "source"]  # fmt: skip
        read_only_fields = fields


class CSVRenderer(renderers.BaseRenderer):
    """Fixations as CSV (``?format=csv``); the views stream the rows themselves."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()


CSV_COLUMNS = ["reading", "image_key", "index", "start_ms", "duration_ms", "x", "y", "on_image",
               "source"]  # fmt: skip


class _Echo:
    def write(self, value: str) -> str:
        return value


def fixations_csv_response(queryset, filename: str) -> StreamingHttpResponse:
    """Stream fixations as CSV (never all in memory)."""
    writer = csv.writer(_Echo())
    rows = queryset.values_list(
        "reading_id", "reading__image__key", "index", "start_ms", "duration_ms", "x", "y",
        "on_image", "source",
    ).order_by("reading_id", "index")  # fmt: skip

    def lines():
        yield writer.writerow(CSV_COLUMNS)
        for row in rows.iterator(chunk_size=5000):
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


_CSV_PARAM = OpenApiParameter(
    "format", str, enum=["json", "csv"], description="csv: every matching row, as CSV."
)


# --- Saliency targets -------------------------------------------------------------------------
class SaliencyMapSerializer(serializers.ModelSerializer):
    npy_url = serializers.SerializerMethodField(help_text="The float32 .npy (sums to 1).")
    png_url = serializers.SerializerMethodField(help_text="A grayscale PNG (max = white).")

    class Meta:
        model = SaliencyMap
        fields = ["id", "lab", "kind", "reading", "image", "target_height", "target_width",
                  "sigma_mode", "sigma_px", "n_readings", "n_fixations", "cache_key",
                  "created_at", "npy_url", "png_url"]  # fmt: skip
        read_only_fields = fields

    def _url(self, obj: SaliencyMap, name: str) -> str:
        path = reverse(f"saliency-map-{name}", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_npy_url(self, obj: SaliencyMap) -> str:
        return self._url(obj, "npy")

    def get_png_url(self, obj: SaliencyMap) -> str:
        return self._url(obj, "png")


class SaliencySizeSerializer(StrictSerializer):
    height = serializers.IntegerField(
        min_value=1, max_value=services.SALIENCY_MAX_SIDE, default=services.SALIENCY_DEFAULT_SIZE[0]
    )
    width = serializers.IntegerField(
        min_value=1, max_value=services.SALIENCY_MAX_SIDE, default=services.SALIENCY_DEFAULT_SIZE[1]
    )
    include_unused = serializers.BooleanField(
        default=False, help_text="Pool readings left out of training too (pooled maps only)."
    )


class SaliencyQuerySerializer(SaliencySizeSerializer):
    image = serializers.IntegerField(min_value=1)


_SIZE_PARAMS = [
    OpenApiParameter("height", int, description="Map height in pixels (default 640)."),
    OpenApiParameter("width", int, description="Map width in pixels (default 512)."),
]


def _query(serializer_class, request, keys) -> dict:
    data = serializer_class(data={k: request.query_params[k] for k in keys
                                  if k in request.query_params})  # fmt: skip
    data.is_valid(raise_exception=True)
    return data.validated_data


def _saliency(**kwargs) -> SaliencyMap:
    try:
        return services.saliency_map_get_or_create(**kwargs)
    except DjangoValidationError as exc:
        raise DRFValidationError({"saliency": exc.messages}) from None


class ReadingFilter(django_filters.FilterSet):
    image_key = django_filters.CharFilter(field_name="image__key")
    reader = django_filters.NumberFilter(field_name="session__reader")

    class Meta:
        model = Reading
        fields = ["lab", "session", "recording", "image", "image_key", "reader", "grade",
                  "use_for_training"]  # fmt: skip


class ReadingViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Readings (session x image) with their quality and grade; researchers and admins choose
    which are used for training (poor ones are left out by default)."""

    queryset = Reading.objects.select_related("image", "session__reader")
    serializer_class = ReadingSerializer
    filterset_class = ReadingFilter
    ordering_fields = ["created_at", "start_ms", "grade", "fixation_count"]
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(request=ReadingUpdateSerializer, responses=ReadingSerializer)
    def partial_update(self, request, *args, **kwargs):
        reading = self.get_object()
        data = ReadingUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reading = services.reading_update(reading=reading, **data.validated_data)
        return Response(ReadingSerializer(reading).data)

    @extend_schema(
        parameters=[_CSV_PARAM],
        responses={(200, "application/json"): FixationSerializer(many=True),
                   (200, "text/csv"): OpenApiTypes.STR},
    )  # fmt: skip
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, CSVRenderer])
    def fixations(self, request, pk=None):
        """The reading's fixations in image pixels, in order (the scanpath)."""
        reading = self.get_object()
        fixations = Fixation.objects.filter(reading=reading)
        if request.accepted_renderer.format == "csv":
            return fixations_csv_response(fixations, f"reading-{reading.pk}-fixations.csv")
        return Response(FixationSerializer(fixations.order_by("index"), many=True).data)

    @extend_schema(parameters=_SIZE_PARAMS, responses=SaliencyMapSerializer)
    @action(detail=True, methods=["get"])
    def saliency(self, request, pk=None):
        """The reading's saliency target at ``height`` x ``width`` (duration-weighted Gaussians,
        sigma = 1 degree), made once and then served from the cache."""
        reading = self.get_object()
        size = _query(SaliencySizeSerializer, request, ("height", "width"))
        found = _saliency(target_size=(size["height"], size["width"]), reading=reading)
        return Response(SaliencyMapSerializer(found, context={"request": request}).data)


class FixationFilter(django_filters.FilterSet):
    session = django_filters.NumberFilter(field_name="reading__session")
    recording = django_filters.NumberFilter(field_name="reading__recording")
    image = django_filters.NumberFilter(field_name="reading__image")

    class Meta:
        model = Fixation
        fields = ["lab", "reading", "session", "recording", "image", "on_image", "source"]


class FixationViewSet(
    LabScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Fixations of your labs' readings in image pixels; ``?format=csv`` streams every matching
    row as CSV instead of a JSON page."""

    queryset = Fixation.objects.all()
    serializer_class = FixationSerializer
    filterset_class = FixationFilter
    ordering_fields = ["reading", "index", "start_ms", "duration_ms"]
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[_CSV_PARAM],
        responses={(200, "application/json"): FixationSerializer(many=True),
                   (200, "text/csv"): OpenApiTypes.STR},
    )  # fmt: skip
    def list(self, request, *args, **kwargs):
        if request.accepted_renderer.format == "csv":
            queryset = self.filter_queryset(self.get_queryset())
            return fixations_csv_response(queryset, "fixations.csv")
        return super().list(request, *args, **kwargs)


class SaliencyMapFilter(django_filters.FilterSet):
    class Meta:
        model = SaliencyMap
        fields = ["lab", "kind", "reading", "image", "target_height", "target_width"]


class SaliencyMapViewSet(
    LabScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Cached saliency targets of your labs' readings and images. ``?image=ID&height=&width=``
    first makes (or finds) the image's map pooled over its readers (default size 640 x 512, the
    model's input), so the list then holds it;
    each map downloads as ``.npy`` (float32, sums to 1) or ``.png``."""

    queryset = SaliencyMap.objects.all()
    serializer_class = SaliencyMapSerializer
    filterset_class = SaliencyMapFilter
    ordering_fields = ["created_at", "target_height", "target_width"]

    @extend_schema(
        parameters=[
            *_SIZE_PARAMS,
            OpenApiParameter(
                "include_unused", bool, description="Pool readings left out of training too."
            ),
        ]
    )
    def list(self, request, *args, **kwargs):
        if "image" in request.query_params:
            q = _query(
                SaliencyQuerySerializer, request, ("image", "height", "width", "include_unused")
            )
            image = self.scope_images().filter(pk=q["image"]).first()
            if image is None:
                raise DRFValidationError({"image": ["No such image in your labs."]})
            pooled = _saliency(
                target_size=(q["height"], q["width"]), image=image,
                include_unused=q["include_unused"],
            )  # fmt: skip
            queryset = self.filter_queryset(self.get_queryset()).filter(pk=pooled.pk)
            page = self.paginate_queryset(queryset)
            return self.get_paginated_response(self.get_serializer(page, many=True).data)
        return super().list(request, *args, **kwargs)

    def scope_images(self):
        from apps.imaging.models import Image

        return Image.objects.filter(lab__in=list(self.lab_roles()))

    def _file_response(self, content: bytes, content_type: str, filename: str) -> HttpResponse:
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def npy(self, request, pk=None):
        """The map as a NumPy ``.npy`` file (float32, height x width, summing to 1)."""
        obj = self.get_object()
        with default_storage.open(obj.file_path, "rb") as fh:
            content = fh.read()
        return self._file_response(content, "application/octet-stream", f"saliency-{obj.pk}.npy")

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def png(self, request, pk=None):
        """The map as an 8-bit grayscale PNG (its maximum white)."""
        obj = self.get_object()
        png = services.saliency_map_png(saliency_map=obj)
        return self._file_response(png, "image/png", f"saliency-{obj.pk}.png")
