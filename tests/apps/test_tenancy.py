"""Tenancy, proved on every API route that is registered.

The routes come from Django's resolver, not from a list kept by hand: a route added later is
covered without anyone remembering. Each route must say whose data it serves (``tenancy`` on its
view) and, unless public, have an object factory below; otherwise this test fails and says what to
add.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.datasets.models import DatasetSnapshot
from apps.evaluation.models import Evaluation, EvaluationImage
from apps.gaze.models import (
    Fixation,
    Reader,
    Reading,
    ReadingSession,
    Recording,
    SaliencyMap,
)
from apps.imaging.models import Image, ImageClass, ImageRegion, UploadBatch
from apps.labs.models import ApiToken, Invitation, Lab, Membership
from apps.labs.services import api_token_create, invitation_create
from apps.training.models import ModelAlias, ModelVersion, TrainingJob
from apps.webhooks.models import Webhook, WebhookDelivery
from tests.apps.gaze.objects import (
    gaze_fixation,
    gaze_reader,
    gaze_reading,
    gaze_recording,
    gaze_session,
)
from tests.conftest import Personas, client_for

DOC_VIEWS = (SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView)
WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    view: type
    methods: tuple[str, ...]
    detail: bool

    def url(self, pk=None) -> str:
        return reverse(self.name, kwargs={"pk": pk} if self.detail else None)

    def __str__(self) -> str:
        return f"{self.name} ({self.pattern})"


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def api_routes() -> list[Route]:
    routes = []
    for pattern, entry in _walk(get_resolver().url_patterns):
        if not pattern.lstrip("^").startswith("api/v1/"):
            continue
        view = getattr(entry.callback, "cls", None) or getattr(entry.callback, "view_class", None)
        actions = getattr(entry.callback, "actions", None)
        if actions is not None:
            allowed = getattr(view, "http_method_names", ())
            methods = tuple(m for m in actions if m in ("get", *WRITE_METHODS) and m in allowed)
        else:
            methods = tuple(m for m in ("get", *WRITE_METHODS) if hasattr(view, m))
        detail = "pk" in entry.pattern.regex.groupindex
        routes.append(Route(entry.name, pattern, view, methods, detail))
    return routes


ROUTES = api_routes()
PROTECTED = [
    r
    for r in ROUTES
    if not issubclass(r.view, DOC_VIEWS) and getattr(r.view, "tenancy", None) != "public"
]


# --- What each resource needs: an object of lab A (or of a user of lab A) -------------------
def _membership(p: Personas) -> Membership:
    return Membership.objects.get(user=p.researcher_a, lab=p.lab_a)


def _token(p: Personas) -> ApiToken:
    return api_token_create(user=p.viewer_a, name="viewer's token")[0]


def _invitation(lab: Lab, admin) -> Invitation:
    return invitation_create(
        lab=lab, actor=admin, invitee="guest@example.org", role="viewer", build_url=str
    )[0]


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    # Image resources write files: keep them out of the checkout's var/.
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _image(lab: Lab, user) -> Image:
    import io

    from apps.imaging.services import image_ingest
    from tests.apps.imaging.dicoms import dicom_bytes, gradient

    data = dicom_bytes(gradient(4, 4, seed=lab.pk))
    return image_ingest(
        lab=lab, uploaded_by=user, file=io.BytesIO(data), filename="img.dcm", size=len(data)
    ).image


def _upload_batch(lab: Lab, user) -> UploadBatch:
    import io

    from apps.imaging.services import Upload, upload_batch_create
    from tests.apps.imaging.dicoms import dicom_bytes, gradient

    data = dicom_bytes(gradient(4, 4, seed=lab.pk))
    upload = Upload(file=io.BytesIO(data), filename="img.dcm", size=len(data))
    return upload_batch_create(lab=lab, created_by=user, uploads=[upload], enqueue=False)


def _image_region(lab: Lab, user) -> ImageRegion:
    from apps.imaging.services import regions_import

    image = _image(lab, user)
    text = f"image,name,x1,y1,x2,y2\n{image.key},heart,0,0,2,2\n"
    regions_import(lab=lab, actor=user, fmt="boxes", text=text)
    return ImageRegion.objects.get(image=image, name="heart")


def _saliency_map(lab, user) -> SaliencyMap:
    from apps.gaze.services import saliency_map_get_or_create

    reading = gaze_fixation(lab, _image(lab, user)).reading
    return saliency_map_get_or_create(reading=reading, target_size=(4, 4))


def _snapshot(lab, user) -> DatasetSnapshot:
    from tests.apps.datasets.objects import ready_snapshot

    return ready_snapshot(lab, user)


def _training(factory: str, lab, user):
    from tests.apps.training import objects

    return getattr(objects, factory)(lab, user)


def _evaluation(lab, user):
    """A succeeded evaluation of lab A's (untrained, tiny) version on a small snapshot."""
    from apps.evaluation.models import Evaluation
    from tests.apps.evaluation.objects import evaluated

    done = Evaluation.objects.filter(lab=lab, status="succeeded").first()
    return done or evaluated(_snapshot(lab, user), user)


