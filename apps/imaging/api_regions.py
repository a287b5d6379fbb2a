"""REST API of image regions: import a regions file (EGD-CXR's bounding_boxes.csv, a REFLACX
reading's anomaly_location_ellipses.csv, or a boxes CSV), list them (``?image=``), read and
delete one."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.core.api import StrictSerializer, error_body
from apps.imaging import services
from apps.imaging.api import LabChoiceSerializer
from apps.imaging.models import ImageRegion
from apps.imaging.services.regions import FORMATS, REGIONS_MAX_BYTES
from apps.labs.api import UserLabField
from apps.labs.tenancy import IdFilter, LabScopedMixin, TenantFilterSet


class ImageRegionSerializer(serializers.ModelSerializer):
    image_key = serializers.CharField(source="image.key", read_only=True)

    class Meta:
        model = ImageRegion
        fields = ["id", "lab", "image", "image_key", "name", "kind", "x1", "y1", "x2", "y2",
                  "source", "group", "attributes", "created_at"]  # fmt: skip
        read_only_fields = fields


class RegionsImportSerializer(StrictSerializer):
    lab = UserLabField()
    file = serializers.FileField(
        allow_empty_file=True, use_url=False,
        help_text=f"The regions file (UTF-8 CSV, at most {REGIONS_MAX_BYTES:,} bytes).",
    )  # fmt: skip
    format = serializers.ChoiceField(
        choices=list(FORMATS),
        help_text="egd: EGD-CXR bounding_boxes.csv (dicom_id, bbox_name, x1, x2, y1, y2); "
        "reflacx: one reading's anomaly_location_ellipses.csv (xmin, ymin, xmax, ymax, "
        "certainty, one True/False column per finding; give `key`); boxes: image (or key), "
        "name, x1, y1, x2, y2 and an optional kind (box or ellipse). Coordinates are original "
        "image pixels.",
    )
    key = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="reflacx only: the key of the image the ellipses were drawn on.",
    )  # fmt: skip
    group = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="Stored with the regions; the import replaces the regions of the same "
        "format and group (e.g. a REFLACX reading id, to keep each reader's ellipses).",
    )  # fmt: skip
    skip_unknown = serializers.BooleanField(
        required=False, default=False,
        help_text="Leave out keys naming no image of the lab (listed in the answer) instead "
        "of refusing the file.",
    )  # fmt: skip


class ImageRegionFilter(TenantFilterSet):
    lab = IdFilter(field_name="lab")
    image = IdFilter(field_name="image")
    name = django_filters.CharFilter(field_name="name", lookup_expr="iexact")

    class Meta:
        model = ImageRegion
        fields = ["lab", "image", "source", "kind", "group", "name"]


def _too_large(message: str) -> Response:
    return Response(error_body("too_large", message, {"file": [message]}), status=413)


class ImageRegionViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Regions of your labs' images (anatomical boxes, findings' ellipses, phantom masks) in
    original image pixels. Researchers and admins import and delete them; every member reads
    them. The share of dwell time and model saliency in each region of an evaluation's images is
    at `/api/v1/evaluations/{id}/regions/`."""

    queryset = ImageRegion.objects.select_related("image")
    serializer_class = ImageRegionSerializer
    filterset_class = ImageRegionFilter
    ordering_fields = ["created_at", "name", "source"]
    parser_classes = [MultiPartParser, JSONParser]
    http_method_names = ["get", "post", "delete", "head", "options"]

    @extend_schema(
        request={"multipart/form-data": RegionsImportSerializer},
        responses=inline_serializer(
            "RegionsImportReport",
            {
                "source": serializers.CharField(),
                "group": serializers.CharField(),
                "images": serializers.IntegerField(help_text="Images whose regions were set."),
                "regions": serializers.IntegerField(help_text="Regions stored."),
                "replaced": serializers.IntegerField(help_text="Regions of theirs removed."),
                "skipped_keys": serializers.ListField(child=serializers.CharField()),
            },
        ),
        description="Import a regions file; all or nothing. It replaces, on each image it "
        "names, the regions of the same format and group. A malformed line or a coordinate "
        "outside its image is a 400 naming the line and column; keys naming no image of the "
        "lab are a 400 listing the first few (unless `skip_unknown`); a file over the limit is "
        "a 413.",
    )
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_file(self, request):
        choice = LabChoiceSerializer(data=request.data, context=self.get_serializer_context())
        choice.is_valid(raise_exception=True)
        lab = choice.validated_data["lab"]
        self.require_lab_action(lab)
        data = RegionsImportSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        upload = fields["file"]
        if upload.size > REGIONS_MAX_BYTES:
            return _too_large(
                f"{upload.name}: is {upload.size:,} bytes, over the limit of "
                f"{REGIONS_MAX_BYTES:,} bytes for a regions file."
            )
        try:
            report = services.regions_import(
                lab=lab, actor=request.user, fmt=fields["format"], file=upload.file,
                filename=upload.name, key=fields.get("key") or None,
                group=fields.get("group", ""), skip_unknown=fields["skip_unknown"],
            )  # fmt: skip
        except services.RegionsTooLarge as exc:
            return _too_large(exc.message_dict["file"][0])
        return Response(
            {
                "source": report.source,
                "group": report.group,
                "images": report.images,
                "regions": report.regions,
                "replaced": report.replaced,
                "skipped_keys": report.skipped_keys[:1000],
            }
        )

    def perform_destroy(self, instance):
        services.region_delete(region=instance, actor=self.request.user)
