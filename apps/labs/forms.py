"""HTML forms of the labs pages. They parse input only; every write goes through ``services``."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
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


class InvitationForm(forms.Form):
    invitee = forms.CharField(
        max_length=254,
        label="E-mail or username",
        help_text="An e-mail address (whoever receives the link may accept it, with a new or an "
        "existing account) or the username of an existing account (only that account may "
        "accept). Nobody joins until they accept.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.READER)


class InvitationSignupForm(UserCreationForm):
    """A new account for the invitee of an e-mail invitation: a username and a password."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username"]


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


class LabSettingsForm(forms.Form):
    # The lab the page showed: the form writes to it even if another tab switched lab since.
    lab = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(max_length=120, label="Lab name")
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class QualityThresholdsForm(forms.Form):
    """The lab's own limits of the reading quality grade; a field left empty takes the server's
    default, shown as its placeholder."""

    lab = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, defaults: dict, **kwargs):
        from apps.labs.services import QUALITY_THRESHOLD_FIELDS

        super().__init__(*args, **kwargs)
        for name, (label, unit) in QUALITY_THRESHOLD_FIELDS.items():
            default = defaults[name]
            attrs = {"placeholder": f"{default:g}", "inputmode": "decimal"}
            kind = forms.IntegerField if name == "min_fixations" else forms.FloatField
            self.fields[name] = kind(
                required=False,
                label=f"{label}{f' ({unit})' if unit else ''}",
                help_text=f"Empty: the server's default, {default:g}{unit}.",
                widget=forms.NumberInput(attrs={**attrs, "step": "1" if unit == "" else "any"}),
            )

    def thresholds(self) -> dict:
        """``{name: value or None}`` of every limit (None: the server's default)."""
        return {name: self.cleaned_data.get(name) for name in self.fields if name != "lab"}

    def threshold_fields(self):
        return [self[name] for name in self.fields if name != "lab"]


class LabDeleteForm(forms.Form):
    lab = forms.CharField(widget=forms.HiddenInput)
    confirm_name = forms.CharField(max_length=200, label="Type the lab's name to confirm")

    def __init__(self, *args, lab_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.lab_name = lab_name
        self.fields["confirm_name"].label = f"Type “{lab_name}” to confirm"
        self.fields["confirm_name"].widget.attrs["autocomplete"] = "off"

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"].strip()
        if typed != self.lab_name.strip():
            raise forms.ValidationError(
                f"That is not the lab's name: type “{self.lab_name}” exactly to delete it."
            )
        return typed