def _version(lab, user):
    """A version without its automatic evaluation (so that only the request could add one)."""
    from tests.apps.evaluation.objects import version_on

    return version_on(_snapshot(lab, user), user)


def _evaluation_image(lab, user):
    return _evaluation(lab, user).images.first()


def _webhook(lab):
    return Webhook.objects.create(
        lab=lab, url="https://hooks.example.org/x", secret="whsec_t", events=["model.alias.set"]
    )


def _webhook_delivery(lab):
    return WebhookDelivery.objects.create(webhook=_webhook(lab), event="model.alias.set")


# basename -> (object of lab A or of viewer_a, the model, a valid create body naming lab A,
#              a row lab B's admin should see in the same list)
RESOURCES: dict[
    str,
    tuple[
        Callable[[Personas], object],
        type,
        Callable[[Personas], dict] | None,
        Callable[[Personas], object],
    ],
] = {
    # Creating a lab is open to anyone (see below), so it has no lab-A body.
    "lab": (lambda p: p.lab_a, Lab, None, lambda p: p.lab_b),
    "membership": (
        _membership,
        Membership,
        lambda p: {"lab": p.lab_a.pk, "user": "outsider", "role": "viewer"},
        lambda p: Membership.objects.get(user=p.admin_b),
    ),
    "invitation": (
        lambda p: _invitation(p.lab_a, p.admin_a),
        Invitation,
        lambda p: {"lab": p.lab_a.pk, "invitee": "someone@example.org", "role": "viewer"},
        lambda p: _invitation(p.lab_b, p.admin_b),
    ),
    # User-owned: there is nothing of a lab to write.
    "token": (_token, ApiToken, None, lambda p: api_token_create(user=p.admin_b, name="b")[0]),
    "image": (
        lambda p: _image(p.lab_a, p.researcher_a),
        Image,
        lambda p: {"lab": p.lab_a.pk},
        lambda p: _image(p.lab_b, p.admin_b),
    ),
    # Upload batches are created by POST /images/ (above); their route only reads.
    "image-upload": (
        lambda p: _upload_batch(p.lab_a, p.researcher_a),
        UploadBatch,
        None,
        lambda p: _upload_batch(p.lab_b, p.admin_b),
    ),
    # Regions are created by POST /image-regions/import/ (a file naming the lab's images).
    "image-region": (
        lambda p: _image_region(p.lab_a, p.researcher_a),
        ImageRegion,
        lambda p: {"lab": p.lab_a.pk, "format": "boxes"},
        lambda p: _image_region(p.lab_b, p.admin_b),
    ),
    "image-class": (
        lambda p: ImageClass.objects.get(lab=p.lab_a, name="CHF"),
        ImageClass,
        lambda p: {"lab": p.lab_a.pk, "name": "Effusion"},
        lambda p: ImageClass.objects.get(lab=p.lab_b, name="CHF"),
    ),
    "reader": (
        lambda p: gaze_reader(p.lab_a),
        Reader,
        lambda p: {"lab": p.lab_a.pk, "code": "R9"},
        lambda p: gaze_reader(p.lab_b),
    ),
    "session": (
        lambda p: gaze_session(p.lab_a),
        ReadingSession,
        lambda p: {"lab": p.lab_a.pk, "reader": gaze_reader(p.lab_a).pk},
        lambda p: gaze_session(p.lab_b),
    ),
    "recording": (
        lambda p: gaze_recording(p.lab_a, p.researcher_a),
        Recording,
        lambda p: {"session": gaze_session(p.lab_a).pk},
        lambda p: gaze_recording(p.lab_b, p.admin_b),
    ),
    "reading": (
        # With a fixation on its image, so that its saliency map can be made.
        lambda p: gaze_fixation(p.lab_a, _image(p.lab_a, p.researcher_a)).reading,
        Reading,
        None,
        lambda p: gaze_reading(p.lab_b, _image(p.lab_b, p.admin_b)),
    ),
    "fixation": (
        lambda p: gaze_fixation(p.lab_a, _image(p.lab_a, p.researcher_a)),
        Fixation,
        None,
        lambda p: gaze_fixation(p.lab_b, _image(p.lab_b, p.admin_b)),
    ),
    "saliency-map": (
        lambda p: _saliency_map(p.lab_a, p.researcher_a),
        SaliencyMap,
        None,
        lambda p: _saliency_map(p.lab_b, p.admin_b),
    ),
    # A built snapshot (so that its export answers); creating one is a write in lab A.
    "snapshot": (
        lambda p: _snapshot(p.lab_a, p.researcher_a),
        DatasetSnapshot,
        lambda p: {"lab": p.lab_a.pk, "name": "viewer's snapshot"},
        lambda p: _snapshot(p.lab_b, p.admin_b),
    ),
    # Training: a queued job (its create body names lab A's snapshot), a registered version with
    # a stored checkpoint, an alias.
    "training-job": (
        lambda p: _training("queued_job", p.lab_a, p.researcher_a),
        TrainingJob,
        lambda p: {"snapshot": _snapshot(p.lab_a, p.researcher_a).pk},
        lambda p: _training("queued_job", p.lab_b, p.admin_b),
    ),
    "model-version": (
        lambda p: _training("model_version", p.lab_a, p.researcher_a),
        ModelVersion,
        None,
        lambda p: _training("model_version", p.lab_b, p.admin_b),
    ),
    # Evaluations: a succeeded one (its create body names lab A's version), its image rows.
    "evaluation": (
        lambda p: _evaluation(p.lab_a, p.researcher_a),
        Evaluation,
        lambda p: {"version": _version(p.lab_a, p.researcher_a).pk},
        lambda p: _evaluation(p.lab_b, p.admin_b),
    ),
    "evaluation-image": (
        lambda p: _evaluation_image(p.lab_a, p.researcher_a),
        EvaluationImage,
        None,
        lambda p: _evaluation_image(p.lab_b, p.admin_b),
    ),
    "model-alias": (
        lambda p: _training("model_alias", p.lab_a, p.researcher_a),
        ModelAlias,
        None,
        lambda p: _training("model_alias", p.lab_b, p.admin_b),
    ),
    # Webhooks (lab admins write; every member reads); made directly, so no name is resolved.
    "webhook": (
        lambda p: _webhook(p.lab_a),
        Webhook,
        lambda p: {
            "lab": p.lab_a.pk,
            "url": "https://hooks.example.org/x",
            "events": ["model.alias.set"],
        },
        lambda p: _webhook(p.lab_b),
    ),
    "webhook-delivery": (
        lambda p: _webhook_delivery(p.lab_a),
        WebhookDelivery,
        None,
        lambda p: _webhook_delivery(p.lab_b),
    ),
}
UPDATE_BODY = {
    "lab": {"name": "Renamed"},
    "membership": {"role": "admin"},
    "invitation": {},
    "token": {},
    "image": {"label": "CHF"},
    "image-class": {},
    "image-upload": {},
    "image-region": {},
    "reader": {"specialty": "chest"},
    "session": {"name": "Renamed"},
    "recording": {},
    "reading": {"use_for_training": False},
    "fixation": {},
    "saliency-map": {},
    "snapshot": {},
    "training-job": {},
    "model-version": {},
    "model-alias": {},
    "evaluation": {},
    "evaluation-image": {},
    "webhook": {"active": False},
    "webhook-delivery": {},
}


