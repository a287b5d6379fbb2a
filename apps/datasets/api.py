"""REST API of dataset snapshots: list, create (202 while it builds), status, export, delete."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import StrictSerializer, error_body
from apps.datasets import selectors, services
from apps.datasets.models import DatasetSnapshot
from apps.imaging.api import BinaryRenderer
from apps.labs.api import UserLabField
from apps.labs.tenancy import MAX_ID, LabScopedMixin


class SnapshotStatusSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetSnapshot
        fields = ["id", "status", "progress", "error", "content_hash", "built_at"]
        read_only_fields = fields


@extend_schema_field(
    {
        "type": "object",
        "description": "Images per split (train, val, test), then per class.",
        "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
    }
)
class CountsField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "object",
        "description": "The choices as normalised: labels, readers, sessions, min_grade, "
        "use_for_training_only, uploaded_after, uploaded_before, resolution, sigma_deg, "
        "target_reader, seed_mode, split, seed.",
        "additionalProperties": True,
    }
)
class ChoicesField(serializers.JSONField):
    pass


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    choices = ChoicesField(read_only=True)
    counts = CountsField(read_only=True)
    classes = serializers.ListField(child=serializers.CharField(), read_only=True)
    left_out = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    export_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id", "lab", "name", "status", "status_url", "progress", "error", "content_hash",
            "classes", "choices", "counts", "left_out", "size_bytes", "export_url",
            "created_by", "created_at", "started_at", "built_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "description": "Images the filters left out: not_in_classes, outside_dates, "
            "no_reading.",
            "additionalProperties": {"type": "integer"},
        }
    )
    def get_left_out(self, snapshot: DatasetSnapshot) -> dict:
        return (snapshot.selection or {}).get("left_out", {})

    def get_status_url(self, snapshot: DatasetSnapshot) -> str:
        return f"/api/v1/snapshots/{snapshot.pk}/status/"

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_export_url(self, snapshot: DatasetSnapshot) -> str | None:
        if snapshot.status != DatasetSnapshot.Status.READY:
            return None
        return f"/api/v1/snapshots/{snapshot.pk}/export/"


class SnapshotDetailSerializer(SnapshotSerializer):
    identical_to = serializers.SerializerMethodField()

    class Meta(SnapshotSerializer.Meta):
        fields = [*SnapshotSerializer.Meta.fields, "identical_to"]
        read_only_fields = fields

    def get_identical_to(self, snapshot: DatasetSnapshot) -> list[int]:
        """Other ready snapshots of the lab with the same content hash."""
        return selectors.snapshot_identical(snapshot=snapshot)


class SnapshotCreateSerializer(StrictSerializer):
    lab = UserLabField()
    name = serializers.CharField(max_length=200)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, max_length=100,
        help_text="Classes to include (default: all of the lab's), in the lab's order.",
    )  # fmt: skip
    readers = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, max_length=1000,
        help_text="Reader codes whose readings count (default: all).",
    )  # fmt: skip
    sessions = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False,
        max_length=10000, help_text="Reading session ids whose readings count (default: all).",
    )  # fmt: skip
    min_grade = serializers.ChoiceField(
        choices=services.GRADES, default="usable", help_text="Lowest reading quality grade."
    )
    use_for_training_only = serializers.BooleanField(
        default=True, help_text="Only readings flagged use_for_training."
    )
    uploaded_after = serializers.DateField(required=False, allow_null=True)
    uploaded_before = serializers.DateField(required=False, allow_null=True)
    resolution = serializers.ListField(
        child=serializers.IntegerField(min_value=16, max_value=services.MAX_SIDE),
        min_length=2, max_length=2, required=False,
        help_text="Model input [height, width], multiples of 16 (default [640, 512]).",
    )  # fmt: skip
    sigma_deg = serializers.FloatField(
        min_value=0.1, max_value=10.0, default=1.0,
        help_text="Gaussian sigma in degrees of visual angle.",
    )  # fmt: skip
    target_reader = serializers.CharField(
        max_length=60, required=False, allow_null=True, allow_blank=True,
        help_text="A reader code: targets from that reader's readings only (default: pooled "
        "over the readers chosen).",
    )  # fmt: skip
    seed_mode = serializers.BooleanField(
        default=False, help_text="The original MT-UNet preprocessing (pad and stride, raw-sample "
        "counts blurred with the 501-px kernel)."
    )  # fmt: skip
    split = serializers.ChoiceField(
        choices=services.SPLIT_RULES, default="original",
        help_text="The 2/1/7 rule by image (original) or by patient.",
    )  # fmt: skip
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)


class SnapshotViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Dataset snapshots of your labs: immutable, content-hashed freezes of images, labels,
    targets and splits at a model resolution. Researchers and admins create and delete them;
    every member reads and exports them."""

    queryset = DatasetSnapshot.objects.select_related("created_by")
    serializer_class = SnapshotSerializer
    filterset_fields = ["lab", "status"]
    ordering_fields = ["created_at", "name", "status"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_serializer_class(self):
        return SnapshotDetailSerializer if self.action == "retrieve" else SnapshotSerializer

    @extend_schema(
        request=SnapshotCreateSerializer,
        responses={202: SnapshotDetailSerializer},
        description="Choose images and target options; the images are selected and split at "
        "once (400 naming what is missing for an empty split or a class without a training "
        "image), and the build runs on a worker (queue `default`): the answer is 202 with "
        "the snapshot (`status_url`, also in the `Location` header).",
    )
    def create(self, request, *args, **kwargs):
        data = SnapshotCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        lab = fields.pop("lab")
        self.require_lab_action(lab)
        snapshot = services.snapshot_create(
            lab=lab, actor=request.user, name=fields.pop("name"), **fields
        )
        body = SnapshotDetailSerializer(snapshot, context=self.get_serializer_context()).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )

    @extend_schema(responses=SnapshotStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """The build's status and progress (0-100), cheap enough to poll."""
        return Response(SnapshotStatusSerializer(self.get_object()).data)

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            409: inline_serializer("SnapshotNotReady", {"error": serializers.DictField()}),
        },
        description="The built snapshot as a zip: `manifest.json` (ml.manifest/1), "
        "`arrays/<sha256>.npy` and a `README.txt` saying what was chosen.",
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, BinaryRenderer])
    def export(self, request, pk=None):
        snapshot = self.get_object()
        if snapshot.status != DatasetSnapshot.Status.READY:
            message = f"Snapshot {snapshot.name!r} is {snapshot.status}: only a ready one exports."
            return Response(error_body("conflict", message), status=status.HTTP_409_CONFLICT)
        handle = services.snapshot_export_zip(snapshot=snapshot)
        filename = f"snapshot-{snapshot.pk}-{snapshot.content_hash[:12]}.zip"
        response = FileResponse(handle, content_type="application/zip", filename=filename)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def perform_destroy(self, instance):
        services.snapshot_delete(snapshot=instance)
