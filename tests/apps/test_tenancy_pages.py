"""Tenancy on every HTML page route, walked as ``test_tenancy.py`` walks the API's: the routes
come from Django's resolver for the view modules named here, and each needs an entry below (an
object of lab A, its model, a form body that would change something if allowed), or the first
test fails and says what to add. Anonymous users go to the sign-in page; lab B's admin gets 404
on lab A's objects; a viewer reads but gets 403 (or 405) on every write; nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import get_resolver

from apps.datasets.models import DatasetSnapshot
from apps.evaluation.models import Evaluation, EvaluationImage
from apps.gaze.models import Reader, Reading, ReadingSession, Recording
from apps.imaging.models import Image, ImageClass
from apps.labs.models import Invitation, Lab, Membership
from apps.training.models import ModelVersion, TrainingJob
from apps.webhooks.models import Webhook
from tests.apps.gaze.objects import gaze_reader, gaze_reading, gaze_recording, gaze_session
from tests.apps.test_tenancy import (
    Route,
    _evaluation,
    _evaluation_image,
    _image,
    _invitation,
    _membership,
    _snapshot,
    _training,
    _walk,
    _webhook,
)
from tests.conftest import Personas


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGE_CACHE_DIR = str(tmp_path / "cache")
    settings.VAR_DIR = tmp_path / "var"


PAGE_VIEW_MODULES = (
    "apps.webhooks.views", "apps.evaluation.views", "apps.gaze.views", "apps.imaging.views",
    "apps.labs.views", "apps.datasets.views", "apps.training.views",
    "apps.evaluation.views_regions",
)  # fmt: skip
# Page routes of those modules that are no write inside a lab, with what covers them instead.
PAGE_ROUTES_NOT_WALKED = {
    "lab-create": "anyone signed in may create a lab (tests/apps/labs/test_views.py)",
    "lab-switch": "choosing one's own current lab (tests/apps/labs/test_views.py)",
    "invitation-accept": "the invitation link, open to its holder (test_invitation_pages.py)",
    "tokens": "one's own API tokens (tests/apps/labs/test_views.py)",
    "token-revoke": "one's own API tokens (tests/apps/labs/test_views.py)",
}
_HOOK_BODY = {"url": "https://8.8.8.8/x", "events": ["model.alias.set"], "active": "0"}
_EVALUATION_PAGE = (lambda p: _evaluation(p.lab_a, p.researcher_a), Evaluation, lambda p: {})


def _evaluation_body(p: Personas) -> dict:
    """The start form's body: another evaluation of lab A's version."""
    return {"version": Evaluation.objects.filter(lab=p.lab_a).first().version_id, "split": "test"}


def _gaze_session_body(p: Personas) -> dict:
    """A session form's body: a new session of lab A's reader, or its details changed."""
    return {"reader": gaze_reader(p.lab_a).pk, "name": "changed", "screen_width_px": 1000,
            "screen_height_px": 800, "fit_padding_px": 0, "image_placement": "fit",
            "fixation_detection": "ivt"}  # fmt: skip


_GAZE_READER = (lambda p: gaze_reader(p.lab_a), Reader, lambda p: {"code": "R9"})
_GAZE_SESSION = (lambda p: gaze_session(p.lab_a), ReadingSession, _gaze_session_body)
_GAZE_RECORDING = (lambda p: gaze_recording(p.lab_a, p.researcher_a), Recording, lambda p: {})


_IMAGE_PAGE = (lambda p: _image(p.lab_a, p.researcher_a), Image, lambda p: {})
_LAB_PAGE = (lambda p: p.lab_a, Lab, lambda p: {})


def _chf(p: Personas) -> ImageClass:
    return ImageClass.objects.get(lab=p.lab_a, name="CHF")


def _labels_body(p: Personas) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"lab": p.lab_a.pk, "file": SimpleUploadedFile("s.csv", b"key,label\nimg,CHF\n")}


def _lab_delete_body(p: Personas) -> dict:
    return {"lab": p.lab_a.pk, "confirm_name": p.lab_a.name}


def _graded_reading(p: Personas) -> Reading:
    reading = gaze_reading(p.lab_a, _image(p.lab_a, p.researcher_a))
    Reading.objects.filter(pk=reading.pk).update(quality={"valid_pct": 10.0, "fixation_count": 5})
    return Reading.objects.get(pk=reading.pk)


_SNAPSHOT = (lambda p: _snapshot(p.lab_a, p.researcher_a), DatasetSnapshot, lambda p: {})
_JOB = (lambda p: _training("queued_job", p.lab_a, p.researcher_a), TrainingJob, lambda p: {})
_VERSION = (lambda p: _training("model_version", p.lab_a, p.researcher_a), ModelVersion,
            lambda p: {})  # fmt: skip


def _job_body(p: Personas) -> dict:
    return {"snapshot": _snapshot(p.lab_a, p.researcher_a).pk, "preset": "quick"}


PAGE_RESOURCES: dict[str, tuple[Callable[[Personas], object], type, Callable[[Personas], dict]]] = {
    "webhooks": (lambda p: _webhook(p.lab_a), Webhook, lambda p: {"lab": p.lab_a.pk, **_HOOK_BODY}),
    "webhooks-hook": (lambda p: _webhook(p.lab_a), Webhook, lambda p: {}),
    "webhooks-hook-toggle": (lambda p: _webhook(p.lab_a), Webhook, lambda p: {"active": "0"}),
    "webhooks-hook-test": (lambda p: _webhook(p.lab_a), Webhook, lambda p: {}),
    "webhooks-hook-rotate": (lambda p: _webhook(p.lab_a), Webhook, lambda p: {}),
    "webhooks-hook-delete": (lambda p: _webhook(p.lab_a), Webhook, lambda p: {}),
    "evaluations": (_EVALUATION_PAGE[0], Evaluation, _evaluation_body),
    "evaluations-compare": _EVALUATION_PAGE,
    "evaluation-page": _EVALUATION_PAGE,
    "evaluation-csv": _EVALUATION_PAGE,
    "evaluation-gallery": _EVALUATION_PAGE,
    "evaluation-readers": _EVALUATION_PAGE,
    "evaluation-regions-page": _EVALUATION_PAGE,
    "evaluation-panel": (
        lambda p: _evaluation_image(p.lab_a, p.researcher_a),
        EvaluationImage,
        lambda p: {},
    ),
    "gaze-readers": _GAZE_READER,
    "gaze-reader": _GAZE_READER,
    "gaze-reader-delete": (_GAZE_READER[0], Reader, lambda p: {}),
    "gaze-sessions": _GAZE_SESSION,
    "gaze-session": _GAZE_SESSION,
    "gaze-session-edit": _GAZE_SESSION,
    "gaze-session-reparse": _GAZE_SESSION,
    "gaze-session-delete": _GAZE_SESSION,
    "gaze-session-training": (
        lambda p: gaze_reading(p.lab_a, _image(p.lab_a, p.researcher_a)).session,
        ReadingSession,
        lambda p: {"grade": "good", "use_for_training": "0"},
    ),
    "gaze-recording": _GAZE_RECORDING,
    "gaze-recording-reparse": _GAZE_RECORDING,
    "gaze-recording-delete": _GAZE_RECORDING,
    "gaze-reading-training": (
        lambda p: gaze_reading(p.lab_a, _image(p.lab_a, p.researcher_a)),
        Reading,
        lambda p: {"use_for_training": "0"},
    ),
    # Images (researchers and admins write) and the lab (its admins write).
    "image-library": _IMAGE_PAGE,
    "image-upload": _IMAGE_PAGE,
    "image-page": _IMAGE_PAGE,
    "image-delete": _IMAGE_PAGE,
    "image-label": (_IMAGE_PAGE[0], Image, lambda p: {"label": "CHF"}),
    "image-labels-import": (_IMAGE_PAGE[0], Image, _labels_body),
    "image-labels-apply": (_IMAGE_PAGE[0], Image, lambda p: {"token": "t", "action": "apply"}),
    "image-classes": (_chf, ImageClass, lambda p: {"lab": p.lab_a.pk, "name": "Effusion"}),
    "image-class-rename": (_chf, ImageClass, lambda p: {f"c{_chf(p).pk}-name": "Heart"}),
    "image-class-delete": (_chf, ImageClass, lambda p: {}),
    "home": _LAB_PAGE,
    "members": _LAB_PAGE,
    "invitation-create": (
        lambda p: _invitation(p.lab_a, p.admin_a),
        Invitation,
        lambda p: {"lab": p.lab_a.pk, "invitee": "guest2@example.org", "role": "viewer"},
    ),
    "invitation-revoke": (lambda p: _invitation(p.lab_a, p.admin_a), Invitation, lambda p: {}),
    "membership-role": (_membership, Membership, lambda p: {"role": "admin"}),
    "membership-remove": (_membership, Membership, lambda p: {}),
    "lab-settings": (_LAB_PAGE[0], Lab, lambda p: {"lab": p.lab_a.pk, "name": "Renamed"}),
    "lab-settings-quality": (_LAB_PAGE[0], Lab, lambda p: {"lab": p.lab_a.pk, "min_fixations": 9}),
    # A reading graded good whose stored measures grade poor: a re-grade would change it.
    "lab-settings-regrade": (_graded_reading, Reading, lambda p: {"lab": p.lab_a.pk}),
    "lab-settings-delete": (_LAB_PAGE[0], Lab, _lab_delete_body),
    # Snapshots and training (researchers and admins write).
    "datasets-snapshots": (_SNAPSHOT[0], DatasetSnapshot, lambda p: {"name": "more"}),
    "datasets-snapshot": _SNAPSHOT,
    "datasets-snapshot-delete": _SNAPSHOT,
    "training-jobs": (_JOB[0], TrainingJob, _job_body),
    "training-job": _JOB,
    "training-job-cancel-page": _JOB,
    "training-models": _VERSION,
    "training-model": (_VERSION[0], ModelVersion, lambda p: {"alias": "production"}),
}


def page_routes() -> list[Route]:
    routes = []
    for pattern, entry in _walk(get_resolver().url_patterns):
        if getattr(entry.callback, "__module__", None) not in PAGE_VIEW_MODULES:
            continue
        if entry.name in PAGE_ROUTES_NOT_WALKED:
            continue
        detail = "pk" in entry.pattern.regex.groupindex
        routes.append(Route(entry.name, pattern, entry.callback, ("get", "post"), detail))
    return routes


PAGE_ROUTES = page_routes()


def _fields(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in obj._meta.concrete_fields}


def test_every_page_route_has_a_factory():
    assert len(PAGE_ROUTES) >= 2, [str(r) for r in PAGE_ROUTES]
    for route in PAGE_ROUTES:
        assert route.name in PAGE_RESOURCES, (
            f"{route}: add an entry for {route.name!r} to PAGE_RESOURCES in this test"
        )


def _page_client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("route", PAGE_ROUTES, ids=str)
def test_pages_send_anonymous_to_sign_in(route, personas):
    make, model, body = PAGE_RESOURCES[route.name]
    obj = make(personas)
    before, count = _fields(obj), model.objects.count()
    for method in route.methods:
        data = body(personas) if method == "post" else {}
        response = getattr(_page_client(None), method)(
            route.url(obj.pk if route.detail else None), data
        )
        assert response.status_code in (302, 405), (route, method, response.status_code)
        if response.status_code == 302:
            assert response["Location"].startswith("/login/"), (route, method)
    assert model.objects.count() == count and _fields(model.objects.get(pk=obj.pk)) == before


@pytest.mark.parametrize("route", [r for r in PAGE_ROUTES if r.detail], ids=str)
def test_pages_of_another_lab_are_404(route, personas):
    make, model, body = PAGE_RESOURCES[route.name]
    obj = make(personas)
    before, count = _fields(obj), model.objects.count()
    client = _page_client(personas.admin_b)  # the most privileged member of lab B
    codes = {
        method: getattr(client, method)(
            route.url(obj.pk), body(personas) if method == "post" else {}
        ).status_code
        for method in route.methods
    }
    # A method the view does not take is a 405 before any lookup; every other one is a 404.
    assert set(codes.values()) <= {404, 405} and 404 in codes.values(), (route, codes)
    assert model.objects.count() == count and _fields(model.objects.get(pk=obj.pk)) == before


@pytest.mark.parametrize("route", PAGE_ROUTES, ids=str)
def test_pages_refuse_a_viewer_every_write(route, personas):
    make, model, body = PAGE_RESOURCES[route.name]
    obj = make(personas)
    before, count = _fields(obj), model.objects.count()
    client = _page_client(personas.viewer_a)
    url = route.url(obj.pk if route.detail else None)
    assert client.get(url).status_code in (200, 405), route  # reading is every member's
    response = client.post(url, body(personas))
    assert response.status_code in (403, 405), (route, response.status_code)
    assert model.objects.count() == count and _fields(model.objects.get(pk=obj.pk)) == before


def test_no_page_route_shares_its_name_with_an_api_route():
    """``reverse()`` takes the last route of a name: a page named like an API route (a router's
    ``<basename>-<action>``) would hide it, and the API walk would test the page instead."""
    from tests.apps.test_tenancy import api_routes

    page_names = {
        entry.name
        for pattern, entry in _walk(get_resolver().url_patterns)
        if entry.name and not pattern.lstrip("^").startswith("api/")
    }
    shared = page_names & {route.name for route in api_routes()}
    assert not shared, f"rename these page routes: {sorted(shared)}"
