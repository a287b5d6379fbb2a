"""REST API for labs, memberships, personal API tokens and the signed-in user."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import StrictModelSerializer, StrictSerializer
from apps.labs import selectors, services
from apps.labs.models import ApiToken, Lab, Membership, User
from apps.labs.roles import Action, Role
from apps.labs.tenancy import LabScopedMixin, UserOwnedMixin


class LabSerializer(StrictModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role in this lab.")
    slug = serializers.SlugField(max_length=60, required=False)

    class Meta:
        model = Lab
        fields = ["id", "name", "slug", "description", "created_at", "role"]
        read_only_fields = ["id", "created_at"]

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, lab: Lab) -> str | None:
        return self.context["view"].lab_roles().get(lab.pk)


class LabViewSet(LabScopedMixin, viewsets.ModelViewSet):
    """Labs you belong to. Anyone signed in may create a lab and becomes its admin."""

    queryset = Lab.objects.all()
    serializer_class = LabSerializer
    lab_field = "pk"
    write_action = Action.MANAGE_MEMBERS
    filterset_fields = ["slug"]
    ordering_fields = ["name", "created_at"]

    def scope(self, queryset):
        return queryset.filter(pk__in=list(self.lab_roles()))

    def perform_create(self, serializer):
        lab = services.lab_create(creator=self.request.user, **serializer.validated_data)
        self.request._lab_roles = None  # the creator is now the lab's admin
        serializer.instance = lab

    def perform_update(self, serializer):
        serializer.instance = services.lab_update(
            lab=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.lab_delete(lab=instance, actor=self.request.user)


class MemberUserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name"]


class MembershipSerializer(serializers.ModelSerializer):
    user = MemberUserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "lab", "user", "role", "created_at"]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class UserLabField(serializers.PrimaryKeyRelatedField):
    """A lab the requesting user belongs to; other labs read as 'does not exist'."""

    def get_queryset(self):
        return selectors.lab_list_for_user(user=self.context["request"].user)


class MembershipCreateSerializer(StrictSerializer):
    lab = UserLabField()
    user = serializers.CharField(
        max_length=254, help_text="Username or e-mail of an existing user."
    )
    role = serializers.ChoiceField(choices=Role.choices)

    def validate_user(self, value: str) -> User:
        user = User.objects.filter(
            Q(username=value) | Q(email__iexact=value), is_active=True
        ).first()
        if user is None:
            raise serializers.ValidationError(
                f"No active user with the username or e-mail {value!r}."
            )
        return user


class MembershipUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipViewSet(LabScopedMixin, viewsets.ModelViewSet):
    """Members of your labs. Lab admins add, re-role and remove them; any member may leave."""

    queryset = Membership.objects.select_related("user", "lab")
    serializer_class = MembershipSerializer
    write_action = Action.MANAGE_MEMBERS
    filterset_fields = ["lab", "role", "user"]
    ordering_fields = ["created_at", "role"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def allows(self, obj, action: Action) -> bool:
        # Leaving a lab needs no admin role; the service still guards the last admin.
        if self.action == "destroy" and obj.user_id == self.request.user.pk:
            return True
        return super().allows(obj, action)

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request, *args, **kwargs):
        data = MembershipCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        self.require_lab_action(data.validated_data["lab"])
        membership = services.membership_add(actor=request.user, **data.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MembershipUpdateSerializer, responses=MembershipSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        data = MembershipUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            membership=membership, actor=request.user, role=data.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)

    def perform_destroy(self, instance):
        services.membership_remove(membership=instance, actor=self.request.user)


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

    def validate_email(self, value: str) -> str:
        taken = User.objects.filter(email__iexact=value).exclude(pk=self.instance.pk)
        if value and taken.exists():
            raise serializers.ValidationError("Another account uses this e-mail address.")
        return value


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
