"""Readings and their fixations (JSON, or CSV with ``?format=csv``), and saliency maps of
readings and pooled per image (JSON, ``.npy``, ``.png``)."""

from __future__ import annotations

import csv
import functools
import json

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, renderers, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

from apps.core import storage
from apps.core.api import StrictSerializer
from apps.gaze import services
from apps.gaze.models import Fixation, Reading, SaliencyMap
from apps.labs.tenancy import IdFilter, LabScopedMixin, TenantFilterSet


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


READING_FIELDS = [field.name for field in Reading._meta.concrete_fields]


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

    @functools.cached_property
    def _base_url(self) -> str:
        # The routes' common start, reversed once per serializer (a list's rows share one)
        # rather than twice per row: a fifth of a list's CPU went to reverse() and
        # build_absolute_uri().
        path = reverse("saliency-map-list")
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def _url(self, obj: SaliencyMap, name: str) -> str:
        return f"{self._base_url}{obj.pk}/{name}/"

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


class ReadingFilter(TenantFilterSet):
    image_key = django_filters.CharFilter(field_name="image__key")
    reader = IdFilter(field_name="session__reader")

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

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":  # of the image and the session, what a row shows only
            queryset = queryset.only(*READING_FIELDS, "image__key", "session__reader__code")
        return queryset

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
    @action(
        detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, CSVRenderer],
        pagination_class=None, filter_backends=[],
    )  # fmt: skip
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
        found = _saliency(
            target_size=(size["height"], size["width"]), reading=reading, actor=request.user
        )
        return Response(SaliencyMapSerializer(found, context={"request": request}).data)


class FixationFilter(TenantFilterSet):
    session = IdFilter(field_name="reading__session")
    recording = IdFilter(field_name="reading__recording")
    image = IdFilter(field_name="reading__image")

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

    def get_renderers(self):
        # CSV is the list's alternative only; one fixation is JSON.
        if self.action == "list":
            return [renderers.JSONRenderer(), CSVRenderer()]
        return [renderers.JSONRenderer()]

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


class SaliencyMapFilter(TenantFilterSet):
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
                include_unused=q["include_unused"], actor=request.user,
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
        content = storage.read_bytes(obj.file_path)
        return self._file_response(content, "application/octet-stream", f"saliency-{obj.pk}.npy")

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def png(self, request, pk=None):
        """The map as an 8-bit grayscale PNG (its maximum white)."""
        obj = self.get_object()
        png = services.saliency_map_png(saliency_map=obj)
        return self._file_response(png, "image/png", f"saliency-{obj.pk}.png")
