"""Fixtures of the labs tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The API token throttle counts failures in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()
