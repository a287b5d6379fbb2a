"""Background work of the labs app (thin: each task calls one service)."""

from __future__ import annotations

from celery import shared_task

from apps.labs import services


@shared_task(name="labs.api_token_purge")
def api_token_purge(older_than_days: int = 30) -> int:
    """Delete API tokens revoked or expired more than ``older_than_days`` ago."""
    return services.api_token_purge(older_than_days=older_than_days)
