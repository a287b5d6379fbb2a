from apps.labs.selectors import lab_list_for_user


def current_lab(request):
    """The lab switcher's labs, the current lab and the user's role in it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    lab = request.lab
    return {
        "labs": lab_list_for_user(user=user),
        "current_lab": lab if lab else None,
        "current_role": str(request.lab_role) if lab else None,
    }
