"""Saliency targets: gaze turned into the maps MT-UNet learns to predict.

Two modes.

**Default: fixation density at the target resolution** (:func:`fixation_density`). Each fixation
is a 2-D Gaussian with sigma = 1 degree of visual angle (in image pixels: from the session geometry,
:func:`sigma_px_for_degrees`, or per fixation where the format gives pixels per degree, as
REFLACX does), weighted by its duration. The map is computed *directly* at the model's resolution:
a separable Gaussian integrated over each target pixel's footprint in the image factorises into
``gy[n, i] * gx[n, j]``, so the whole map is one ``(h, N) @ (N, w)`` product after
``O(N * (h + w))`` evaluations of the normal CDF, instead of blurring a 3000 x 2500 raster and then
downsampling it. Integrating over the footprint (rather than sampling at its centre) is exactly what
"blur at full resolution, then area-resample" gives, without the raster or its cost.

Semantics follow REFLACX's official heatmaps: each fixation's Gaussian is a normalised density,
drawn only over the part of the image that was shown (``shown_rect``) and over the image itself
(mass that falls outside is dropped, not renormalised per fixation), weighted by duration, and the
map is normalised to sum 1. REFLACX gives pixels per degree per axis, so ``sigma_px`` may be
``(N, 2)``. Readings are pooled per image by :func:`pool_maps` (mean of per-reader maps).

**Original mode** (:func:`original_mtunet_target`): the MT-UNet code's EGD-CXR targets, exactly.
Raw gaze samples, each inside the image adding 1 to its pixel; OpenCV ``GaussianBlur`` with a
501 x 501 kernel (sigma from OpenCV's rule, 75.5 px) and BORDER_REFLECT_101; divided by its max;
zero-padded centred to 3200 x 2560 and every 5th pixel kept (640 x 512); min-max normalised again.
The blur is our own (OpenCV's kernel, reflect-101 border, no OpenCV at run time) and is evaluated
only at the pixels the stride keeps, which is exact because both normalisations are invariant to
the positive scale the first one applies.

The original stored the counts as ``int8``, so a pixel hit by more than 127 samples wrapped to a
negative count. That is fixed here (counts are exact); ``int8_overflow=True`` reproduces the defect
for comparison with the published numbers.

Pixel convention (as in :mod:`ml.gaze.mapping`): continuous image coordinates, pixel ``i`` covers
``[i, i + 1)``. REFLACX evaluates its Gaussians at integer coordinates, half a pixel away; with
sigma near 50 px the difference is immaterial. Sizes are numpy shapes, ``(H, W)``; note that
:mod:`ml.gaze.mapping` takes ``image_size`` as ``(width, height)``.

Maps are cached by :func:`target_cache_key` (sha256 of inputs, parameters and
:data:`SALIENCY_CODE_VERSION`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage, special

if TYPE_CHECKING:
    from ml.data.resize import ResizeTransform
    from ml.gaze.geometry import DisplayGeometry
    from ml.gaze.mapping import ImageRect

__all__ = [
    "SALIENCY_CODE_VERSION",
    "fixation_density",
    "gaussian_blur_reflect101",
    "opencv_gaussian_kernel",
    "original_mtunet_target",
    "pool_maps",
    "sigma_px_for_degrees",
    "target_cache_key",
]

#: Part of every cache key. Bump it whenever a change alters any map these functions return.
SALIENCY_CODE_VERSION = "ml.saliency_maps/1"

# Fixations per block in fixation_density: bounds memory at about 2 * 4096 * (h + w) float64.
_BLOCK = 4096


# ---------------------------------------------------------------------------------------------
# Default mode: duration-weighted Gaussian density, directly at the target resolution
# ---------------------------------------------------------------------------------------------


def sigma_px_for_degrees(
    geometry: DisplayGeometry,
    rect: ImageRect,
    image_size: tuple[int, int],
    degrees: float = 1.0,
) -> float:
    """Image pixels spanned by ``degrees`` of visual angle, for an image drawn in ``rect``.

    Uses the pixels per degree at the screen centre (:attr:`DisplayGeometry.px_per_deg`); over a
    typical reading display the angle per pixel varies by a few percent towards the edges.

    Args:
        geometry: The session's display geometry (screen size in mm and viewing distance needed).
        rect: Where the image was drawn on screen (:class:`ml.gaze.mapping.ImageRect`).
        image_size: ``(H, W)`` of the image in pixels.
        degrees: Visual angle to convert.

    Returns:
        Sigma in image pixels (mean over the two axes; equal when the aspect ratio is kept).
    """
    height, width = image_size
    image_px_per_screen_px = 0.5 * (width / rect.width + height / rect.height)
    return float(degrees * geometry.px_per_deg * image_px_per_screen_px)


def _footprints(
    image_size: tuple[int, int],
    target_size: tuple[int, int] | None,
    transform: ResizeTransform | None,
) -> tuple[tuple[int, int], tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Each target pixel's interval in image coordinates, per axis: ``[a, b)``."""
    height, width = image_size
    if transform is not None:
        if tuple(transform.in_shape) != (height, width):
            raise ValueError(
                f"the transform was made for an image of {tuple(transform.in_shape)}, "
                f"not {(height, width)}"
            )
        out_h, out_w = (int(s) for s in transform.out_shape)
        if target_size is not None and tuple(target_size) != (out_h, out_w):
            raise ValueError(
                f"target_size {target_size} differs from the transform's {out_h, out_w}"
            )
        scale = float(transform.scale)
        if transform.mode == "letterbox":
            # Area resampling: output pixel j covers the image interval [j - off, j + 1 - off) / s.
            ey = (np.arange(out_h + 1.0) - transform.offset_y) / scale
            ex = (np.arange(out_w + 1.0) - transform.offset_x) / scale
            return (out_h, out_w), (ey[:-1], ey[1:]), (ex[:-1], ex[1:])
        if transform.mode == "pad_and_stride":
            # Point sampling: output pixel j *is* image pixel (j - off) / s (no anti-aliasing).
            ay = np.round((np.arange(out_h) - transform.offset_y) / scale)
            ax = np.round((np.arange(out_w) - transform.offset_x) / scale)
            return (out_h, out_w), (ay, ay + 1), (ax, ax + 1)
        raise ValueError(f"unknown transform mode {transform.mode!r}")
    if target_size is None:
        raise ValueError("give target_size or transform")
    out_h, out_w = (int(s) for s in target_size)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"target_size must be positive, got {target_size}")
    ey = np.linspace(0.0, height, out_h + 1)
    ex = np.linspace(0.0, width, out_w + 1)
    return (out_h, out_w), (ey[:-1], ey[1:]), (ex[:-1], ex[1:])


