from django.urls import path
from rest_framework.routers import DefaultRouter

from apps.labs import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("labs", api.LabViewSet, basename="lab")
router.register("memberships", api.MembershipViewSet, basename="membership")
router.register("invitations", api.InvitationViewSet, basename="invitation")
router.register("tokens", api.ApiTokenViewSet, basename="token")

urlpatterns = [
    path("me/", api.MeView.as_view(), name="me"),
    # Before the router's routes, or "accept" would be read as an invitation's id.
    path("invitations/accept/", api.InvitationAcceptView.as_view(), name="invitation-accept-api"),
    *router.urls,
]
