from django.contrib.auth import views as auth_views
from django.urls import path

from apps.labs import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("labs/new/", views.lab_create, name="lab-create"),
    path("labs/switch/", views.lab_switch, name="lab-switch"),
    path("members/", views.members, name="members"),
    path("members/invite/", views.invitation_create, name="invitation-create"),
    path(
        "members/invitations/<int:pk>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("members/<int:pk>/role/", views.membership_change_role, name="membership-role"),
    path("members/<int:pk>/remove/", views.membership_remove, name="membership-remove"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("settings/", views.lab_settings, name="lab-settings"),
    path("settings/quality/", views.lab_settings_quality, name="lab-settings-quality"),
    path("settings/regrade/", views.lab_regrade, name="lab-settings-regrade"),
    path("settings/delete/", views.lab_delete, name="lab-settings-delete"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]
