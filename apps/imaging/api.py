"""REST API of images: list, retrieve, upload (multipart: answered 202 with an upload batch that
a worker ingests), upload batches' status, label, bulk labels (CSV), delete, file downloads, and
the lab's class vocabulary."""

from __future__ import annotations

import json

import django_filters
import numpy as np
from django.conf import settings
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core import storage
from apps.core.api import StrictSerializer, error_body
from apps.core.storage import StorageError, spooled_temp
from apps.imaging import services
from apps.imaging.models import Image, ImageClass, UploadBatch, UploadBatchFile
from apps.labs.api import UserLabField
from apps.labs.roles import Action
from apps.labs.tenancy import IdFilter, LabScopedMixin, TenantFilterSet


class LabChoiceSerializer(serializers.Serializer):
    lab = UserLabField()


class ImageSerializer(serializers.ModelSerializer):
    pixel_spacing = serializers.SerializerMethodField(help_text="Row and column spacing in mm.")
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    preview_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    array_url = serializers.SerializerMethodField()
    dicom_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "lab", "key", "label", "findings", "source_format", "width", "height",
            "pixel_spacing", "view_position", "photometric_interpretation", "bits_stored",
            "metadata", "pixel_sha256", "burned_in_annotation", "uploaded_by", "created_at",
            "preview_url", "thumbnail_url", "array_url", "dicom_url",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(
        serializers.ListField(child=serializers.FloatField(), allow_null=True, max_length=2)
    )
    def get_pixel_spacing(self, image: Image) -> list[float] | None:
        if image.pixel_spacing_row is None:
            return None
        return [image.pixel_spacing_row, image.pixel_spacing_col]

    def _url(self, image: Image, name: str) -> str:
        return f"/api/v1/images/{image.pk}/{name}/"

    def get_preview_url(self, image: Image) -> str:
        return self._url(image, "preview")

    def get_thumbnail_url(self, image: Image) -> str:
        return self._url(image, "thumbnail")

    def get_array_url(self, image: Image) -> str:
        return self._url(image, "array")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_dicom_url(self, image: Image) -> str | None:
        return self._url(image, "dicom") if image.dicom_path else None


class ImageUploadSerializer(StrictSerializer):
    lab = UserLabField()
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        allow_empty=False,
        help_text="DICOM (.dcm or no extension), PNG, JPEG or .zip files; repeat the field.",
    )
    key = serializers.CharField(
        required=False, max_length=200, help_text="Key of a single file (default: its stem)."
    )
    label = serializers.CharField(
        required=False, allow_blank=True, max_length=60, help_text="Label for every file."
    )


class ImageUploadResultSerializer(serializers.Serializer):
    file = serializers.CharField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "rejected"])
    message = serializers.CharField()


class UploadBatchImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "key", "label", "url", "thumbnail_url"]
        read_only_fields = fields

    def get_url(self, image: Image) -> str:
        return f"/api/v1/images/{image.pk}/"

    def get_thumbnail_url(self, image: Image) -> str:
        return f"/api/v1/images/{image.pk}/thumbnail/"


class UploadBatchFileSerializer(serializers.ModelSerializer):
    file = serializers.CharField(source="filename")
    image = UploadBatchImageSerializer(allow_null=True)

    class Meta:
        model = UploadBatchFile
        fields = ["id", "file", "size", "parent", "status", "message", "image", "finished_at"]
        read_only_fields = fields


class UploadBatchSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    status_url = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = UploadBatch
        fields = [
            "id", "lab", "status", "status_url", "progress", "files_total", "files_done",
            "created", "duplicates", "rejected", "error", "created_by", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status_url(self, batch: UploadBatch) -> str:
        return f"/api/v1/image-uploads/{batch.pk}/"

    @extend_schema_field(
        inline_serializer(
            "UploadBatchProgress",
            {
                "done": serializers.IntegerField(),
                "total": serializers.IntegerField(),
                "percent": serializers.IntegerField(),
            },
        )
    )
    def get_progress(self, batch: UploadBatch) -> dict:
        return {"done": batch.files_done, "total": batch.files_total, "percent": batch.percent}


class UploadBatchDetailSerializer(UploadBatchSerializer):
    files = serializers.SerializerMethodField(
        help_text="Every uploaded file, each zip followed by its members (with `parent`)."
    )

    class Meta(UploadBatchSerializer.Meta):
        fields = [*UploadBatchSerializer.Meta.fields, "files"]
        read_only_fields = fields

    @extend_schema_field(UploadBatchFileSerializer(many=True))
    def get_files(self, batch: UploadBatch) -> list[dict]:
        rows = batch.files.select_related("image").order_by("position", "member_index", "id")
        return UploadBatchFileSerializer(rows, many=True).data


class ImageUpdateSerializer(StrictSerializer):
    label = serializers.CharField(allow_blank=True, max_length=60, required=False)
    findings = serializers.DictField(child=serializers.BooleanField(), required=False)
    key = serializers.CharField(max_length=200, required=False)


class LabelsImportSerializer(StrictSerializer):
    lab = UserLabField()
    file = serializers.FileField(
        allow_empty_file=True,
        help_text="CSV with a key or dicom_id column, and a label column or one column per "
        "class (EGD-CXR master_sheet.csv: Normal, CHF, pneumonia).",
    )
    findings = serializers.CharField(
        required=False, allow_blank=True, help_text="Comma-separated columns to store as flags."
    )
    dry_run = serializers.BooleanField(
        required=False, default=False,
        help_text="Only say what would change (`changes`), and change nothing.",
    )  # fmt: skip


class LabelChangeSerializer(serializers.Serializer):
    image = serializers.IntegerField(source="image_id")
    key = serializers.CharField()
    line = serializers.IntegerField(help_text="The CSV line it comes from.")
    old_label = serializers.CharField()
    new_label = serializers.CharField()
    old_findings = serializers.DictField(child=serializers.BooleanField())
    new_findings = serializers.DictField(child=serializers.BooleanField())


class BinaryRenderer(renderers.BaseRenderer):
    """Lets a client ask for a file with any Accept header; errors still come as JSON."""

    media_type = "*/*"
    format = "bin"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class ImageFilter(TenantFilterSet):
    lab = IdFilter(field_name="lab")
    label = django_filters.CharFilter(
        method="filter_label", help_text="A class name (case-insensitive), or 'none'."
    )
    search = django_filters.CharFilter(
        field_name="key", lookup_expr="icontains", help_text="Part of the key."
    )

    class Meta:
        model = Image
        fields = ["lab", "label", "search", "view_position", "source_format",
                  "burned_in_annotation"]  # fmt: skip

    def filter_label(self, queryset, name, value):
        if value.lower() == "none":
            return queryset.filter(label="")
        return queryset.filter(label__iexact=value)


_FILE = {(200, "application/octet-stream"): OpenApiTypes.BINARY}


class ImageViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Chest X-rays of your labs, de-identified at upload. Researchers and admins upload, label
    and delete; every member reads."""

    queryset = Image.objects.select_related("uploaded_by")
    serializer_class = ImageSerializer
    filterset_class = ImageFilter
    ordering_fields = ["created_at", "key", "label", "width", "height"]
    parser_classes = [MultiPartParser, JSONParser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _lab_from_body(self, request):
        choice = LabChoiceSerializer(data=request.data, context=self.get_serializer_context())
        choice.is_valid(raise_exception=True)
        lab = choice.validated_data["lab"]
        self.require_lab_action(lab)
        return lab

    @extend_schema(
        request={"multipart/form-data": ImageUploadSerializer},
        responses={
            202: UploadBatchDetailSerializer,
            400: inline_serializer(
                "ImageUploadRejected",
                {
                    "error": serializers.DictField(),
                    # only when files were refused (not for a missing or invalid field)
                    "results": ImageUploadResultSerializer(many=True, required=False),
                },
            ),
        },
        description="Upload one or many files (field `files`, repeated). The files are stored "
        "as they are and the answer is 202 at once, with the upload batch (`status_url`, also "
        "in the `Location` header); a worker then ingests them one by one, and the batch's "
        "status reports each file's result: stored, duplicate, or rejected with the reason. "
        "When every file is empty or over the size limit, nothing is stored and the answer is "
        "400 (413 when all are too large) naming each file.",
    )
    def create(self, request, *args, **kwargs):
        lab = self._lab_from_body(request)
        data = ImageUploadSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        files = data.validated_data["files"]
        key = data.validated_data.get("key")
        if key and len(files) > 1:
            raise serializers.ValidationError({"key": ["A key names one file; upload it alone."]})
        label = data.validated_data.get("label", "")
        uploads = [services.Upload.from_django(f, key=key, label=label) for f in files]
        try:
            batch = services.upload_batch_create(lab=lab, created_by=request.user, uploads=uploads)
        except services.UploadRefused as exc:
            return upload_refused_response(exc)
        body = UploadBatchDetailSerializer(batch, context=self.get_serializer_context()).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )

    @extend_schema(request=ImageUpdateSerializer, responses=ImageSerializer)
    def partial_update(self, request, *args, **kwargs):
        image = self.get_object()
        data = ImageUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        image = services.image_update(image=image, actor=request.user, **data.validated_data)
        return Response(ImageSerializer(image, context=self.get_serializer_context()).data)

    def perform_destroy(self, instance):
        services.image_delete(image=instance, actor=self.request.user)

    @extend_schema(
        request={"multipart/form-data": LabelsImportSerializer},
        responses=inline_serializer(
            "LabelsImportReport",
            {
                "rows": serializers.IntegerField(),
                "updated": serializers.IntegerField(
                    help_text="Images changed (with dry_run: that would change)."
                ),
                "unchanged": serializers.IntegerField(),
                "unknown_keys": serializers.ListField(child=serializers.CharField()),
                "dry_run": serializers.BooleanField(required=False, help_text="With dry_run."),
                "changes": LabelChangeSerializer(
                    many=True,
                    required=False,
                    help_text="With dry_run: each image that would change (at most 1000).",
                ),
            },
        ),  # fmt: skip
        description="Set labels in bulk from a CSV; all rows or none. Keys naming no image of "
        "the lab are skipped and listed. With `dry_run`, nothing is written and `changes` "
        "lists what would change.",
    )
    @action(detail=False, methods=["post"], url_path="labels")
    def labels(self, request):
        lab = self._lab_from_body(request)
        data = LabelsImportSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > settings.UPLOAD_MAX_BYTES:
            raise serializers.ValidationError({"file": [f"{upload.name}: is too large."]})
        columns = [c for c in data.validated_data.get("findings", "").split(",") if c.strip()]
        if data.validated_data["dry_run"]:
            plan = services.image_labels_preview_csv(
                lab=lab, actor=request.user, file=upload.file, filename=upload.name,
                finding_columns=columns,
            )  # fmt: skip
            return Response(
                {
                    "rows": plan.rows,
                    "updated": len(plan.changes),
                    "unchanged": plan.unchanged,
                    "unknown_keys": plan.unknown_keys[:1000],
                    "dry_run": True,
                    "changes": LabelChangeSerializer(plan.changes[:1000], many=True).data,
                }
            )
        report = services.image_labels_import_csv(
            lab=lab, actor=request.user, file=upload.file, filename=upload.name,
            finding_columns=columns,
        )  # fmt: skip
        return Response(
            {
                "rows": report.rows,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "unknown_keys": report.unknown_keys[:1000],
            }
        )

    def _file(self, path: str, content_type: str, filename: str):
        if not path:
            raise Http404("This image has no such file.")
        try:
            handle = storage.open_file(path)
        except storage.StorageError:
            raise Http404("The file is missing from storage.") from None
        response = FileResponse(handle, content_type=content_type, filename=filename)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, BinaryRenderer])
    def preview(self, request, pk=None):
        image = self.get_object()
        return self._file(image.preview_path, "image/png", f"{image.key}.png")

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, BinaryRenderer])
    def thumbnail(self, request, pk=None):
        image = self.get_object()
        return self._file(image.thumbnail_path, "image/png", f"{image.key}-thumb.png")

    @extend_schema(
        responses=_FILE,
        description="The float32 array at full resolution (NumPy .npy), in [0, 1], 1 = white; "
        "decoded from the de-identified DICOM (or, for a PNG or JPEG, from its 16-bit PNG).",
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, BinaryRenderer])
    def array(self, request, pk=None):
        image = self.get_object()
        filename = f"{image.key}.npy"
        if image.array_path.lower().endswith(".npy"):  # stored before imaging_compact_arrays
            return self._file(image.array_path, "application/octet-stream", filename)
        try:
            array = services.image_array(image=image)
        except StorageError:
            raise Http404("The file is missing from storage.") from None
        out = spooled_temp()
        np.save(out, array, allow_pickle=False)
        del array
        out.seek(0)
        response = FileResponse(out, content_type="application/octet-stream", filename=filename)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(
        responses={(200, "application/dicom"): OpenApiTypes.BINARY},
        description="The de-identified DICOM file (404 for images uploaded as PNG or JPEG).",
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, BinaryRenderer])
    def dicom(self, request, pk=None):
        image = self.get_object()
        return self._file(image.dicom_path, "application/dicom", f"{image.key}.dcm")


def upload_refused_response(exc: services.UploadRefused) -> Response:
    """400 (413 when every file is too large) naming each file; nothing was stored."""
    results = exc.results
    summary = results[0].message if len(results) == 1 else f"{len(results)} files were rejected."
    fields = {"files": [r.message for r in results]}
    code = 413 if all(r.too_large for r in results) else 400
    body = {
        **error_body("invalid", summary, fields),
        "results": [
            {"file": r.filename, "status": r.status, "message": r.message} for r in results
        ],
    }
    return Response(body, status=code)


class UploadBatchViewSet(
    LabScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Upload batches of your labs: status, progress (uploaded files done of total) and each
    file's result. Created by `POST /api/v1/images/`."""

    queryset = UploadBatch.objects.select_related("created_by")
    serializer_class = UploadBatchSerializer
    filterset_fields = ["lab", "status"]
    ordering_fields = ["created_at", "status"]
    http_method_names = ["get", "head", "options"]

    def get_serializer_class(self):
        return UploadBatchDetailSerializer if self.action == "retrieve" else UploadBatchSerializer


class ImageClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImageClass
        fields = ["id", "lab", "name", "position", "created_at"]
        read_only_fields = fields


class ImageClassCreateSerializer(StrictSerializer):
    lab = UserLabField()
    name = serializers.CharField(max_length=60)


class ImageClassRenameSerializer(StrictSerializer):
    name = serializers.CharField(max_length=60, help_text="The new name.")


class ImageClassViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The label vocabulary of your labs (by default Normal, CHF, Pneumonia). Researchers and
    admins add classes, rename them (the images carrying one are relabelled with it) and remove
    those no image carries."""

    queryset = ImageClass.objects.select_related("lab")
    serializer_class = ImageClassSerializer
    filterset_fields = ["lab"]
    ordering_fields = ["position", "name"]
    write_action = Action.WRITE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=ImageClassRenameSerializer, responses=ImageClassSerializer)
    def partial_update(self, request, *args, **kwargs):
        image_class = self.get_object()
        data = ImageClassRenameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        image_class = services.image_class_rename(
            image_class=image_class, actor=request.user, name=data.validated_data["name"]
        )
        return Response(ImageClassSerializer(image_class).data)

    @extend_schema(request=ImageClassCreateSerializer, responses={201: ImageClassSerializer})
    def create(self, request, *args, **kwargs):
        data = ImageClassCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        self.require_lab_action(data.validated_data["lab"])
        image_class = services.image_class_create(actor=request.user, **data.validated_data)
        return Response(ImageClassSerializer(image_class).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.image_class_delete(image_class=instance, actor=self.request.user)
