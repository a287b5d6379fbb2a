"""Shared fixtures: named personas in two labs.

lab A has an admin, a researcher, a reader and a viewer; lab B has its own admin. ``outsider``
belongs to no lab.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.labs.models import Lab, User
from apps.labs.roles import Role
from tests import shared_formats
from tests.factories import LabFactory, MembershipFactory, UserFactory


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``shared_formats(path=...)`` skip where the real exports are absent, and fail
    under CI (see tests/shared_formats.py)."""
    for mark in item.iter_markers("shared_formats"):
        shared_formats.require(mark.kwargs.get("path", shared_formats.FORMATS_DIR))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs a quarter second per user; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Personas:
    lab_a: Lab
    lab_b: Lab
    admin_a: User
    researcher_a: User
    reader_a: User
    viewer_a: User
    admin_b: User
    outsider: User


@pytest.fixture
def personas(db) -> Personas:
    lab_a = LabFactory(name="Lab A", slug="lab-a")
    lab_b = LabFactory(name="Lab B", slug="lab-b")
    users = {}
    for name, lab, role in [
        ("admin_a", lab_a, Role.ADMIN),
        ("researcher_a", lab_a, Role.RESEARCHER),
        ("reader_a", lab_a, Role.READER),
        ("viewer_a", lab_a, Role.VIEWER),
        ("admin_b", lab_b, Role.ADMIN),
    ]:
        users[name] = UserFactory(username=name)
        MembershipFactory(user=users[name], lab=lab, role=role)
    return Personas(lab_a=lab_a, lab_b=lab_b, outsider=UserFactory(username="outsider"), **users)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user: User | None) -> APIClient:
    """An API client authenticated as ``user`` (anonymous for None)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client
