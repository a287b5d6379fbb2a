"""One quota per lab for the files the platform derives (previews, pixel arrays, saliency maps,
and what training and evaluation will add): each app registers how many bytes of derived files a
lab holds in it, and a write that would pass ``LAB_DERIVED_QUOTA_BYTES`` is refused with
:class:`QuotaExceeded` (the API's 409 ``quota_exceeded``) before anything is stored."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from apps.core.errors import QuotaExceeded

_USAGE: dict[str, Callable[[int], int]] = {}


def register(name: str, usage: Callable[[int], int]) -> None:
    """``usage(lab_id)``: the bytes of derived files the lab holds in ``name`` (an app)."""
    _USAGE[name] = usage


def derived_bytes(lab_id: int) -> int:
    return sum(int(usage(lab_id)) for usage in _USAGE.values())


def check(*, lab, adding: int, what: str) -> None:
    """Refuse ``what`` (``adding`` bytes of derived files) if it would pass the lab's quota.

    Raises:
        QuotaExceeded: with a message that says how much is used, of what, and what to do.
    """
    quota = settings.LAB_DERIVED_QUOTA_BYTES
    used = derived_bytes(lab.pk)
    if used + adding > quota:
        raise QuotaExceeded(
            f"Lab {lab.name!r} keeps {used / 2**20:.1f} MiB of derived files (previews, pixel "
            f"arrays, saliency maps), and {what} ({adding / 2**20:.1f} MiB) would pass its quota "
            f"of {quota / 2**20:.0f} MiB (LAB_DERIVED_QUOTA_BYTES): delete images or sessions "
            "you no longer need, or ask the platform's administrator for a larger quota."
        )
