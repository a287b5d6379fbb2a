"""HTML pages of the labs app: home, lab switcher, members, invitations, API tokens, and the lab's
settings (name, quality thresholds and the re-grade of readings, deletion).

Views parse input, look objects up through the user-scoped selectors (another lab's object is a
404) and call one service; a service's ``ValidationError`` or ``PermissionDenied`` becomes a form
error or a message, never a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.labs import selectors, services
from apps.labs.forms import (
    ApiTokenCreateForm,
    InvitationForm,
    InvitationSignupForm,
    LabCreateForm,
    LabDeleteForm,
    LabSettingsForm,
    MembershipRoleForm,
    QualityThresholdsForm,
    add_service_error,
)
from apps.labs.middleware import SESSION_KEY
from apps.labs.roles import Action, Role, role_allows


def _get_or_404(queryset: QuerySet, raw_pk) -> object:
    """The object of ``queryset`` with primary key ``raw_pk``; a malformed key is a 404 too."""
    try:
        pk = int(raw_pk)
    except (TypeError, ValueError):
        raise Http404("No such object.") from None
    return get_object_or_404(queryset, pk=pk)


def _error_text(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, PermissionDenied):
        return str(exc) or "You are not allowed to do this."
    return " ".join(exc.messages)


def _safe_next(request: HttpRequest, fallback: str = "home") -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(fallback)


# --- Home and labs ----------------------------------------------------------------------------


def _home_page(request: HttpRequest, lab_form: LabCreateForm | None = None, status: int = 200):
    lab = request.lab if request.lab else None
    roles = selectors.lab_roles_for_user(user=request.user)
    labs = [
        {"lab": other, "role": Role(roles[other.pk]).label}
        for other in selectors.lab_list_for_user(user=request.user)
    ]
    context = {
        "lab_form": lab_form or LabCreateForm(),
        "my_labs": labs,
        "member_count": (
            selectors.membership_list(user=request.user, lab=lab).count() if lab else 0
        ),
        "role_label": Role(request.lab_role).label if lab else None,
    }
    if lab:
        from apps.evaluation.overview import lab_overview  # the lab's data lives in later apps

        context["overview"] = lab_overview(lab=lab)
    return render(request, "labs/home.html", context, status=status)


@never_cache
@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return _home_page(request)


@never_cache
@login_required
@require_POST
def lab_create(request: HttpRequest) -> HttpResponse:
    """Create a lab with the signed-in user as its admin, and make it the current lab."""
    form = LabCreateForm(request.POST)
    if form.is_valid():
        try:
            lab = services.lab_create(creator=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            request.session[SESSION_KEY] = lab.pk
            messages.success(request, f"Lab “{lab.name}” created. You are its admin.")
            return redirect("home")
    return _home_page(request, lab_form=form, status=400)


@never_cache
@login_required
@require_POST
def lab_switch(request: HttpRequest) -> HttpResponse:
    """Make one of the user's labs the current lab of this browser session."""
    lab = _get_or_404(selectors.lab_list_for_user(user=request.user), request.POST.get("lab"))
    request.session[SESSION_KEY] = lab.pk
    messages.info(request, f"Switched to {lab.name}.")
    return redirect(_safe_next(request))


# --- Members ----------------------------------------------------------------------------------


def _members_page(
    request: HttpRequest,
    invite_form: InvitationForm | None = None,
    status: int = 200,
    created_invitation=None,
    created_url: str | None = None,
) -> HttpResponse:
    lab = request.lab if request.lab else None
    can_manage = role_allows(request.lab_role if lab else None, Action.MANAGE_MEMBERS)
    memberships = (
        selectors.membership_list(user=request.user, lab=lab).order_by("user__username")
        if lab
        else []
    )
    context = {
        "memberships": memberships,
        "can_manage": can_manage,
        # E-mail addresses are for the lab's admins only (and the person's own).
        "show_emails": can_manage,
        "invite_form": invite_form or InvitationForm(),
        "invitations": (
            selectors.invitation_list_pending(user=request.user, lab=lab) if can_manage else []
        ),
        "created_invitation": created_invitation,
        "created_url": created_url,
        "role_choices": Role.choices,
        "role_label": Role(request.lab_role).label if lab else None,
    }
    return render(request, "labs/members.html", context, status=status)


