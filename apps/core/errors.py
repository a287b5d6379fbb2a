"""Errors that services raise and the API maps to its error shape (apps.core.api)."""

from __future__ import annotations


class QuotaExceeded(Exception):
    """A lab's stored files would pass a quota: answered 409 with code ``quota_exceeded``."""
