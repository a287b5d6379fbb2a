"""REST API of evaluations: create (202), status, the summary and classification metrics, the
per-image rows (JSON, or CSV with ``?format=csv``), each image's stored map, comparisons with
paired tests, and delete."""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.core import storage
from apps.core.api import StrictSerializer
from apps.datasets.models import SnapshotItem
from apps.evaluation import selectors, services
from apps.evaluation.models import METRICS, Evaluation, EvaluationImage
from apps.gaze.api.readings import CSVRenderer
from apps.imaging.api import BinaryRenderer
from apps.labs.tenancy import LabScopedMixin
from apps.training.models import ModelVersion

SUMMARY_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "description": "n_images, n_multi_reader, metrics (names), model, centre_bias, ceiling "
    "(null without images read by two or more readers), model_readers {code: ...}, readers "
    "{code: that reader against the pool of the others}, reader_images, notes. Each row: per "
    "metric n, mean, median, std, ci95_low, ci95_high.",
}


@extend_schema_field(SUMMARY_SCHEMA)
class SummaryField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "accuracy, per_class, auc (per class, micro, macro), f1, "
                      "confusion matrix, roc curves."})  # fmt: skip
class ClassificationField(serializers.JSONField):
    pass


@extend_schema_field(OpenApiTypes.INT)
class VersionOfUserField(serializers.PrimaryKeyRelatedField):
    """A model version of a lab the requesting user belongs to; others read as missing."""

    def get_queryset(self):
        from apps.labs.selectors import lab_list_for_user

        labs = lab_list_for_user(user=self.context["request"].user)
        return ModelVersion.objects.filter(lab__in=labs).select_related("snapshot")


@extend_schema_field(OpenApiTypes.INT)
class SnapshotOfUserField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        from apps.datasets.models import DatasetSnapshot
        from apps.labs.selectors import lab_list_for_user

        labs = lab_list_for_user(user=self.context["request"].user)
        return DatasetSnapshot.objects.filter(lab__in=labs)


class EvaluationStatusSerializer(serializers.ModelSerializer):
    progress = serializers.IntegerField(read_only=True, help_text="0-100")

    class Meta:
        model = Evaluation
        fields = ["id", "status", "done", "total", "progress", "heartbeat_at", "attempts",
                  "error"]  # fmt: skip
        read_only_fields = fields


class EvaluationSerializer(serializers.ModelSerializer):
    progress = serializers.IntegerField(read_only=True, help_text="0-100")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    classes = serializers.ListField(child=serializers.CharField(), read_only=True)
    status_url = serializers.SerializerMethodField()
    images_url = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = [
            "id", "lab", "name", "version", "snapshot", "split", "automatic", "status",
            "status_url", "done", "total", "progress", "attempts", "device", "seconds", "classes",
            "error", "images_url", "created_by", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status_url(self, evaluation: Evaluation) -> str:
        return f"/api/v1/evaluations/{evaluation.pk}/status/"

    def get_images_url(self, evaluation: Evaluation) -> str:
        return f"/api/v1/evaluations/{evaluation.pk}/images/"


class EvaluationDetailSerializer(EvaluationSerializer):
    summary = SummaryField(read_only=True)
    classification = ClassificationField(read_only=True)

    class Meta(EvaluationSerializer.Meta):
        fields = [*EvaluationSerializer.Meta.fields, "summary", "classification", "traceback"]
        read_only_fields = fields


class EvaluationCreateSerializer(StrictSerializer):
    version = VersionOfUserField(help_text="A model version of one of your labs.")
    snapshot = SnapshotOfUserField(
        required=False, help_text="A ready snapshot of the version's lab with the same classes "
        "(default: the one it was trained on).",
    )  # fmt: skip
    split = serializers.ChoiceField(choices=SnapshotItem.Split.values, default="test")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


@extend_schema_field({"type": "object", "additionalProperties": {"type": "number",
                      "nullable": True}})  # fmt: skip
class MetricsMapField(serializers.JSONField):
    pass


class EvaluationImageSerializer(serializers.ModelSerializer):
    metrics = serializers.SerializerMethodField()
    probs = serializers.ListField(child=serializers.FloatField(), read_only=True)
    readers = serializers.ListField(child=serializers.CharField(), read_only=True)
    reader_metrics = serializers.JSONField(read_only=True)
    centre_metrics = MetricsMapField(read_only=True)
    loo_metrics = serializers.JSONField(read_only=True)
    image = serializers.IntegerField(source="item.image_id", read_only=True, allow_null=True)
    map_url = serializers.SerializerMethodField()

    class Meta:
        model = EvaluationImage
        fields = ["id", "key", "image", "label", "pred", "correct", "probs", "metrics",
                  "readers", "reader_metrics", "centre_metrics", "loo_metrics",
                  "map_url"]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(MetricsMapField)
    def get_metrics(self, row: EvaluationImage) -> dict:
        return row.metrics()

    def get_map_url(self, row: EvaluationImage) -> str:
        return f"/api/v1/evaluation-images/{row.pk}/map/"


CSV_COLUMNS = ["key", "label", "pred", "correct", *METRICS]

_IMAGE_PARAMS = [
    OpenApiParameter(
        "ordering",
        str,
        description="A metric (kl, cc, nss, ...) or key, "
        "'-' first for descending. Images without the metric come last.",
    ),  # fmt: skip
    OpenApiParameter("label", int, description="True class index."),
    OpenApiParameter("correct", bool, description="Right (true) or wrong (false) predictions."),
    OpenApiParameter("format", str, enum=["json", "csv"], description="csv: every row, as CSV."),
]


class _Echo:
    def write(self, value: str) -> str:
        return value


class ComparisonQuerySerializer(StrictSerializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=2,
        max_length=services.compare.MAX_COMPARED,
        help_text="Evaluation ids; the first is compared with each of the others.",
    )  # fmt: skip


class RegionShareSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="egd, reflacx, boxes or phantom.")
    name = serializers.CharField()
    kinds = serializers.ListField(child=serializers.CharField())
    area_share = serializers.FloatField(
        allow_null=True, help_text="The region's share of the image's area (chance level)."
    )
    model_share = serializers.FloatField(
        allow_null=True, help_text="Share of the model's saliency mass on the image in the region."
    )
    dwell_share = serializers.FloatField(
        allow_null=True, help_text="Share of the pooled readers' fixation time in the region."
    )
    reader_dwell_shares = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="Reader code -> share."
    )


