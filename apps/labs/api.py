"""REST API for labs, memberships, personal API tokens and the signed-in user."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import StrictModelSerializer, StrictSerializer, error_body
from apps.labs import selectors, services
from apps.labs.models import ApiToken, Invitation, Lab, Membership, User
from apps.labs.roles import Action, Role, role_allows
from apps.labs.tenancy import TENANT_FILTER_BACKENDS, LabScopedMixin, UserOwnedMixin


def _threshold_field(name: str) -> serializers.Field:
    label, unit = services.QUALITY_THRESHOLD_FIELDS[name]
    default = services.quality_threshold_defaults()[name]
    text = f"{label}{f' ({unit})' if unit else ''}; null: the server's default ({default:g})."
    kind = serializers.IntegerField if name == "min_fixations" else serializers.FloatField
    return kind(required=False, allow_null=True, help_text=text)


class QualityThresholdsSerializer(StrictSerializer):
    """A lab's own limits of the gaze quality grade; null (or left out) is the server's."""

    def get_fields(self):
        return {name: _threshold_field(name) for name in services.QUALITY_THRESHOLD_FIELDS}

    def to_representation(self, instance: dict) -> dict:
        return {name: instance.get(name) for name in services.QUALITY_THRESHOLD_FIELDS}


class EffectiveThresholdsSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            name: (serializers.IntegerField if name == "min_fixations" else serializers.FloatField)(
                read_only=True
            )
            for name in services.QUALITY_THRESHOLD_FIELDS
        }


class LabSerializer(StrictModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role in this lab.")
    slug = serializers.SlugField(max_length=60, required=False)
    quality_thresholds = QualityThresholdsSerializer(
        required=False,
        help_text="The lab's own limits of the reading quality grade (admins set them). A PATCH "
        "changes the limits it names and keeps the others; null gives one back to the server's "
        "default. Readings parsed afterwards are graded with them; POST regrade/ grades the "
        "stored ones again.",
    )
    quality_thresholds_effective = serializers.SerializerMethodField(
        help_text="The limits that grade this lab's readings: its own, the server's for the rest."
    )

    class Meta:
        model = Lab
        fields = ["id", "name", "slug", "description", "quality_thresholds",
                  "quality_thresholds_effective", "created_at", "role"]  # fmt: skip
        read_only_fields = ["id", "created_at"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, lab: Lab) -> str | None:
        return self.context["view"].lab_roles().get(lab.pk)

    @extend_schema_field(EffectiveThresholdsSerializer)
    def get_quality_thresholds_effective(self, lab: Lab) -> dict:
        return services.lab_quality_thresholds(lab=lab)


class RegradeSerializer(serializers.Serializer):
    readings = serializers.IntegerField(help_text="Readings graded again.")
    changed = serializers.IntegerField(help_text="Of them, with another grade now.")
    moves = serializers.DictField(
        child=serializers.IntegerField(), help_text='Readings by change, e.g. "good → poor".'
    )
    training_changed = serializers.IntegerField(
        help_text="Readings put into or left out of training with their new grade (those a "
        "person switched keep their choice)."
    )
    skipped = serializers.IntegerField(help_text="Readings without stored measures (kept).")
    recordings = serializers.IntegerField(help_text="Recordings whose overall grade was redone.")


class LabViewSet(LabScopedMixin, viewsets.ModelViewSet):
    """Labs you belong to. Anyone signed in may create a lab and becomes its admin; its admins
    change and delete it, and set its quality thresholds."""

    queryset = Lab.objects.all()
    serializer_class = LabSerializer
    lab_field = "pk"
    write_action = Action.MANAGE_MEMBERS
    filter_backends = TENANT_FILTER_BACKENDS
    filterset_fields = ["slug"]
    ordering_fields = ["name", "created_at"]

    def scope(self, queryset):
        return queryset.filter(pk__in=list(self.lab_roles()))

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        thresholds = data.pop("quality_thresholds", None)
        lab = services.lab_create(creator=self.request.user, **data)
        self.request._lab_roles = None  # the creator is now the lab's admin
        if thresholds:
            lab = self._update(lab, quality_thresholds=thresholds)
        serializer.instance = lab

    def _update(self, lab: Lab, **fields) -> Lab:
        try:
            return services.lab_update(lab=lab, actor=self.request.user, **fields)
        except DjangoValidationError as exc:
            # The service names a limit; the API's field is quality_thresholds.<limit>.
            errors: dict = {}
            for key, messages in exc.message_dict.items():
                if key in services.QUALITY_THRESHOLD_FIELDS:
                    errors.setdefault("quality_thresholds", {})[key] = messages
                else:
                    errors[key] = messages
            raise serializers.ValidationError(errors) from None

    def perform_update(self, serializer):
        serializer.instance = self._update(serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.lab_delete(lab=instance, actor=self.request.user)

    @extend_schema(request=None, responses=RegradeSerializer)
    @action(detail=True, methods=["post"])
    def regrade(self, request, pk=None):
        """Grade the lab's stored readings again with its quality thresholds now (admins): from
        the measures each reading stores, no re-parse."""
        from apps.gaze.services import lab_readings_regrade

        lab = self.get_object()
        report = lab_readings_regrade(lab=lab, actor=request.user)
        return Response(
            {
                "readings": report.readings,
                "changed": report.changed,
                "moves": report.moves,
                "training_changed": report.training_changed,
                "skipped": report.skipped,
                "recordings": report.recordings,
            }
        )


class MemberUserSerializer(serializers.ModelSerializer):
    email = serializers.SerializerMethodField(
        help_text="Shown to the admins of a lab the person belongs to (and to the person); "
        "null for everyone else."
    )

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name"]

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_email(self, user: User) -> str | None:
        # An account without an address has none to show (null, not an empty "e-mail").
        return (user.email or None) if self.context.get("show_email") else None


class MembershipSerializer(serializers.ModelSerializer):
    user = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["id", "lab", "user", "role", "created_at"]
        read_only_fields = fields

    @extend_schema_field(MemberUserSerializer)
    def get_user(self, membership: Membership) -> dict:
        request = self.context["request"]
        show_email = membership.user_id == request.user.pk or role_allows(
            self.context["lab_roles"].get(membership.lab_id), Action.MANAGE_MEMBERS
        )
        return MemberUserSerializer(membership.user, context={"show_email": show_email}).data


@extend_schema_field(OpenApiTypes.INT)
class UserLabField(serializers.PrimaryKeyRelatedField):
    """A lab the requesting user belongs to; other labs read as 'does not exist'."""

    def get_queryset(self):
        return selectors.lab_list_for_user(user=self.context["request"].user)


class MembershipUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipViewSet(LabScopedMixin, viewsets.ModelViewSet):
    """Members of your labs. Lab admins re-role and remove them; any member may leave.

    Nobody is added without their consent: people join through invitations
    (``/api/v1/invitations/``), so there is no POST here.
    """

    queryset = Membership.objects.select_related("user", "lab")
    serializer_class = MembershipSerializer
    write_action = Action.MANAGE_MEMBERS
    filter_backends = TENANT_FILTER_BACKENDS
    filterset_fields = ["lab", "role", "user"]
    ordering_fields = ["created_at", "role"]
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "lab_roles": self.lab_roles()}

    def allows(self, obj, action: Action) -> bool:
        # Leaving a lab needs no admin role; the service still guards the last admin.
        if self.action == "destroy" and obj.user_id == self.request.user.pk:
            return True
        return super().allows(obj, action)

    @extend_schema(request=MembershipUpdateSerializer, responses=MembershipSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        data = MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            membership=membership, actor=request.user, role=data.validated_data["role"]
        )
        return Response(self.get_serializer(membership).data)

    def perform_destroy(self, instance):
        services.membership_remove(membership=instance, actor=self.request.user)


# --- Invitations ------------------------------------------------------------------------------


def accept_url(request, token: str) -> str:
    """The absolute link that accepts the invitation of ``token``."""
    return request.build_absolute_uri(reverse("invitation-accept", args=[token]))


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.CharField(
        source="invited_by.username", read_only=True, allow_null=True, default=None
    )
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "lab",
            "role",
            "email",
            "username",
            "invited_by",
            "created_at",
            "expires_at",
            "status",
        ]
        read_only_fields = fields


class InvitationCreateSerializer(StrictSerializer):
    lab = UserLabField()
    invitee = serializers.CharField(
        max_length=254,
        help_text="An e-mail address (whoever holds the link may accept) or a username (only "
        "that account may accept).",
    )
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationCreatedSerializer(InvitationSerializer):
    accept_url = serializers.CharField(
        read_only=True,
        help_text="The link that accepts the invitation; shown only this once (it is also "
        "e-mailed where an address is known).",
    )

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "accept_url"]
        read_only_fields = fields


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=200, help_text="The token at the end of the link.")


class InvitationViewSet(
    LabScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations to your labs (lab admins): the list shows pending ones; DELETE withdraws one.

    The answer to a POST is the same whether or not a username exists: an invitation to a
    username that has no account is kept pending and never delivered.
    """

    queryset = Invitation.objects.select_related("lab", "invited_by")
    serializer_class = InvitationSerializer
    write_action = Action.MANAGE_MEMBERS
    response_cache = False  # pending means "not expired yet": the clock, not a write, ends it
    filter_backends = TENANT_FILTER_BACKENDS
    filterset_fields = ["lab", "role"]
    ordering_fields = ["created_at", "expires_at"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            # Invitations name e-mail addresses: only the lab's admins see them.
            admin_labs = [
                lab
                for lab, role in self.lab_roles().items()
                if role_allows(role, Action.MANAGE_MEMBERS)
            ]
            queryset = queryset.filter(
                lab__in=admin_labs,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
        return queryset

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = InvitationCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        self.require_lab_action(data.validated_data["lab"])
        invitation, url = services.invitation_create(
            actor=request.user,
            build_url=lambda token: accept_url(request, token),
            **data.validated_data,
        )
        invitation.accept_url = url
        return Response(
            InvitationCreatedSerializer(invitation).data, status=status.HTTP_201_CREATED
        )

    def perform_destroy(self, instance):
        services.invitation_revoke(invitation=instance, actor=self.request.user)


class InvitationAcceptView(APIView):
    """Accept an invitation for your own account: ``{"token": ...}`` from the link."""

    tenancy = "user"

    @extend_schema(request=InvitationAcceptSerializer, responses={201: MembershipSerializer})
    def post(self, request):
        data = InvitationAcceptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            membership = services.invitation_accept(
                token=data.validated_data["token"], user=request.user
            )
        except services.InvitationUnusable as exc:
            if exc.status == 404:
                raise NotFound(str(exc)) from None
            return Response(error_body("gone", str(exc)), status=status.HTTP_410_GONE)
        context = {"request": request, "lab_roles": {membership.lab_id: membership.role}}
        return Response(
            MembershipSerializer(membership, context=context).data,
            status=status.HTTP_201_CREATED,
        )


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiTokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        min_value=0,
        max_value=3650,
        required=False,
        allow_null=True,
        help_text="Days until the token expires; 0 for never; omitted for the server's default.",
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret. It is shown only once.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenViewSet(
    UserOwnedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Your personal API tokens. Only a hash is stored; DELETE revokes a token."""

    queryset = ApiToken.objects.all()
    serializer_class = ApiTokenSerializer
    filter_backends = TENANT_FILTER_BACKENDS
    filterset_fields = ["revoked_at"]
    ordering_fields = ["created_at", "name"]

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, **data.validated_data)
        token.token = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.api_token_revoke(token=instance)


class MeMembershipSerializer(serializers.ModelSerializer):
    lab_name = serializers.CharField(source="lab.name", read_only=True)
    lab_slug = serializers.CharField(source="lab.slug", read_only=True)

    class Meta:
        model = Membership
        fields = ["lab", "lab_name", "lab_slug", "role"]
        read_only_fields = fields


class MeSerializer(StrictModelSerializer):
    memberships = MeMembershipSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "memberships"]
        read_only_fields = ["id", "username", "memberships"]

    # An e-mail address identifies nobody here (no one is found or added by it), so a taken
    # address is not refused: refusing it would tell the caller that someone uses it.


class MeView(APIView):
    """The signed-in user and their labs; PATCH changes the name and e-mail."""

    tenancy = "user"

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=MeSerializer, responses=MeSerializer)
    def patch(self, request):
        serializer = MeSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)
