"""HTML pages of the labs app: home, lab switcher, members and personal API tokens.

Views parse input, look objects up through the user-scoped selectors (another lab's object is a
404) and call one service; a service's ``ValidationError`` or ``PermissionDenied`` becomes a form
error or a message, never a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.labs import selectors, services
from apps.labs.forms import (
    ApiTokenCreateForm,
    LabCreateForm,
    MembershipAddForm,
    MembershipRoleForm,
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
    request: HttpRequest, add_form: MembershipAddForm | None = None, status: int = 200
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
        "add_form": add_form or MembershipAddForm(),
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
def membership_add(request: HttpRequest) -> HttpResponse:
    """Add an existing user to the lab named in the form (lab admins).

    The form names its lab, so a lab switch in another tab cannot redirect the addition.
    """
    lab = _get_or_404(selectors.lab_list_for_user(user=request.user), request.POST.get("lab"))
    form = MembershipAddForm(request.POST)
    if form.is_valid():
        try:
            membership = services.membership_add(
                lab=lab,
                actor=request.user,
                user=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
            )
        except PermissionDenied as exc:
            add_service_error(form, exc)
            return _members_page(request, add_form=form, status=403)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(
                request,
                f"{membership.user.username} added to {lab.name} as "
                f"{Role(membership.role).label.lower()}.",
            )
            return redirect("members")
    return _members_page(request, add_form=form, status=400)


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
