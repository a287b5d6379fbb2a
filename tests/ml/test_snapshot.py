"""ml.data.snapshot: the model frame, fixations mapped into it, seed samples, content hash."""

from __future__ import annotations

import numpy as np
import pytest

from ml.data import letterbox, pad_and_stride
from ml.data.snapshot import (
    canonical_json,
    fixations_to_model,
    model_frame,
    seed_samples,
    snapshot_hash,
)
from ml.saliency_maps import fixation_density


def test_model_frame_letterboxes_by_default_and_pads_and_strides_in_seed_mode():
    image = np.random.default_rng(0).random((300, 250))
    frame, transform = model_frame(image, (64, 64))
    want, _ = letterbox(image, (64, 64))
    assert frame.dtype == np.float32 and frame.shape == (64, 64)
    np.testing.assert_array_equal(frame, want)
    assert transform.mode == "letterbox"
    frame, transform = model_frame(image, (64, 64), seed_mode=True)
    want, _ = pad_and_stride(image, padded=(320, 320), stride=5)
    np.testing.assert_array_equal(frame, want)
    assert transform.mode == "pad_and_stride" and transform.out_shape == (64, 64)


def test_letterbox_fixation_mapping_lands_where_the_image_content_does():
    # A portrait image 300 x 150 into 64 x 64: scale 64/300, 32 columns of content centred.
    image = np.zeros((300, 150))
    image[200:210, 30:40] = 1.0  # a bright square
    frame, transform = letterbox(image, (64, 64))
    [[col, row]] = fixations_to_model(np.array([[35.0, 205.0]]), transform)
    peak = np.unravel_index(np.argmax(frame), frame.shape)
    assert abs(row - peak[0]) <= 1 and abs(col - peak[1]) <= 1
    # Corners: the first and last image pixels map to the content's first and last pixels.
    got = fixations_to_model(np.array([[0.0, 0.0], [149.99, 299.99]]), transform)
    assert got.tolist() == [[int(transform.offset_x), 0], [int(transform.offset_x) + 31, 63]]


def test_fixations_off_the_image_or_nan_are_dropped_in_order():
    _, transform = letterbox(np.zeros((100, 100)), (32, 32))
    xy = np.array([[10.0, 10.0], [-1.0, 5.0], [np.nan, 3.0], [99.0, 120.0], [50.0, 50.0]])
    got = fixations_to_model(xy, transform)
    assert got.dtype == np.int64 and got.tolist() == [[3, 3], [16, 16]]
    assert fixations_to_model(np.zeros((0, 2)), transform).shape == (0, 2)


def test_fixation_mapping_agrees_with_the_density_peak():
    image_size = (300, 250)
    _, transform = letterbox(np.zeros(image_size), (64, 64))
    for xy in ([40.0, 60.0], [200.0, 251.3], [125.3, 150.7], [3.2, 297.9]):
        density = fixation_density(
            np.array([xy]), np.array([300.0]), image_size=image_size, sigma_px=2.0,
            transform=transform,
        )  # fmt: skip
        row, col = np.unravel_index(np.argmax(density), density.shape)
        [[c, r]] = fixations_to_model(np.array([xy]), transform)
        assert (r, c) == (row, col)


def test_pad_and_stride_mapping_picks_the_nearest_kept_pixel():
    _, transform = pad_and_stride(np.zeros((300, 250)), padded=(320, 320), stride=5)
    # Canvas offsets: top 10, left 35. Image pixel (x=0, y=0) -> canvas (35, 10) -> (7, 2).
    got = fixations_to_model(np.array([[0.5, 0.5], [2.0, 2.0], [249.0, 299.0]]), transform)
    assert got.tolist() == [[7, 2], [7, 2], [57, 62]]


def test_seed_samples_repeat_each_fixation_by_its_duration():
    xy = np.array([[1.0, 2.0], [3.0, 4.0]])
    samples = seed_samples(xy, np.array([10.0, 0.4]), rate_hz=1000.0)
    assert samples.shape == (11, 2)
    assert (samples[:10] == [1.0, 2.0]).all() and (samples[10] == [3.0, 4.0]).all()
    with pytest.raises(ValueError):
        seed_samples(xy, np.array([1.0]), 1000.0)
    with pytest.raises(ValueError):
        seed_samples(xy, np.array([1.0, 2.0]), 0.0)


def test_snapshot_hash_is_canonical_and_sensitive():
    a = {"classes": ["A", "B"], "items": [{"key": "k", "label": 1}], "resolution": [64, 64]}
    b = {"resolution": [64, 64], "items": [{"label": 1, "key": "k"}], "classes": ["A", "B"]}
    assert canonical_json(a) == canonical_json(b)
    assert snapshot_hash(a) == snapshot_hash(b) and len(snapshot_hash(a)) == 64
    c = {**a, "items": [{"key": "k", "label": 0}]}
    assert snapshot_hash(c) != snapshot_hash(a)
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