class RegionImageSerializer(serializers.Serializer):
    evaluation_image = serializers.IntegerField()
    key = serializers.CharField()
    image = serializers.IntegerField()
    model_on_image = serializers.FloatField(
        allow_null=True, help_text="Share of the map's mass on the image (not the padding)."
    )
    readers = serializers.ListField(child=serializers.CharField())
    regions = RegionShareSerializer(many=True)


class RegionAggregateSerializer(serializers.Serializer):
    source = serializers.CharField()
    name = serializers.CharField()
    n_images = serializers.IntegerField(help_text="Images that have the region.")
    area_share = serializers.FloatField(allow_null=True)
    model_share = serializers.FloatField(allow_null=True, help_text="Mean over images.")
    n_model = serializers.IntegerField()
    dwell_share = serializers.FloatField(allow_null=True, help_text="Mean over images.")
    n_dwell = serializers.IntegerField()
    reader_dwell_shares = serializers.DictField(child=serializers.FloatField(allow_null=True))
    reader_n = serializers.DictField(child=serializers.IntegerField())


class EvaluationRegionsSerializer(serializers.Serializer):
    evaluation = serializers.IntegerField()
    split = serializers.CharField()
    resolution = serializers.ListField(child=serializers.IntegerField())
    mode = serializers.CharField(help_text="letterbox, or pad_and_stride (seed mode).")
    n_images = serializers.IntegerField(help_text="Images of the evaluation with regions.")
    readers = serializers.ListField(child=serializers.CharField())
    regions = RegionAggregateSerializer(many=True, help_text="Per (source, name).")
    images = RegionImageSerializer(many=True)


class _NotReady(APIException):
    status_code = 409
    default_code = "not_ready"


