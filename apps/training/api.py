"""REST API of training jobs (create 202, status, cancel) and the model registry (versions,
checkpoint download, aliases)."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import StrictSerializer
from apps.datasets.models import DatasetSnapshot
from apps.imaging.api import BinaryRenderer
from apps.labs.tenancy import LabScopedMixin
from apps.training import selectors, services
from apps.training.models import EpochMetrics, ModelAlias, ModelVersion, TrainingJob

CONFIG_SCHEMA = {
    "type": "object",
    "description": "The chosen fields: model, base_channels, batch_size, epochs, patience, lr, "
    "loss, precision, seed.",
    "additionalProperties": True,
}


@extend_schema_field(CONFIG_SCHEMA)
class ConfigSummaryField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "ml.train.TrainConfig as plain values."})  # fmt: skip
class TrainConfigField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "object", "additionalProperties": True},
        "description": "One entry per start: number, started_at, ended_at, outcome (running, "
        "succeeded, failed, cancelled, lost), from_epoch, worker.",
    }
)
class AttemptsField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "number", "nullable": True}},
        "description": "Per-epoch series: epoch, lr, train_loss, val_loss, val_classification, "
        "val_kl, val_accuracy, val_cc, sigma_c, sigma_s, time_s, images_per_s.",
    }
)
class CurvesField(serializers.JSONField):
    pass


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "The best epoch's metrics."})  # fmt: skip
class MetricsField(serializers.JSONField):
    pass


@extend_schema_field(OpenApiTypes.INT)
class SnapshotOfUserField(serializers.PrimaryKeyRelatedField):
    """A snapshot of a lab the requesting user belongs to; others read as 'does not exist'."""

    def get_queryset(self):
        from apps.labs.selectors import lab_list_for_user

        labs = lab_list_for_user(user=self.context["request"].user)
        return DatasetSnapshot.objects.filter(lab__in=labs).select_related("lab")


class EpochSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpochMetrics
        fields = [
            "epoch", "attempt", "lr", "train_loss", "train_classification", "train_saliency",
            "val_loss", "val_classification", "val_kl", "val_accuracy", "val_cc", "sigma_c",
            "sigma_s", "improved", "lr_dropped", "time_s", "images_per_s",
        ]  # fmt: skip
        read_only_fields = fields


class _JobFields(serializers.ModelSerializer):
    max_epochs = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()

    def get_max_epochs(self, job: TrainingJob) -> int:
        return job.max_epochs

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_queue_position(self, job: TrainingJob) -> int | None:
        """1 for the lab's next queued job; null unless queued."""
        if job.status != TrainingJob.Status.QUEUED:
            return None
        annotated = getattr(job, "queue_position_n", None)  # selectors.with_queue_fields
        return annotated if annotated is not None else services.queue_position(job)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_version(self, job: TrainingJob) -> int | None:
        """The model version a succeeded job made."""
        if hasattr(job, "version_pk"):  # selectors.with_queue_fields
            return job.version_pk
        version = ModelVersion.objects.filter(job=job).values_list("pk", flat=True).first()
        return version


class TrainingJobStatusSerializer(_JobFields):
    class Meta:
        model = TrainingJob
        fields = [
            "id", "status", "queue_position", "epoch", "max_epochs", "batch", "num_batches",
            "eta_s", "heartbeat_at", "attempts", "cancel_requested", "stop_reason", "error",
            "version",
        ]  # fmt: skip
        read_only_fields = fields


