"""Files go with their rows: each app declares which fields of its models name stored files, and
when such a row is deleted (by itself, or in a cascade from its session or lab), its files are
deleted once the deleting transaction commits, unless another row still names them (names are
content-addressed, so two rows may share one file). A rolled-back delete deletes nothing.

``manage.py storage_sweep`` finds what slips through (a crash between commit and delete, files
written by a request that then failed): stored files that no row names, older than a grace
period so that an upload in flight is never taken.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete

from apps.core import storage

log = logging.getLogger(__name__)

# model -> the fields of it that hold storage names
_FILE_FIELDS: dict[type[models.Model], tuple[str, ...]] = {}


def register(model: type[models.Model], *fields: str) -> None:
    """Declare that ``fields`` of ``model`` name stored files (called from an app's ready())."""
    _FILE_FIELDS[model] = tuple(fields)
    post_delete.connect(_deleted, sender=model, dispatch_uid=f"files-{model._meta.label}")


def registered() -> dict[type[models.Model], tuple[str, ...]]:
    return dict(_FILE_FIELDS)


def names_of(instance: models.Model) -> set[str]:
    fields = _FILE_FIELDS.get(type(instance), ())
    return {value for f in fields if (value := getattr(instance, f, ""))}


def is_named(name: str) -> bool:
    """Whether any row of any registered model names ``name``."""
    for model, fields in _FILE_FIELDS.items():
        query = Q()
        for f in fields:
            query |= Q(**{f: name})
        if model._default_manager.filter(query).exists():
            return True
    return False


def delete_unnamed(names: Iterable[str]) -> list[str]:
    """Delete each stored file that no row names any more; returns those deleted."""
    deleted = []
    for name in sorted(set(names)):
        if not is_named(name) and storage.delete(name):
            deleted.append(name)
    return deleted


def delete_after_commit(names: Iterable[str]) -> None:
    """Once the current transaction commits (now, outside one), delete the files of ``names``
    that no row names any more."""
    pending = set(names)
    if pending:
        transaction.on_commit(lambda: delete_unnamed(pending), robust=True)


def _deleted(sender, instance, **kwargs) -> None:
    delete_after_commit(names_of(instance))


# --- The sweep of files no row names ------------------------------------------------------------


def orphans(*, apps: Iterable[str], older_than: timedelta) -> list[str]:
    """Stored files under ``<app>/`` that no row names and that are older than ``older_than``."""
    cutoff = datetime.now(UTC) - older_than
    found = []
    for app in apps:
        # One listing that carries the times (over S3: no HEAD request per file).
        for name, when in storage.walk(f"{app}/"):
            if when is not None and when > cutoff:
                continue  # young: perhaps an upload whose row is not committed yet
            if not is_named(name):
                found.append(name)
    return found