def _interval_mass(
    a: np.ndarray, b: np.ndarray, mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Mass of N(mu, sigma^2) over ``[a_j, b_j) ∩ [lo_n, hi_n)``; shape ``(N, len(a))``."""
    contiguous = a.size > 1 and np.array_equal(a[1:], b[:-1])
    # Tiled footprints share their edges: one CDF evaluation per edge instead of two per pixel.
    points = np.concatenate([a, b[-1:]]) if contiguous else np.concatenate([a, b])
    t = (np.clip(points[None, :], lo[:, None], hi[:, None]) - mu[:, None]) / sigma[:, None]
    # tail = Phi(-|t|): differences of tails keep their precision far from the centre, where
    # Phi(tb) - Phi(ta) would cancel to zero.
    tail = special.ndtr(-np.abs(t))
    if contiguous:
        ta, tb, ca, cb = t[:, :-1], t[:, 1:], tail[:, :-1], tail[:, 1:]
    else:
        k = a.size
        ta, tb, ca, cb = t[:, :k], t[:, k:], tail[:, :k], tail[:, k:]
    mass = np.where(tb <= 0, cb - ca, np.where(ta >= 0, ca - cb, 1.0 - ca - cb))
    return np.maximum(mass, 0.0)


def _per_fixation(value: Any, n: int, width: int, name: str, *, row_scalar: bool) -> np.ndarray:
    """Broadcast a parameter to ``(N, width)`` float64.

    Accepted: a scalar, ``(N, width)``, and either ``(N,)`` (one value per fixation, used on every
    column: ``row_scalar``) or ``(width,)`` (one row for all fixations).
    """
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full((n, width), float(arr))
    if arr.shape == (n, width):
        return arr
    if row_scalar and arr.shape == (n,):
        return np.repeat(arr[:, None], width, axis=1)
    if not row_scalar and arr.shape == (width,):
        return np.broadcast_to(arr, (n, width)).copy()
    expected = f"({n},) or ({n}, {width})" if row_scalar else f"({width},) or ({n}, {width})"
    raise ValueError(f"{name} has shape {arr.shape}; expected a scalar, {expected}")


def fixation_density(
    fixations_xy: np.ndarray,
    durations_ms: np.ndarray,
    *,
    image_size: tuple[int, int],
    sigma_px: float | np.ndarray,
    target_size: tuple[int, int] | None = None,
    transform: ResizeTransform | None = None,
    shown_rect: np.ndarray | None = None,
    include_off_image: bool = False,
) -> np.ndarray:
    """Duration-weighted Gaussian fixation density, computed directly at the target resolution.

    Each target pixel holds the mass of the density over its footprint in the image (integrated,
    not sampled), so the result equals blurring a full-resolution raster and area-resampling it,
    at a fraction of the cost: ``O(N * (h + w))`` CDF evaluations and one matmul.

    Args:
        fixations_xy: Fixation positions ``(x, y)`` in image pixels (continuous; pixel ``i`` covers
            ``[i, i + 1)``). Rows with a NaN position are ignored.
        durations_ms: Fixation durations in milliseconds (the weights; non-negative).
        image_size: ``(H, W)`` of the image the positions refer to.
        sigma_px: Gaussian sigma in image pixels (1 degree of visual angle: see
            :func:`sigma_px_for_degrees`): a scalar, one per fixation ``(N,)``, or per fixation
            and axis ``(N, 2)`` as ``(sigma_x, sigma_y)`` (REFLACX's px/deg per axis).
        target_size: ``(h, w)`` of the map when the image is simply rescaled to it (each axis
            stretched). Give ``transform`` instead to follow the model's image preprocessing.
        transform: A :class:`ml.data.resize.ResizeTransform` (``letterbox``: the map lines up with
            the letterboxed image, padding is zero; ``pad_and_stride``: each output pixel is one
            sampled image pixel, as in the original code).
        shown_rect: The part of the image that was shown, ``(xmin, ymin, xmax, ymax)`` in image
            pixels, for all fixations ``(4,)`` or per fixation ``(N, 4)`` (REFLACX zoom and pan).
            Each Gaussian is drawn only there; the mass outside is dropped, as REFLACX does.
        include_off_image: Keep fixations whose position is outside the image (their in-image
            tails then count). Off by default: a fixation off the image looked at something else.

    Returns:
        The density, float32, summing to 1.

    Shape:
        ``fixations_xy: (N, 2)``, ``durations_ms: (N,)`` -> ``(h, w)``.

    Raises:
        ValueError: on inconsistent shapes, non-positive sigma, negative durations, or when no
            fixation leaves any mass on the map (nothing to normalise).
    """
    xy = np.asarray(fixations_xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"fixations_xy must be (N, 2), got {xy.shape}")
    n = xy.shape[0]
    durations = np.asarray(durations_ms, dtype=np.float64).reshape(-1)
    if durations.shape != (n,):
        raise ValueError(f"durations_ms has {durations.shape[0]} values for {n} fixations")
    if np.any(durations < 0):
        raise ValueError("durations_ms must be non-negative")
    height, width = (int(s) for s in image_size)
    sigma = _per_fixation(sigma_px, n, 2, "sigma_px", row_scalar=True)
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError("sigma_px must be positive and finite")

    lo = np.zeros((n, 2))
    hi = np.broadcast_to(np.array([width, height], dtype=np.float64), (n, 2)).copy()
    if shown_rect is not None:
        rect = _per_fixation(shown_rect, n, 4, "shown_rect", row_scalar=False)
        lo = np.maximum(lo, rect[:, :2])
        hi = np.minimum(hi, rect[:, 2:])

    keep = np.all(np.isfinite(xy), axis=1) & (durations > 0) & np.all(hi > lo, axis=1)
    if not include_off_image:
        keep &= (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)

    (out_h, out_w), (ay, by), (ax, bx) = _footprints((height, width), target_size, transform)
    density = np.zeros((out_h, out_w), dtype=np.float64)
    idx = np.flatnonzero(keep)
    for start in range(0, idx.size, _BLOCK):
        block = idx[start : start + _BLOCK]
        gx = _interval_mass(ax, bx, xy[block, 0], sigma[block, 0], lo[block, 0], hi[block, 0])
        gy = _interval_mass(ay, by, xy[block, 1], sigma[block, 1], lo[block, 1], hi[block, 1])
        density += gy.T @ (gx * durations[block, None])
    total = density.sum()
    if not total > 0:
        raise ValueError(
            f"no fixation leaves mass on the map ({int(keep.sum())} of {n} usable: on the image "
            "unless include_off_image, with a position, a positive duration and a shown region)"
        )
    return (density / total).astype(np.float32)


def pool_maps(maps: Sequence[np.ndarray] | np.ndarray, weights: Any = None) -> np.ndarray:
    """Pool per-reader maps of one image: the (weighted) mean of the maps, each normalised first.

    Each reading counts once whatever its length, so one reader who looked for two minutes does not
    outweigh three who looked for twenty seconds. (To weight by gaze time instead, compute one
    :func:`fixation_density` over the readers' fixations together.)

    Args:
        maps: Per-reader maps, non-negative, each with a positive sum.
        weights: Optional non-negative weight per map (e.g. per reader), not all zero.

    Returns:
        The pooled map, float32, summing to 1.

    Shape:
        ``maps: (R, h, w)`` (or a sequence of R ``(h, w)`` arrays), ``weights: (R,)`` -> ``(h, w)``.
    """
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in maps]) if len(maps) else None
    if stack is None or stack.ndim != 3:
        raise ValueError("pool_maps needs at least one 2-D map, all of the same shape")
    sums = stack.sum(axis=(1, 2))
    if np.any(stack < 0) or not np.all(np.isfinite(sums) & (sums > 0)):
        raise ValueError("every map must be non-negative with a positive, finite sum")
    w = np.ones(len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(stack),) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"weights must be {len(stack)} non-negative values, not all zero")
    pooled = np.tensordot(w / w.sum(), stack / sums[:, None, None], axes=1)
    return (pooled / pooled.sum()).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Original mode: the MT-UNet code's EGD-CXR targets
# ---------------------------------------------------------------------------------------------

# OpenCV's fixed kernels for small sizes when sigma <= 0 (its small_gaussian_tab).
_OPENCV_SMALL_KERNELS = {
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
    9: [v / 256 for v in (4, 13, 30, 51, 60, 51, 30, 13, 4)],
}


def opencv_gaussian_kernel(ksize: int, sigma: float = 0.0) -> np.ndarray:
    """OpenCV's ``getGaussianKernel``: the 1-D kernel its ``GaussianBlur`` uses.

    Args:
        ksize: Odd kernel size.
        sigma: Standard deviation; ``<= 0`` derives it as OpenCV does,
            ``0.3 * ((ksize - 1) * 0.5 - 1) + 0.8`` (75.5 for ksize 501).

    Returns:
        The kernel, float64, summing to 1.

    Shape:
        ``(ksize,)``.
    """
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"ksize must be odd and positive, got {ksize}")
    if sigma <= 0 and ksize in _OPENCV_SMALL_KERNELS:
        return np.array(_OPENCV_SMALL_KERNELS[ksize], dtype=np.float64)
    if sigma <= 0:
        sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    kernel = np.exp(-(x**2) / (2.0 * sigma * sigma))
    return kernel / kernel.sum()


def _reflect101(index: np.ndarray, size: int) -> np.ndarray:
    """OpenCV's BORDER_REFLECT_101 (``gfedcb|abcdefgh|gfedcba``), repeated for any distance."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    m = np.mod(index, period)
    return np.where(m < size, m, period - m)


def gaussian_blur_reflect101(image: np.ndarray, ksize: int = 501, sigma: float = 0.0) -> np.ndarray:
    """Separable Gaussian blur with OpenCV's kernel and border: ``cv2.GaussianBlur`` without OpenCV.

    A full-resolution reference (``O(H * W * ksize)``); :func:`original_mtunet_target` evaluates
    the same blur only where it needs it.

    Args:
        image: 2-D array.
        ksize: Odd kernel size (both axes).
        sigma: As in :func:`opencv_gaussian_kernel`.

    Returns:
        The blurred image, float64.

    Shape:
        ``(H, W)`` -> ``(H, W)``.
    """
    kernel = opencv_gaussian_kernel(ksize, sigma)
    out = np.asarray(image, dtype=np.float64)
    # scipy's "mirror" is reflect-101 (d c b | a b c d | c b a).
    for axis in (0, 1):
        out = ndimage.correlate1d(out, kernel, axis=axis, mode="mirror")
    return out


def _blur_rows_matrix(rows: np.ndarray, size: int, kernel: np.ndarray) -> np.ndarray:
    """``M`` with ``blur(v)[rows] = M @ v`` along one axis, reflect-101: ``(len(rows), size)``."""
    radius = (kernel.size - 1) // 2
    taps = np.arange(-radius, radius + 1)
    src = _reflect101(rows[:, None] + taps[None, :], size)
    flat = (np.arange(rows.size)[:, None] * size + src).ravel()
    weights = np.broadcast_to(kernel, src.shape).ravel()
    return np.bincount(flat, weights=weights, minlength=rows.size * size).reshape(rows.size, size)


def original_mtunet_target(
    sample_xy: np.ndarray,
    image_size: tuple[int, int],
    *,
    ksize: int = 501,
    sigma: float = 0.0,
    padded: tuple[int, int] = (3200, 2560),
    stride: int = 5,
    int8_overflow: bool = False,
) -> np.ndarray:
    """The original MT-UNet EGD-CXR target from raw gaze samples (SEED.md), reproduced exactly.

    Steps: each sample inside the image adds 1 to pixel ``(floor(y), floor(x))``; Gaussian blur
    (OpenCV's kernel for ``ksize``/``sigma``, BORDER_REFLECT_101); divide by the max; zero-pad
    centred to ``padded`` (a longer side is cropped centred, as the original did) and keep every
    ``stride``-th pixel (the geometry of :func:`ml.data.resize.pad_and_stride`); min-max normalise.
    The blur is evaluated only at the kept pixels: ``M_y[:, p] * c @ M_x[:, q].T`` over the
    samples' pixels, where ``M`` are the reflect-101 blur matrices restricted to the kept rows and
    columns. The division by the max cancels in the final min-max (it is a positive scale), so it
    only matters when the max is not positive (possible only with ``int8_overflow``); then the
    full-resolution max is computed.

    Args:
        sample_xy: Raw gaze samples ``(x, y)`` in original image pixels (EGD-CXR's
            ``X_ORIGINAL``, ``Y_ORIGINAL``); samples off the image or with NaN are ignored.
        image_size: ``(H, W)`` of the original image.
        ksize: Blur kernel size (501 in the original).
        sigma: Blur sigma; ``<= 0`` lets OpenCV's rule derive it (75.5 px for 501).
        padded: The canvas ``(H, W)`` (3200 x 2560 in the original); divisible by ``stride``.
        stride: Sampling step (5 in the original).
        int8_overflow: Reproduce the original's defect: counts stored as ``int8`` wrap past 127
            (128 samples on one pixel count as -128). The counts are then blurred as float.

    Returns:
        The target in ``[0, 1]``, float32 (all zeros when no sample falls on the image, where the
        original would divide by zero).

    Shape:
        ``sample_xy: (N, 2)`` -> ``(padded_H / stride, padded_W / stride)``, (640, 512) by default.
    """
    xy = np.asarray(sample_xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"sample_xy must be (N, 2), got {xy.shape}")
    if padded[0] % stride or padded[1] % stride:
        raise ValueError(f"padded size {padded} is not divisible by stride {stride}")
    height, width = (int(s) for s in image_size)
    out_shape = (padded[0] // stride, padded[1] // stride)
    kernel = opencv_gaussian_kernel(ksize, sigma)

    with np.errstate(invalid="ignore"):
        cols = np.floor(xy[:, 0])
        rows = np.floor(xy[:, 1])
        inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    pixel = rows[inside].astype(np.int64) * width + cols[inside].astype(np.int64)
    flat, counts = np.unique(pixel, return_counts=True)
    if int8_overflow:
        counts = counts.astype(np.int8)
    values = counts.astype(np.float64)
    nonzero = values != 0
    flat, values = flat[nonzero], values[nonzero]
    out = np.zeros(out_shape, dtype=np.float64)
    if flat.size == 0:
        return out.astype(np.float32)
    p, q = np.divmod(flat, width)

    # Same centring as ml.data.resize.pad_and_stride: canvas row r shows image row r - top.
    top, left = (padded[0] - height) // 2, (padded[1] - width) // 2
    canvas_rows = np.arange(out_shape[0]) * stride - top
    canvas_cols = np.arange(out_shape[1]) * stride - left
    row_ok = (canvas_rows >= 0) & (canvas_rows < height)
    col_ok = (canvas_cols >= 0) & (canvas_cols < width)
    my = _blur_rows_matrix(canvas_rows[row_ok], height, kernel)
    mx = _blur_rows_matrix(canvas_cols[col_ok], width, kernel)
    kept = (my[:, p] * values) @ mx[:, q].T
    out[np.ix_(row_ok, col_ok)] = kept

    peak = kept.max()
    if not peak > 0:
        # The original divides by the full-resolution max; only its sign survives the min-max.
        counts_image = np.zeros(height * width)
        counts_image[flat] = values
        peak = gaussian_blur_reflect101(counts_image.reshape(height, width), ksize, sigma).max()
        if peak == 0:
            return np.zeros(out_shape, dtype=np.float32)
    out /= peak
    lo, hi = out.min(), out.max()
    if not hi > lo:
        return np.zeros(out_shape, dtype=np.float32)
    return ((out - lo) / (hi - lo)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Cache keys
# ---------------------------------------------------------------------------------------------


def _feed(h: Any, value: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``value`` into the hash ``h``."""
    if value is None:
        h.update(b"N;")
    elif isinstance(value, bool | np.bool_):
        h.update(b"B1;" if value else b"B0;")
    elif isinstance(value, int | np.integer):
        h.update(b"I%d;" % int(value))
    elif isinstance(value, float | np.floating):
        h.update(b"F" + float(value).hex().encode() + b";")
    elif isinstance(value, str):
        data = value.encode()
        h.update(b"S%d:" % len(data) + data)
    elif isinstance(value, bytes):
        h.update(b"Y%d:" % len(value) + value)
    elif isinstance(value, np.ndarray):
        kind = value.dtype.kind
        if kind == "b":
            arr = value.astype(np.bool_)
        elif kind in "iu":
            arr = value.astype("<i8")
        elif kind == "f":
            arr = value.astype("<f8")
        else:
            raise TypeError(f"cannot hash an array of dtype {value.dtype}")
        arr = np.ascontiguousarray(arr)
        h.update(b"A" + arr.dtype.str.encode() + repr(arr.shape).encode() + b":")
        h.update(arr.tobytes())
    elif isinstance(value, Mapping):
        h.update(b"M%d:" % len(value))
        for key in sorted(value, key=str):
            _feed(h, str(key))
            _feed(h, value[key])
    elif isinstance(value, list | tuple):
        h.update(b"L%d:" % len(value))
        for item in value:
            _feed(h, item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(b"D")
        _feed(h, type(value).__name__)
        _feed(h, dataclasses.asdict(value))
    else:
        raise TypeError(f"cannot hash a {type(value).__name__} into a cache key")


def target_cache_key(mode: str, /, **inputs: Any) -> str:
    """Content hash of a saliency target: mode, inputs, parameters and code version.

    Pass exactly the arguments given to the function that makes the map, e.g.
    ``target_cache_key("fixation_density", fixations_xy=xy, durations_ms=d, image_size=(h, w),
    sigma_px=s, transform=t, shown_rect=None, include_off_image=False)``. Arrays are hashed by
    value (integers as int64, floats as float64, so the same numbers give the same key whatever
    their storage), with their shape; lists and tuples alike, element by element; mappings by
    sorted key; dataclasses (such as a ``ResizeTransform``) by class name and fields. Order
    matters: the same fixations in another order give another key. :data:`SALIENCY_CODE_VERSION`
    is part of the key, so maps cached before a change of the code are not reused.

    Args:
        mode: Which target (``"fixation_density"``, ``"original_mtunet"``, ``"pooled"``...).
        **inputs: The inputs and parameters.

    Returns:
        64 hexadecimal characters (sha256).

    Raises:
        TypeError: for a value that has no canonical encoding (e.g. an object array).
    """
    h = hashlib.sha256()
    _feed(h, SALIENCY_CODE_VERSION)
    _feed(h, mode)
    _feed(h, dict(inputs))
    return h.hexdigest()
