"""REST API of webhooks: hooks (lab admins manage them), their deliveries and attempts.

Every member of a lab may list its hooks and deliveries (to see who is told what, and whether it
arrived); the full URL and the receivers' answers are shown to the lab's admins only (a URL can
itself be a credential), the secret to nobody after the answer that created or rotated it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api import StrictSerializer
from apps.labs.api import UserLabField
from apps.labs.roles import Action, role_allows
from apps.labs.tenancy import LabScopedMixin
from apps.webhooks import services
from apps.webhooks.models import (
    SUBSCRIBABLE_EVENTS,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)

EVENTS_DOC = "One of: " + ", ".join(f"`{e}`" for e in SUBSCRIBABLE_EVENTS) + "."


def _can_manage(serializer: serializers.Serializer, lab_id: int) -> bool:
    roles = serializer.context.get("lab_roles") or {}
    return role_allows(roles.get(lab_id), Action.MANAGE_MEMBERS)


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "enum": list(SUBSCRIBABLE_EVENTS)}}
)
class EventsField(serializers.ListField):
    pass


class WebhookSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    url = serializers.SerializerMethodField()
    events = EventsField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Webhook
        fields = [
            "id", "lab", "url", "events", "active", "created_by", "created_at",
            "secret_rotated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(
        serializers.CharField(
            help_text="The URL called; members who are not the lab's admins see its origin only."
        )
    )
    def get_url(self, hook: Webhook) -> str:
        if _can_manage(self, hook.lab_id):
            return hook.url
        parts = urlsplit(hook.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


class WebhookSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="Signs every call (HMAC-SHA256 over `{timestamp}.{body}`): shown this once.",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookCreateSerializer(StrictSerializer):
    lab = UserLabField()
    url = serializers.URLField(max_length=2000, help_text="An http or https URL.")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE_EVENTS), min_length=1,
        max_length=len(SUBSCRIBABLE_EVENTS), help_text=EVENTS_DOC,
    )  # fmt: skip
    active = serializers.BooleanField(default=True)


class WebhookUpdateSerializer(StrictSerializer):
    url = serializers.URLField(max_length=2000, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=SUBSCRIBABLE_EVENTS), min_length=1,
        max_length=len(SUBSCRIBABLE_EVENTS), required=False, help_text=EVENTS_DOC,
    )  # fmt: skip
    active = serializers.BooleanField(required=False)


class WebhookAttemptSerializer(serializers.ModelSerializer):
    response_body = serializers.SerializerMethodField()

    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "duration_ms", "status_code", "error", "response_body"]
        read_only_fields = fields

    @extend_schema_field(
        serializers.CharField(help_text="The first KB of the answer (the lab's admins only).")
    )
    def get_response_body(self, attempt: WebhookAttempt) -> str:
        lab_id = self.context.get("lab_id")
        return attempt.response_body if _can_manage(self, lab_id) else ""


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "webhook", "event", "status", "attempts", "next_attempt_at", "created_at",
            "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    attempt_log = serializers.SerializerMethodField()
    payload = serializers.JSONField(read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "payload", "attempt_log"]
        read_only_fields = fields

    @extend_schema_field(WebhookAttemptSerializer(many=True))
    def get_attempt_log(self, delivery: WebhookDelivery) -> list[dict]:
        context = {**self.context, "lab_id": delivery.webhook.lab_id}
        return WebhookAttemptSerializer(delivery.attempt_log.all(), many=True, context=context).data


class WebhookViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Webhooks of your labs: URLs called (JSON, signed with HMAC-SHA256) when a training job
    ends or a model version gets an alias. The lab's admins create, change, test and delete
    them; every member lists them (the URL reduced to its origin for non-admins)."""

    queryset = Webhook.objects.select_related("created_by")
    serializer_class = WebhookSerializer
    write_action = Action.MANAGE_MEMBERS
    filterset_fields = ["lab", "active"]
    ordering_fields = ["created_at", "id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "lab_roles": self.lab_roles()}

    def _answer(self, hook: Webhook, serializer=WebhookSerializer, code=status.HTTP_200_OK):
        return Response(serializer(hook, context=self.get_serializer_context()).data, status=code)

    @extend_schema(
        request=WebhookCreateSerializer,
        responses={201: WebhookSecretSerializer},
        description="Register a URL for events (lab admins). The URL must resolve to public "
        "addresses only (400 otherwise, unless the server allows private ones). The answer "
        "carries the signing `secret`, shown this once.",
    )
    def create(self, request, *args, **kwargs):
        data = WebhookCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        lab = fields.pop("lab")
        self.require_lab_action(lab)
        hook = services.webhook_create(lab=lab, actor=request.user, **fields)
        return self._answer(hook, WebhookSecretSerializer, status.HTTP_201_CREATED)

    @extend_schema(
        request=WebhookUpdateSerializer,
        responses=WebhookSerializer,
        description="Change the URL (checked again), the events or `active` (lab admins).",
    )
    def partial_update(self, request, *args, **kwargs):
        hook = self.get_object()
        data = WebhookUpdateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        hook = services.webhook_update(webhook=hook, actor=request.user, **data.validated_data)
        return self._answer(hook)

    def perform_destroy(self, instance):
        services.webhook_delete(webhook=instance, actor=self.request.user)

    @extend_schema(
        request=None,
        responses=WebhookSecretSerializer,
        description="Replace the signing secret (lab admins); the answer carries the new one, "
        "shown this once. Calls from now on are signed with it.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret", url_name="rotate")
    def rotate_secret(self, request, pk=None):
        hook = services.webhook_rotate_secret(webhook=self.get_object(), actor=request.user)
        return self._answer(hook, WebhookSecretSerializer)

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        description="Send a `webhook.test` call to this hook only (lab admins). The call is "
        "made by a worker: the answer is 202 with the delivery (see `/webhook-deliveries/`).",
    )
    @action(detail=True, methods=["post"], url_path="test", url_name="test")
    def test(self, request, pk=None):
        delivery = services.webhook_test(webhook=self.get_object(), actor=request.user)
        body = WebhookDeliverySerializer(delivery, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryViewSet(LabScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Events sent (or being sent) to your labs' webhooks: status, attempts and, on a single
    delivery, its payload and every call made (status code or error, duration; the answer's
    first KB for the lab's admins)."""

    queryset = WebhookDelivery.objects.select_related("webhook").prefetch_related("attempt_log")
    serializer_class = WebhookDeliverySerializer
    lab_field = "webhook__lab"
    filterset_fields = ["webhook", "status", "event"]
    ordering_fields = ["created_at", "id", "status"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "lab_roles": self.lab_roles()}

    def get_serializer_class(self):
        if self.action == "retrieve":
            return WebhookDeliveryDetailSerializer
        return WebhookDeliverySerializer
