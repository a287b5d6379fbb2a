"""Dataset snapshots: the arithmetic of freezing (image, label, target, split) at a model size.

Django-free. The platform's ``apps.datasets`` selects images and readings, and calls these to
bring each image and its gaze into the model's frame and to name the result by its content:

- :func:`model_frame` letterboxes an image (anti-aliased, the default) or applies the original
  code's pad-and-stride (``seed`` mode), returning the array and its ``ResizeTransform``;
- :func:`fixations_to_model` maps fixations in image pixels into integer pixels of that frame
  (the same transform as the image, so targets, fixations and pixels line up);
- :func:`seed_samples` turns fixations into the raw-sample counts the original target expects;
- :func:`canonical_json` and :func:`snapshot_hash`: a manifest serialised canonically and its
  SHA-256, which is the snapshot's content hash (the manifest names every array by its SHA-256,
  and carries the labels, splits and choices, so the same data and choices give the same hash).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from ml.data.resize import ResizeTransform, letterbox, pad_and_stride

__all__ = [
    "SEED_STRIDE",
    "SNAPSHOT_CODE_VERSION",
    "canonical_json",
    "fixations_to_model",
    "model_frame",
    "seed_samples",
    "snapshot_hash",
]

#: Part of every snapshot's manifest: bump when a change alters any array a snapshot holds.
SNAPSHOT_CODE_VERSION = "ml.data.snapshot/1"

#: The original code's sampling step (3200 x 2560 canvas -> 640 x 512).
SEED_STRIDE = 5


def model_frame(
    image: np.ndarray, resolution: tuple[int, int], *, seed_mode: bool = False
) -> tuple[np.ndarray, ResizeTransform]:
    """An image brought to the model's ``resolution`` ``(H, W)``, with the transform used.

    Default: :func:`ml.data.resize.letterbox` (aspect kept, anti-aliased, centred zero padding).
    ``seed_mode``: the original MT-UNet preprocessing, zero-padded centred to ``5 x resolution``
    and every 5th pixel kept (no anti-aliasing; a longer side is cropped, as the original did).

    Returns:
        ``(float32 (H, W), transform)``.
    """
    height, width = (int(v) for v in resolution)
    if seed_mode:
        padded = (height * SEED_STRIDE, width * SEED_STRIDE)
        array, transform = pad_and_stride(image, padded=padded, stride=SEED_STRIDE)
    else:
        array, transform = letterbox(image, (height, width))
    return np.ascontiguousarray(array, dtype=np.float32), transform


def fixations_to_model(xy: np.ndarray, transform: ResizeTransform) -> np.ndarray:
    """Fixations in image pixels mapped to integer ``(x, y)`` pixels of the model's frame.

    Image coordinates are continuous (pixel ``i`` covers ``[i, i + 1)``). ``letterbox`` maps
    pixel edges linearly (``out = in * scale + offset``), so a fixation falls in output pixel
    ``floor(in * scale + offset)``. ``pad_and_stride`` keeps every ``stride``-th canvas pixel, so
    a fixation goes to the kept pixel nearest to its canvas pixel. Fixations that land outside
    the frame (off the image, or cropped away) are dropped; the order is kept.

    Shape:
        ``xy: (N, 2)`` -> ``(M, 2)`` int64, ``M <= N``.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    out_h, out_w = (int(v) for v in transform.out_shape)
    in_h, in_w = (int(v) for v in transform.in_shape)
    finite = np.all(np.isfinite(xy), axis=1)
    inside = finite.copy()
    inside[finite] = (
        (xy[finite, 0] >= 0)
        & (xy[finite, 0] < in_w)
        & (xy[finite, 1] >= 0)
        & (xy[finite, 1] < in_h)
    )
    xy = xy[inside]
    if transform.mode == "letterbox":
        cols = np.floor(xy[:, 0] * transform.scale + transform.offset_x)
        rows = np.floor(xy[:, 1] * transform.scale + transform.offset_y)
    elif transform.mode == "pad_and_stride":
        stride = round(1 / transform.scale)
        # Canvas pixel of the fixation, then the nearest kept one (kept: multiples of stride).
        canvas_x = np.floor(xy[:, 0]) + round(transform.offset_x * stride)
        canvas_y = np.floor(xy[:, 1]) + round(transform.offset_y * stride)
        cols = np.floor(canvas_x / stride + 0.5)
        rows = np.floor(canvas_y / stride + 0.5)
    else:
        raise ValueError(f"unknown transform mode {transform.mode!r}")
    keep = (cols >= 0) & (cols < out_w) & (rows >= 0) & (rows < out_h)
    return np.stack([cols[keep], rows[keep]], axis=1).astype(np.int64).reshape(-1, 2)


def seed_samples(xy: np.ndarray, durations_ms: np.ndarray, rate_hz: float) -> np.ndarray:
    """Raw-sample stand-ins for the original target: each fixation repeated once per sample its
    duration spans at ``rate_hz`` (at least once), at its position.

    The original code counted raw gaze samples per pixel; the platform stores fixations, so a
    fixation of ``d`` ms at ``rate_hz`` counts as ``round(d * rate_hz / 1000)`` samples there.

    Shape:
        ``xy: (N, 2)``, ``durations_ms: (N,)`` -> ``(sum of counts, 2)`` float64.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    durations = np.asarray(durations_ms, dtype=np.float64).reshape(-1)
    if durations.shape[0] != xy.shape[0]:
        raise ValueError(f"durations_ms has {durations.shape[0]} values for {xy.shape[0]} points")
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
    counts = np.maximum(1, np.round(np.nan_to_num(durations) * rate_hz / 1000.0)).astype(np.int64)
    return np.repeat(xy, counts, axis=0)


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON bytes: sorted keys, no spaces, ASCII, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def snapshot_hash(manifest: dict[str, Any]) -> str:
    """The snapshot's content hash: SHA-256 of the manifest's canonical JSON.

    The manifest names each array by its SHA-256 (content-addressed relative paths) and holds
    the labels, splits, patient keys, transforms and choices, so this hash changes exactly when
    any of those does.
    """
    return hashlib.sha256(canonical_json(manifest)).hexdigest()
