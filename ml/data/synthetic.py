"""A tiny synthetic task in which both the class and the saliency are learnable.

Each image is noise plus one blob at a random place; the blob's look sets the class (0: bright
disc, 1: dark disc, 2: brighter ring) and the gaze target is a Gaussian on the blob. A model that
learns the task beats the centre-bias baseline on CC, which a model that learns nothing cannot.
Used by the tests, the benchmark and the GPU check; no real data is needed.
"""

from __future__ import annotations

import numpy as np


def blob_dataset(
    n: int, size: tuple[int, int] = (64, 64), seed: int = 0, noise: float = 0.3
) -> dict[str, np.ndarray]:
    """Make ``n`` synthetic images, gaze targets and labels (3 classes, balanced).

    Args:
        n: number of images.
        size: ``(H, W)``.
        seed: generator seed.
        noise: standard deviation of the background noise.

    Returns:
        ``{"images": (n, 1, H, W) float32, "targets": (n, 1, H, W) float32 (max 1),
        "labels": (n,) int64, "centres": (n, 2) float (x, y)}``.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    radius = max(2.0, min(size) / 10)
    labels = np.arange(n) % 3
    rng.shuffle(labels)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    images = rng.normal(0.0, noise, size=(n, 1, height, width)).astype(np.float32)
    targets = np.empty((n, 1, height, width), dtype=np.float32)
    centres = np.empty((n, 2))
    margin = 1.5 * radius
    for i, label in enumerate(labels):
        cx = rng.uniform(margin, width - margin)
        cy = rng.uniform(margin, height - margin)
        distance = np.hypot(xs - cx, ys - cy)
        if label == 0:
            blob = distance <= radius
        elif label == 1:
            blob = -(distance <= radius).astype(np.float32)
        else:
            blob = 2.0 * ((distance <= radius) & (distance >= radius / 2))
        images[i, 0] += blob.astype(np.float32)
        targets[i, 0] = np.exp(-0.5 * (distance / radius) ** 2)
        centres[i] = (cx, cy)
    return {
        "images": images,
        "targets": targets,
        "labels": labels.astype(np.int64),
        "centres": centres,
    }