def _basename(route: Route) -> str:
    return route.name.rsplit("-", 1)[0]


def test_every_api_route_declares_its_tenancy():
    assert len(ROUTES) >= 7, [str(r) for r in ROUTES]
    for route in ROUTES:
        if issubclass(route.view, DOC_VIEWS):
            continue
        assert getattr(route.view, "tenancy", None) in ("lab", "user", "public"), (
            f"{route}: set `tenancy` on {route.view.__name__} (use LabScopedMixin or "
            "UserOwnedMixin from apps/labs/tenancy.py)"
        )
        if route.detail or getattr(route.view, "tenancy", None) == "lab":
            assert _basename(route) in RESOURCES, (
                f"{route}: add a factory for {_basename(route)!r} to RESOURCES in this test"
            )


@pytest.mark.parametrize("route", PROTECTED, ids=str)
def test_anonymous_is_refused_everywhere(route, personas):
    obj = RESOURCES[_basename(route)][0](personas) if route.detail else None
    client = client_for(None)
    for method in route.methods:
        response = getattr(client, method)(route.url(getattr(obj, "pk", None)), {}, format="json")
        assert response.status_code in (401, 403), (route, method, response.status_code)
        assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("route", [r for r in PROTECTED if r.detail], ids=str)
def test_member_of_another_lab_gets_404(route, personas):
    make, model, _, _ = RESOURCES[_basename(route)]
    obj = make(personas)
    client = client_for(personas.admin_b)  # the most privileged member of lab B
    for method in route.methods:
        body = UPDATE_BODY[_basename(route)] if method in ("put", "patch") else {}
        response = getattr(client, method)(route.url(obj.pk), body, format="json")
        assert response.status_code == 404, (route, method, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    reloaded = model.objects.get(pk=obj.pk)  # untouched
    assert {f.name: getattr(reloaded, f.name) for f in model._meta.concrete_fields} == {
        f.name: getattr(obj, f.name) for f in model._meta.concrete_fields
    }


@pytest.mark.parametrize(
    "route",
    [r for r in PROTECTED if not r.detail and "get" in r.methods and r.view.tenancy != "public"],
    ids=str,
)
def test_lists_show_nothing_of_another_lab(route, personas):
    if _basename(route) not in RESOURCES:  # a non-collection route such as /me/
        response = client_for(personas.admin_b).get(route.url())
        assert "lab-a" not in response.content.decode()
        return
    make, _, _, make_own = RESOURCES[_basename(route)]
    obj, own = make(personas), make_own(personas)
    if route.name == "evaluation-compare":  # lab A's evaluation reads as one that does not exist
        client = client_for(personas.admin_b)
        theirs = client.get(route.url(), {"ids": [own.pk, obj.pk]})
        nowhere = client.get(route.url(), {"ids": [own.pk, 2**40]})
        assert theirs.status_code == nowhere.status_code == 400
        assert theirs.json()["error"]["fields"] == {
            "ids": [f"No evaluation {obj.pk} in your labs."]
        }
        assert str(nowhere.json()["error"]["fields"]).replace(str(2**40), str(obj.pk)) == str(
            theirs.json()["error"]["fields"]
        )
        return
    response = client_for(personas.admin_b).get(route.url())
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert own.pk in ids
    assert obj.pk not in ids


@pytest.mark.parametrize(
    "route", [r for r in PROTECTED if getattr(r.view, "tenancy", None) == "lab"], ids=str
)
def test_viewer_gets_403_on_writes(route, personas):
    make, model, create_body, _ = RESOURCES[_basename(route)]
    obj = make(personas)
    if str(route).startswith("reading-saliency"):
        # Viewers read the maps that exist; a role that writes makes them (403 otherwise).
        from apps.gaze.services import SALIENCY_DEFAULT_SIZE, saliency_map_get_or_create

        saliency_map_get_or_create(reading=obj, target_size=SALIENCY_DEFAULT_SIZE)
    client = client_for(personas.viewer_a)
    before = model.objects.count()
    for method in route.methods:
        if method == "get":
            query = {"ids": [obj.pk, obj.pk]} if route.name == "evaluation-compare" else {}
            answer = client.get(route.url(obj.pk if route.detail else None), query)
            # Comparing an evaluation with itself is refused as such (400), not for the role.
            assert answer.status_code == (400 if query else 200), answer.content[:300]
            continue
        if not route.detail and create_body is None:
            continue  # creating this resource is not a write inside an existing lab
        body = (
            UPDATE_BODY[_basename(route)]
            if method in ("put", "patch")
            else create_body(personas)
            if not route.detail
            else {}
        )
        response = getattr(client, method)(
            route.url(obj.pk if route.detail else None), body, format="json"
        )
        assert response.status_code == 403, (route, method, response.status_code, response.json())
        assert response.json()["error"]["code"] == "permission_denied"
    assert model.objects.count() == before


def test_creating_a_lab_is_open_and_makes_the_creator_its_admin(personas):
    response = client_for(personas.viewer_a).post("/api/v1/labs/", {"name": "New"}, format="json")
    assert response.status_code == 201
    lab = Lab.objects.get(pk=response.json()["id"])
    assert Membership.objects.get(lab=lab, user=personas.viewer_a).role == "admin"
    assert response.json()["role"] == "admin"


def test_tokens_of_another_user_are_not_found(personas):
    token = _token(personas)
    response = client_for(personas.admin_a).delete(f"/api/v1/tokens/{token.pk}/")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.django_db
def test_an_object_read_checks_its_lab_without_reading_the_lab_row(personas):
    """The permission reads the object's lab id (``lab_id``), not the Lab row: one query fewer
    per object read (found by apps.core.loadbench)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.gaze import services as gaze

    reader = gaze.reader_create(lab=personas.lab_a, code="Q1")
    client = client_for(personas.viewer_a)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/v1/readers/{reader.pk}/").status_code == 200
    lab_table = '"labs_lab"'
    assert not [q["sql"] for q in queries if f"FROM {lab_table}" in q["sql"]], (
        queries.captured_queries
    )
    other = client_for(personas.admin_b).get(f"/api/v1/readers/{reader.pk}/")
    assert other.status_code == 404