@never_cache
@login_required
@require_GET
def members(request: HttpRequest) -> HttpResponse:
    return _members_page(request)


@never_cache
@login_required
@require_POST
def invitation_create(request: HttpRequest) -> HttpResponse:
    """Invite someone to the lab named in the form (lab admins).

    The accept link is rendered into this response only (its token is stored hashed), like an
    API token's secret, so that an admin without mail can pass it on. The form names its lab,
    so a lab switch in another tab cannot redirect the invitation.
    """
    lab = _get_or_404(selectors.lab_list_for_user(user=request.user), request.POST.get("lab"))
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation, url = services.invitation_create(
                lab=lab,
                actor=request.user,
                invitee=form.cleaned_data["invitee"],
                role=form.cleaned_data["role"],
                build_url=lambda token: request.build_absolute_uri(
                    reverse("invitation-accept", args=[token])
                ),
            )
        except PermissionDenied as exc:
            add_service_error(form, exc)
            return _members_page(request, invite_form=form, status=403)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            return _members_page(request, created_invitation=invitation, created_url=url)
    return _members_page(request, invite_form=form, status=400)


@never_cache
@login_required
@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw a pending invitation (lab admins)."""
    invitation = _get_or_404(selectors.invitation_list(user=request.user), pk)
    try:
        services.invitation_revoke(invitation=invitation, actor=request.user)
    except PermissionDenied as exc:
        messages.error(request, _error_text(exc))
        return _members_page(request, status=403)
    messages.success(request, f"Invitation of {invitation.invitee} withdrawn.")
    return redirect("members")


def _invitation_page(request: HttpRequest, token: str, **context) -> HttpResponse:
    status = context.pop("status", 200)
    return render(request, "labs/invitation.html", {"token": token, **context}, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation link: shows the lab and the role; a POST accepts.

    Signed in, one accepts for one's own account (an invitation to a username only as that
    account). Signed out, an e-mail invitation offers a new account (username and password),
    created together with the membership; a username invitation asks to sign in. Used,
    withdrawn and expired links answer 410 with a message, unknown ones 404.
    """
    try:
        invitation = services.invitation_find(token=token)
    except services.InvitationUnusable as exc:
        return _invitation_page(request, token, problem=str(exc), status=exc.status)
    context = {"invitation": invitation, "role": Role(invitation.role).label.lower()}

    if request.user.is_authenticated:
        try:
            services.invitation_check_acceptor(invitation=invitation, user=request.user)
        except PermissionDenied as exc:
            return _invitation_page(request, token, **context, refusal=str(exc), status=403)
        except ValidationError as exc:
            return _invitation_page(request, token, **context, refusal=_error_text(exc))
        if request.method == "POST":
            try:
                membership = services.invitation_accept(token=token, user=request.user)
            except services.InvitationUnusable as exc:
                return _invitation_page(request, token, problem=str(exc), status=exc.status)
            except (PermissionDenied, ValidationError) as exc:
                return _invitation_page(request, token, **context, refusal=_error_text(exc))
            return _joined(request, membership)
        return _invitation_page(request, token, **context, can_accept=True)

    if invitation.username:  # for one existing account: it signs in first
        return _invitation_page(request, token, **context, must_sign_in=True)
    form = InvitationSignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user, membership = services.invitation_accept_with_new_account(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
            )
        except services.InvitationUnusable as exc:
            return _invitation_page(request, token, problem=str(exc), status=exc.status)
        except (PermissionDenied, ValidationError) as exc:
            add_service_error(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return _joined(request, membership)
    status = 400 if form.is_bound else 200
    return _invitation_page(request, token, **context, signup_form=form, status=status)


def _joined(request: HttpRequest, membership) -> HttpResponse:
    request.session[SESSION_KEY] = membership.lab_id
    messages.success(
        request,
        f"You joined {membership.lab.name} as {Role(membership.role).label.lower()}.",
    )
    return redirect("home")


def _membership_or_404(request: HttpRequest, pk: int):
    return _get_or_404(selectors.membership_list(user=request.user), pk)


@never_cache
@login_required
@require_POST
def membership_change_role(request: HttpRequest, pk: int) -> HttpResponse:
    """Give a member another role (lab admins)."""
    membership = _membership_or_404(request, pk)
    form = MembershipRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles: admin, researcher, reader or viewer.")
        return redirect("members")
    try:
        services.membership_change_role(
            membership=membership, actor=request.user, role=form.cleaned_data["role"]
        )
    except PermissionDenied as exc:
        messages.error(request, _error_text(exc))
        return _members_page(request, status=403)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            f"{membership.user.username} is now {Role(membership.role).label.lower()} "
            f"in {membership.lab.name}.",
        )
    return redirect("members")


