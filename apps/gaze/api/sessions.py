"""Readers and reading sessions (their display geometry); readers (``Action.UPLOAD_OWN``) change
what belongs to their own sessions."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from apps.core.api import StrictSerializer
from apps.gaze import services
from apps.gaze.models import Reader, ReadingSession
from apps.labs.api import UserLabField
from apps.labs.models import User
from apps.labs.roles import Action
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
        target = obj
        for part in self.reader_user_field.split("__"):
            target = getattr(target, part)
        return services.reading_session_owned(
            role=self.lab_roles().get(obj.lab_id), reader_user_id=target, user=self.request.user
        )


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

    # An aggregate drops the model's default order: pages need a stable one.
    queryset = (
        ReadingSession.objects.select_related("reader")
        .annotate(recordings_n=Count("recordings"))
        .order_by("-created_at", "-id")
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
        services.reading_session_check_create(lab=lab, reader=reader, user=request.user)
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
        services.reading_session_check_update(
            session=session, user=request.user, changes=data.validated_data
        )
        session = services.reading_session_update(session=session, **data.validated_data)
        return Response(ReadingSessionSerializer(session).data)

    def perform_destroy(self, instance):
        services.reading_session_delete(session=instance)