class TrainingJobSerializer(_JobFields):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    config = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingJob
        fields = [
            "id", "lab", "snapshot", "name", "preset", "config", "status", "status_url",
            "queue_position", "epoch", "max_epochs", "batch", "num_batches", "eta_s",
            "heartbeat_at", "attempts", "cancel_requested", "stop_reason", "device", "error",
            "version", "alias_on_success", "created_by", "created_at", "started_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(CONFIG_SCHEMA)
    def get_config(self, job: TrainingJob) -> dict:
        return services.config_summary(job.config)

    def get_status_url(self, job: TrainingJob) -> str:
        return f"/api/v1/training-jobs/{job.pk}/status/"


class TrainingJobDetailSerializer(TrainingJobSerializer):
    train_config = TrainConfigField(source="config", read_only=True)
    attempt_log = AttemptsField(read_only=True)
    epochs = EpochSerializer(many=True, read_only=True)

    class Meta(TrainingJobSerializer.Meta):
        fields = [*TrainingJobSerializer.Meta.fields, "train_config", "attempt_log", "epochs",
                  "log_tail", "traceback"]  # fmt: skip
        read_only_fields = fields


class TrainingJobCreateSerializer(StrictSerializer):
    snapshot = SnapshotOfUserField(help_text="A ready snapshot of one of your labs.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    preset = serializers.ChoiceField(choices=sorted(services.PRESETS), default="quick")
    model = serializers.CharField(max_length=40, required=False)
    base_channels = serializers.IntegerField(required=False, min_value=1, max_value=256)
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=1024)
    epochs = serializers.IntegerField(required=False, min_value=1, max_value=10000)
    patience = serializers.IntegerField(required=False, min_value=0, max_value=10000)
    lr = serializers.FloatField(required=False, min_value=1e-12, max_value=1.0)
    loss = serializers.ChoiceField(choices=services.LOSS_SCHEMES, required=False)
    precision = serializers.ChoiceField(choices=services.PRECISIONS, required=False)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    alias = serializers.RegexField(
        services.ALIAS, max_length=60, required=False, allow_blank=True,
        error_messages={"invalid": services.ALIAS_RULE},
        help_text="An alias (such as `production`) to set on the model version when the job "
        "succeeds.",
    )  # fmt: skip


class TrainingJobViewSet(
    LabScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Training jobs of your labs, run on `gpu` workers. Researchers and admins start and
    cancel them; every member reads them."""

    # Not the snapshot: the serializers show its id only, and its JSON (the selection) is big.
    queryset = TrainingJob.objects.select_related("created_by")
    serializer_class = TrainingJobSerializer
    filterset_fields = ["lab", "status", "snapshot"]
    ordering_fields = ["created_at", "status", "name"]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("epochs")
        elif self.action == "list":  # not what only the detail shows; no query per row
            queryset = selectors.with_queue_fields(
                queryset.defer("attempt_log", "log_tail", "traceback")
            )
        return queryset

    def get_serializer_class(self):
        return TrainingJobDetailSerializer if self.action == "retrieve" else TrainingJobSerializer

    @extend_schema(
        request=TrainingJobCreateSerializer,
        responses={202: TrainingJobDetailSerializer},
        description="Start training on a ready snapshot with a preset (`paper`: the original "
        "schedule, base 64, batch 6; `quick`: a tiny model for a smoke run) and optional "
        "overrides; a bad value is a 400 naming the field. The job runs on a `gpu` worker: the "
        "answer is 202 with the job (`status_url`, also in the `Location` header).",
    )
    def create(self, request, *args, **kwargs):
        data = TrainingJobCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        snapshot = fields.pop("snapshot")
        self.require_lab_action(snapshot.lab)
        job = services.job_create(
            snapshot=snapshot, actor=request.user, preset=fields.pop("preset"),
            name=fields.pop("name", ""), alias=fields.pop("alias", ""), overrides=fields,
        )  # fmt: skip
        body = TrainingJobDetailSerializer(job, context=self.get_serializer_context()).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]}
        )

    @extend_schema(responses=TrainingJobStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """State, queue position, epoch, batch, ETA and heartbeat: cheap enough to poll."""
        return Response(TrainingJobStatusSerializer(self.get_object()).data)

    @extend_schema(request=None, responses=TrainingJobStatusSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: a queued job at once, a running one between batches (it ends `cancelled`,
        keeping its last checkpoint). A finished job is answered as it is."""
        job = services.job_cancel(job=self.get_object())
        return Response(TrainingJobStatusSerializer(job).data)


class ModelVersionSerializer(serializers.ModelSerializer):
    aliases = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    config = TrainConfigField(read_only=True)
    metrics = MetricsField(read_only=True)
    classes = serializers.ListField(child=serializers.CharField(), read_only=True)
    checkpoint_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id", "lab", "name", "job", "snapshot", "classes", "best_epoch", "metrics", "config",
            "checkpoint_sha256", "checkpoint_size", "checkpoint_url", "aliases", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_checkpoint_url(self, version: ModelVersion) -> str:
        return f"/api/v1/model-versions/{version.pk}/checkpoint/"


class ModelVersionDetailSerializer(ModelVersionSerializer):
    curves = CurvesField(read_only=True)

    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "curves"]
        read_only_fields = fields


class AliasNameSerializer(StrictSerializer):
    name = serializers.CharField(
        max_length=60, help_text="Lowercase letters, digits, '-' and '_': production, candidate."
    )


class ModelAliasSerializer(serializers.ModelSerializer):
    set_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ModelAlias
        fields = ["id", "lab", "name", "version", "set_by", "set_at"]
        read_only_fields = fields


class ModelVersionViewSet(
    LabScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The model registry of your labs: one version per succeeded training job, with its
    checkpoint, config, data, metrics and curves. Researchers and admins set aliases."""

    queryset = ModelVersion.objects.prefetch_related("aliases")
    serializer_class = ModelVersionSerializer
    filterset_fields = ["lab", "snapshot", "job"]
    ordering_fields = ["created_at", "name"]
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self):
        return ModelVersionDetailSerializer if self.action == "retrieve" else ModelVersionSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.defer("curves") if self.action == "list" else queryset  # detail only

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        description="The version's checkpoint (`torch.save` of model, loss and optimizer "
        "state, config and history); its SHA-256 is `checkpoint_sha256`.",
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, BinaryRenderer])
    def checkpoint(self, request, pk=None):
        version = self.get_object()
        handle = services.version_checkpoint(version=version)
        filename = f"model-{version.pk}-{version.checkpoint_sha256[:12]}.pt"
        response = FileResponse(
            handle, content_type="application/octet-stream", filename=filename, as_attachment=True
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(request=AliasNameSerializer, responses=ModelAliasSerializer)
    @action(detail=True, methods=["post"])
    def alias(self, request, pk=None):
        """Point an alias of the lab at this version (moving it from another)."""
        version = self.get_object()
        data = AliasNameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alias = services.alias_set(
            version=version, name=data.validated_data["name"], actor=request.user
        )
        return Response(ModelAliasSerializer(alias).data)


class ModelAliasViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Aliases of your labs' model versions (one version per alias per lab); set one with
    `POST /model-versions/{id}/alias/`, unset it with DELETE here."""

    queryset = ModelAlias.objects.select_related("set_by")
    serializer_class = ModelAliasSerializer
    filterset_fields = ["lab", "name", "version"]
    ordering_fields = ["name", "set_at"]
    http_method_names = ["get", "delete", "head", "options"]

    def perform_destroy(self, instance):
        services.alias_unset(alias=instance)