@never_cache
@login_required
@require_POST
def membership_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a member (lab admins), or leave a lab (any member)."""
    membership = _membership_or_404(request, pk)
    leaving = membership.user_id == request.user.pk
    try:
        services.membership_remove(membership=membership, actor=request.user)
    except PermissionDenied as exc:
        messages.error(request, _error_text(exc))
        return _members_page(request, status=403)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("members")
    if leaving:
        messages.success(request, f"You left {membership.lab.name}.")
        return redirect("home")
    messages.success(request, f"{membership.user.username} removed from {membership.lab.name}.")
    return redirect("members")


# --- API tokens -------------------------------------------------------------------------------


def _tokens_page(
    request: HttpRequest,
    form: ApiTokenCreateForm | None = None,
    created=None,
    secret: str | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "tokens": selectors.api_token_list(user=request.user),
        "form": form or ApiTokenCreateForm(),
        "created": created,
        "secret": secret,
    }
    return render(request, "labs/tokens.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; a POST creates one and shows its secret in this response only.

    The secret is rendered straight into the POST's response (never stored, never cached), so
    reloading the list never shows it again.
    """
    if request.method == "POST":
        form = ApiTokenCreateForm(request.POST)
        if not form.is_valid():
            return _tokens_page(request, form=form, status=400)
        token, secret = services.api_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            expires_in_days=form.cleaned_data["expires_in_days"],
        )
        return _tokens_page(request, created=token, secret=secret)
    return _tokens_page(request)


@never_cache
@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = _get_or_404(selectors.api_token_list(user=request.user), pk)
    services.api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) revoked.")
    return redirect("tokens")


# --- Lab settings -------------------------------------------------------------------------------


def _settings_page(
    request: HttpRequest,
    *,
    lab_form: LabSettingsForm | None = None,
    quality_form: QualityThresholdsForm | None = None,
    delete_form: LabDeleteForm | None = None,
    regraded=None,
    status: int = 200,
) -> HttpResponse:
    from apps.gaze.models import Reading  # the readings live in a later app

    lab = request.lab if request.lab else None
    is_admin = role_allows(request.lab_role if lab else None, Action.MANAGE_MEMBERS)
    context = {"is_admin": is_admin, "role_label": Role(request.lab_role).label if lab else None}
    if lab:
        defaults = services.quality_threshold_defaults()
        own = lab.quality_thresholds or {}
        effective = services.lab_quality_thresholds(lab=lab)
        context["thresholds"] = [
            {
                "name": name,
                "label": label,
                "unit": unit,
                "value": effective[name],
                "own": own.get(name) is not None,
                "default": defaults[name],
            }
            for name, (label, unit) in services.QUALITY_THRESHOLD_FIELDS.items()
        ]
        by_grade = dict(
            Reading.objects.filter(lab=lab).values_list("grade").annotate(n=Count("id")).order_by()
        )
        context["readings_by_grade"] = [(g, by_grade.get(g, 0)) for g in ("good", "usable", "poor")]
        context["readings"] = sum(by_grade.values())
        context["quality_changed"] = request.GET.get("changed") == "quality"
        context["regraded"] = regraded
    if lab and is_admin:
        initial = {"lab": lab.pk}
        context["lab_form"] = lab_form or LabSettingsForm(
            initial={**initial, "name": lab.name, "description": lab.description}
        )
        # 95 rather than 95.0 in the field
        own_values = {
            k: int(v) if float(v).is_integer() else v for k, v in own.items() if v is not None
        }
        context["quality_form"] = quality_form or QualityThresholdsForm(
            initial={**initial, **own_values}, defaults=defaults
        )
        context["delete_form"] = delete_form or LabDeleteForm(initial=initial, lab_name=lab.name)
        context["impact"] = services.lab_delete_impact(lab=lab)
    return render(request, "labs/settings.html", context, status=status)


