"""Saliency targets in the app: per reading and pooled per image, cached by content hash."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from apps.core import quota
from apps.gaze import services
from apps.gaze.models import Fixation, Reading, SaliencyMap
from apps.gaze.services import saliency
from ml.gaze import ImageRect
from ml.saliency_maps import fixation_density, pool_maps, sigma_px_for_degrees
from tests.apps.gaze.objects import reading_with_fixations
from tests.conftest import client_for


def _reading(lab, session, image, points, *, use_for_training=True) -> Reading:
    return reading_with_fixations(lab, session, image, points, use_for_training=use_for_training)


POINTS = [(60.0, 80.0, 250.0), (180.0, 200.0, 400.0), (120.0, 150.0, 150.0)]


@pytest.fixture
def reading(personas, session, images):
    return _reading(personas.lab_a, session, images[0], POINTS)


def test_reading_map_is_fixation_density_with_one_degree(reading, session):
    sm = services.saliency_map_get_or_create(reading=reading, target_size=(64, 48))
    assert sm.kind == "reading" and sm.sigma_mode == "geometry"
    assert (sm.target_height, sm.target_width) == (64, 48)
    image = reading.image
    rect = ImageRect.fit((1920, 1080), (image.width, image.height))
    sigma = sigma_px_for_degrees(
        services.session_geometry(session), rect, (image.height, image.width)
    )
    assert sm.sigma_px == pytest.approx(sigma)
    want = fixation_density(
        np.array([p[:2] for p in POINTS]), np.array([p[2] for p in POINTS]),
        image_size=(image.height, image.width), sigma_px=sigma, target_size=(64, 48),
    )  # fmt: skip
    got = services.saliency_map_load(saliency_map=sm)
    assert got.dtype == np.float32 and got.shape == (64, 48)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert sm.file_path.startswith(f"gaze/lab-{reading.lab_id}/saliency/")
    assert sm.file_path.endswith(".npy")


def test_cache_hit_returns_the_same_row_without_recomputing(reading):
    first = services.saliency_map_get_or_create(reading=reading, target_size=(32, 32))
    with mock.patch.object(saliency, "fixation_density", side_effect=AssertionError("recomputed")):
        again = services.saliency_map_get_or_create(reading=reading, target_size=(32, 32))
    assert again.pk == first.pk and SaliencyMap.objects.count() == 1
    other = services.saliency_map_get_or_create(reading=reading, target_size=(16, 16))
    assert other.pk != first.pk and other.cache_key != first.cache_key


def test_key_changes_when_fixations_change(reading):
    first = services.saliency_map_get_or_create(reading=reading, target_size=(32, 32))
    Fixation.objects.filter(reading=reading, index=1).update(x=181.0)
    second = services.saliency_map_get_or_create(reading=reading, target_size=(32, 32))
    assert second.cache_key != first.cache_key and second.pk != first.pk
    Fixation.objects.filter(reading=reading, index=2).update(duration_ms=151.0)
    third = services.saliency_map_get_or_create(reading=reading, target_size=(32, 32))
    assert third.cache_key not in (first.cache_key, second.cache_key)


def test_pooled_map_is_pool_maps_of_the_used_readings(personas, session, images, reader):
    lab, image = personas.lab_a, images[0]
    sessions = [session] + [
        services.reading_session_create(lab=lab, reader=reader, created_by=None, name=f"S{i}")
        for i in (2, 3)
    ]
    a = _reading(lab, sessions[0], image, POINTS)
    b = _reading(lab, sessions[1], image, [(30.0, 40.0, 300.0), (200.0, 250.0, 900.0)])
    poor = _reading(lab, sessions[2], image, [(10.0, 10.0, 500.0)], use_for_training=False)
    pooled = services.saliency_map_get_or_create(image=image, target_size=(40, 30))
    assert pooled.kind == "pooled" and pooled.reading is None and pooled.n_readings == 2
    assert pooled.sigma_mode == "mixed"  # session S1 has geometry, S2 does not
    maps = [
        services.saliency_map_load(
            saliency_map=services.saliency_map_get_or_create(reading=r, target_size=(40, 30))
        )
        for r in (a, b)
    ]
    np.testing.assert_allclose(
        services.saliency_map_load(saliency_map=pooled), pool_maps(maps), rtol=1e-6, atol=1e-9
    )
    again = services.saliency_map_get_or_create(image=image, target_size=(40, 30))
    assert again.pk == pooled.pk
    everyone = services.saliency_map_get_or_create(
        image=image, target_size=(40, 30), include_unused=True
    )
    assert everyone.n_readings == 3 and everyone.cache_key != pooled.cache_key
    assert poor.saliency_maps.count() == 1


def test_no_fixation_on_the_image_is_a_clear_error(personas, session, images):
    off = _reading(personas.lab_a, session, images[1], [(-50.0, 10.0, 300.0)])
    with pytest.raises(ValidationError, match="no saliency map"):
        services.saliency_map_get_or_create(reading=off, target_size=(8, 8))
    with pytest.raises(ValidationError, match="no reading with fixations"):
        services.saliency_map_get_or_create(image=images[1], target_size=(8, 8))
    with pytest.raises(ValidationError):
        services.saliency_map_get_or_create(reading=off, target_size=(0, 8))
    assert not SaliencyMap.objects.exists()


def test_api_reading_and_pooled_maps(personas, reading):
    client = client_for(personas.researcher_a)  # a role that writes makes new maps
    url = f"/api/v1/readings/{reading.pk}/saliency/"
    r = client.get(url, {"height": 20, "width": 16})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["kind"] == "reading" and body["target_height"] == 20
    assert client.get(url, {"height": 20, "width": 16}).json()["id"] == body["id"]
    npy = client.get(body["npy_url"])
    assert npy.status_code == 200
    values = np.load(io.BytesIO(b"".join(npy) if npy.streaming else npy.content))
    assert values.shape == (20, 16) and values.sum() == pytest.approx(1.0, abs=1e-5)
    png = client.get(body["png_url"])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"

    r = client.get("/api/v1/saliency-maps/", {"image": reading.image_id, "height": 20, "width": 16})
    assert r.status_code == 200, r.content
    [pooled] = r.json()["results"]
    assert pooled["kind"] == "pooled" and pooled["image"] == reading.image_id
    assert pooled["n_readings"] == 1

    assert client.get(url, {"height": 0, "width": 16}).status_code == 400
    assert client.get(url, {"height": "x"}).json()["error"]["fields"].get("height")
    default = client.get(url).json()
    assert (default["target_height"], default["target_width"]) == (640, 512)
    r = client.get("/api/v1/saliency-maps/", {"image": 999999, "height": 4, "width": 4})
    assert r.status_code == 400 and "image" in r.json()["error"]["fields"]


def test_api_other_labs_image_is_refused(personas, reading):
    client = client_for(personas.admin_b)
    r = client.get("/api/v1/saliency-maps/", {"image": reading.image_id, "height": 8, "width": 8})
    assert r.status_code == 400
    assert (
        client.get(f"/api/v1/readings/{reading.pk}/saliency/?height=8&width=8").status_code == 404
    )
    assert not SaliencyMap.objects.exists()


def test_a_viewer_reads_cached_maps_but_makes_none(personas, reading):
    url = f"/api/v1/readings/{reading.pk}/saliency/"
    viewer = client_for(personas.viewer_a)
    r = viewer.get(url, {"height": 20, "width": 16})
    assert r.status_code == 403 and "not made yet" in r.json()["error"]["message"]
    r = viewer.get("/api/v1/saliency-maps/", {"image": reading.image_id, "height": 20, "width": 16})
    assert r.status_code == 403
    assert not SaliencyMap.objects.exists()  # a read wrote nothing
    made = client_for(personas.researcher_a).get(url, {"height": 20, "width": 16}).json()
    assert viewer.get(url, {"height": 20, "width": 16}).json()["id"] == made["id"]


def test_maps_are_capped_at_the_image_size_or_a_model_size(personas, reading):
    researcher = client_for(personas.researcher_a)
    url = f"/api/v1/readings/{reading.pk}/saliency/"
    image = reading.image
    r = researcher.get(url, {"height": 4096, "width": 4096})
    assert r.status_code == 400 and "at most its own size" in r.json()["error"]["message"]
    r = researcher.get(url, {"height": image.height + 1, "width": image.width})
    assert r.status_code == 400
    assert researcher.get(url, {"height": image.height, "width": image.width}).status_code == 200
    # The model's input sizes are allowed whatever the image's size (this one is 300 x 250).
    assert researcher.get(url, {"height": 640, "width": 512}).status_code == 200
    assert researcher.get(url, {"height": 320, "width": 256}).status_code == 200
    assert SaliencyMap.objects.count() == 3


def test_a_labs_maps_stop_at_its_quota(personas, reading, settings):
    researcher = client_for(personas.researcher_a)
    url = f"/api/v1/readings/{reading.pk}/saliency/"
    first = researcher.get(url, {"height": 20, "width": 16}).json()
    size = SaliencyMap.objects.get(pk=first["id"]).size_bytes
    assert size == 20 * 16 * 4 + 128  # the .npy: header and float32 values
    used = quota.derived_bytes(reading.lab_id)  # the images' previews count too
    assert used > size
    settings.LAB_DERIVED_QUOTA_BYTES = used + 500
    r = researcher.get(url, {"height": 30, "width": 30})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "quota_exceeded" and "quota" in r.json()["error"]["message"]
    assert SaliencyMap.objects.count() == 1  # nothing stored past the quota
    assert researcher.get(url, {"height": 20, "width": 16}).json()["id"] == first["id"]  # cached
