"""The browser's current lab: chosen with the lab switcher, kept in the session."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from apps.labs.selectors import lab_list_for_user, lab_roles_for_user

SESSION_KEY = "current_lab_id"


def resolve_current_lab(request):
    """The lab the session names if the user still belongs to it, else their first lab."""
    labs = list(lab_list_for_user(user=request.user))
    if not labs:
        return None
    wanted = request.session.get(SESSION_KEY)
    return next((lab for lab in labs if lab.pk == wanted), labs[0])


class CurrentLabMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.lab = SimpleLazyObject(lambda: resolve_current_lab(request))
        request.lab_role = SimpleLazyObject(
            lambda: lab_roles_for_user(user=request.user).get(getattr(request.lab, "pk", None))
        )
        return self.get_response(request)