def _settings_lab(request: HttpRequest):
    """The lab a settings form names: one of the user's labs (another is a 404) that the user
    administers (else 403). If another tab switched lab since the form was shown, that lab
    becomes the current one again, so that the answer shows the lab that was edited."""
    lab = _get_or_404(selectors.lab_list_for_user(user=request.user), request.POST.get("lab"))
    if not role_allows(
        selectors.membership_role(user=request.user, lab=lab), Action.MANAGE_MEMBERS
    ):
        raise PermissionDenied(f"Only the admins of {lab.name} change its settings.")
    if lab.pk != getattr(request.lab, "pk", None):
        # Another tab switched lab since this page was shown: show the lab that was edited.
        request.session[SESSION_KEY] = lab.pk
        request.lab, request.lab_role = lab, selectors.membership_role(user=request.user, lab=lab)
    return lab


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def lab_settings(request: HttpRequest) -> HttpResponse:
    """The current lab's settings: every member sees them; its admins change the name and
    description (a POST here), the quality thresholds, re-grade readings, and delete the lab."""
    if request.method != "POST":
        return _settings_page(request)
    lab = _settings_lab(request)
    form = LabSettingsForm(request.POST)
    if form.is_valid():
        try:
            services.lab_update(
                lab=lab,
                actor=request.user,
                name=form.cleaned_data["name"].strip(),
                description=form.cleaned_data["description"],
            )
        except (ValidationError, PermissionDenied) as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Lab settings saved: {lab.name}.")
            return redirect("lab-settings")
    return _settings_page(request, lab_form=form, status=400)


@never_cache
@login_required
@require_POST
def lab_settings_quality(request: HttpRequest) -> HttpResponse:
    """Set the lab's own quality thresholds (admins); empty fields take the server's defaults.
    The page then offers to grade the stored readings again."""
    lab = _settings_lab(request)
    form = QualityThresholdsForm(request.POST, defaults=services.quality_threshold_defaults())
    if form.is_valid():
        before = services.lab_quality_thresholds(lab=lab)
        try:
            services.lab_update(lab=lab, actor=request.user, quality_thresholds=form.thresholds())
        except (ValidationError, PermissionDenied) as exc:
            add_service_error(form, exc)
        else:
            if services.lab_quality_thresholds(lab=lab) == before:
                messages.info(request, "The quality thresholds are as they were.")
                return redirect("lab-settings")
            messages.success(
                request,
                "Quality thresholds saved. Recordings parsed from now on are graded with them; "
                "the readings stored so far keep their grades until you re-grade them below.",
            )
            return redirect(f"{reverse('lab-settings')}?changed=quality#regrade")
    return _settings_page(request, quality_form=form, status=400)


@never_cache
@login_required
@require_POST
def lab_regrade(request: HttpRequest) -> HttpResponse:
    """Grade the lab's stored readings again with its thresholds now (admins): from the quality
    measures each reading stores, so no recording is parsed again."""
    from apps.gaze.services import lab_readings_regrade

    lab = _settings_lab(request)
    report = lab_readings_regrade(lab=lab, actor=request.user)
    messages.success(request, f"Re-graded: {report.summary}")
    return redirect(f"{reverse('lab-settings')}#regrade")


@never_cache
@login_required
@require_POST
def lab_delete(request: HttpRequest) -> HttpResponse:
    """Delete the lab with everything it owns (admins), once its name is typed to confirm."""
    lab = _settings_lab(request)
    form = LabDeleteForm(request.POST, lab_name=lab.name)
    if not form.is_valid():
        return _settings_page(request, delete_form=form, status=400)
    name, impact = lab.name, services.lab_delete_impact(lab=lab)
    try:
        services.lab_delete(lab=lab, actor=request.user)
    except PermissionDenied as exc:
        add_service_error(form, exc)
        return _settings_page(request, delete_form=form, status=403)
    request.session.pop(SESSION_KEY, None)
    gone = ", ".join(f"{n} {what}" for what, n in impact)
    messages.success(request, f"Lab “{name}” deleted{f' with {gone}' if gone else ''}.")
    return redirect("home")
