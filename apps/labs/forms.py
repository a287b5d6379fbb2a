"""HTML forms of the labs pages. They parse input only; every write goes through ``services``."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from apps.labs.models import User
from apps.labs.roles import Role


def add_service_error(form: forms.Form, exc: ValidationError | PermissionDenied) -> None:
    """Show a service's error on ``form``: on the field it names when the form has one."""
    if isinstance(exc, PermissionDenied):
        form.add_error(None, str(exc) or "You are not allowed to do this.")
        return
    if hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, exc.messages)


class LabCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label="Lab name")
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class MembershipAddForm(forms.Form):
    user = forms.CharField(
        max_length=254,
        label="Username or e-mail",
        help_text="The person must already have an account.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.READER)

    def clean_user(self) -> User:
        value = self.cleaned_data["user"].strip()
        active = User.objects.filter(is_active=True)
        # An exact username wins over an e-mail match, so one string names one person.
        user = active.filter(username=value).first() or active.filter(email__iexact=value).first()
        if user is None:
            raise ValidationError(f"No active user with the username or e-mail “{value}”.")
        return user


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. “upload script on the eye-tracker PC”.",
    )
    expires_in_days = forms.IntegerField(
        min_value=0, max_value=3650, label="Expires in (days)", help_text="0 means never."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_in_days"].initial = settings.API_TOKEN_DEFAULT_DAYS