class EvaluationViewSet(
    LabScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin, viewsets.GenericViewSet,
):  # fmt: skip
    """Evaluations of your labs' model versions on a snapshot split (run on `gpu` workers).
    Researchers and admins start and delete them; every member reads them."""

    queryset = Evaluation.objects.select_related("created_by")
    serializer_class = EvaluationSerializer
    filterset_fields = ["lab", "status", "version", "snapshot", "split"]
    ordering_fields = ["created_at", "status", "name"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_serializer_class(self):
        return EvaluationDetailSerializer if self.action == "retrieve" else EvaluationSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":  # what only the detail shows
            queryset = queryset.defer("summary", "classification", "traceback")
        return queryset

    @extend_schema(
        request=EvaluationCreateSerializer, responses={202: EvaluationDetailSerializer},
        description="Evaluate a model version on a split of a ready snapshot (default: the "
        "test split of the snapshot it was trained on). Runs on a `gpu` worker: 202 with "
        "`status_url` (also the `Location` header).",
    )  # fmt: skip
    def create(self, request, *args, **kwargs):
        data = EvaluationCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        version = fields.pop("version")
        self.require_lab_action(version.lab)
        evaluation = services.evaluation_create(
            version=version, snapshot=fields.get("snapshot"), split=fields["split"],
            actor=request.user, name=fields.get("name", ""),
        )  # fmt: skip
        body = EvaluationDetailSerializer(evaluation, context=self.get_serializer_context()).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )

    def perform_destroy(self, instance):
        services.evaluation_delete(evaluation=instance)

    @extend_schema(responses=EvaluationStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """State and images scored: cheap enough to poll."""
        return Response(EvaluationStatusSerializer(self.get_object()).data)

    @extend_schema(
        parameters=_IMAGE_PARAMS,
        responses={200: EvaluationImageSerializer(many=True), (200, "text/csv"): OpenApiTypes.STR},
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def images(self, request, pk=None):
        """The per-image rows: prediction, the model's metrics against the pooled map, against
        each reader, the centre bias's and each reader's against the others. Sortable by any
        metric, filterable by class and by right or wrong prediction, paginated."""
        evaluation = self.get_object()
        try:
            rows = selectors.evaluation_images(
                evaluation=evaluation, ordering=request.query_params.get("ordering", "key"),
                label=request.query_params.get("label"),
                correct=request.query_params.get("correct"),
            )  # fmt: skip
        except ValueError as exc:
            raise ValidationError({exc.args[0]: [exc.args[1]]}) from None
        if request.accepted_renderer.format == "csv":
            return _images_csv(rows, f"evaluation-{evaluation.pk}-images.csv")
        page = self.paginate_queryset(rows.select_related("item"))
        return self.get_paginated_response(EvaluationImageSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ids",
                int,
                many=True,
                required=True,
                description="Two to six evaluation ids on one snapshot split: ?ids=3&ids=5.",
            )
        ],  # fmt: skip
        responses={200: OpenApiTypes.OBJECT},
        description="Paired tests of each evaluation against the first on the per-image "
        "metrics: Wilcoxon signed-rank (statistic, p_value), the matched-pairs rank-biserial "
        "effect size, Holm-corrected p (p_holm), the paired bootstrap 95 % interval of the mean "
        "difference (a - b, the first minus the other), and which is better. Evaluations on "
        "different snapshot splits are refused (400) with the reason.",
    )
    @action(detail=False, methods=["get"])
    def compare(self, request):
        query = ComparisonQuerySerializer(data={"ids": request.query_params.getlist("ids")})
        query.is_valid(raise_exception=True)
        ids = query.validated_data["ids"]
        found = {e.pk: e for e in self.get_queryset().filter(pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationError({"ids": [f"No evaluation {missing[0]} in your labs."]})
        return Response(services.evaluations_compare(evaluations=[found[i] for i in ids]))

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"],
                                     description="csv: one row per image and region.")],
        responses={200: EvaluationRegionsSerializer, (200, "text/csv"): OpenApiTypes.STR,
                   409: OpenApiResponse(OpenApiTypes.OBJECT,
                                        description="The evaluation has not succeeded.")},
        description="For each image of the evaluation that has regions (`/api/v1/image-regions/`"
        "): per region, the share of the model's saliency mass (its stored map, at the "
        "snapshot's resolution), of each reader's fixation time and of the pooled readers' in "
        "the region, beside the region's share of the image's area; and per region name the "
        "means over the images. Shares are null where there is nothing to share.",
    )  # fmt: skip
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def regions(self, request, pk=None):
        evaluation = self.get_object()
        try:
            result = services.evaluation_regions(evaluation=evaluation)
        except services.EvaluationNotReady as exc:
            raise _NotReady(str(exc)) from None
        if request.accepted_renderer.format != "csv":
            return Response(result)
        header, rows = services.regions.evaluation_regions_rows(result)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        filename = f"evaluation-{evaluation.pk}-regions.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class EvaluationImageViewSet(
    LabScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Per-image rows of your labs' evaluations (``?evaluation=`` to choose one; sorting and
    CSV are at ``/evaluations/{id}/images/``), and each image's stored map."""

    queryset = EvaluationImage.objects.select_related("item")
    serializer_class = EvaluationImageSerializer
    lab_field = "evaluation__lab"
    filterset_fields = ["evaluation", "label", "correct"]
    ordering_fields = ["key", *METRICS]
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":  # not the evaluation: its big JSON, decoded again for each row
            return queryset
        # One row: its evaluation's lab decides who reads it.
        return queryset.select_related("evaluation").defer(
            "evaluation__summary", "evaluation__classification", "evaluation__traceback"
        )

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
                   description="The image's predicted map as stored: a compressed .npz with "
                   "one float16 array `map` (divided by its maximum).")  # fmt: skip
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, BinaryRenderer])
    def map(self, request, pk=None):
        image = self.get_object()
        response = HttpResponse(
            storage.read_bytes(image.map_name), content_type="application/octet-stream"
        )
        response["Content-Disposition"] = f'attachment; filename="map-{image.key}.npz"'
        response["X-Content-Type-Options"] = "nosniff"
        return response


def _images_csv(rows, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    values = rows.values_list(*CSV_COLUMNS)

    def lines():
        yield writer.writerow(CSV_COLUMNS)
        for row in values.iterator(chunk_size=2000):
            yield writer.writerow(["" if v is None else v for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
