"""Bringing images and gaze maps to the model's resolution, with the transform recorded.

Two modes: :func:`letterbox` (aspect kept, anti-aliased, centred padding; the default) and
:func:`pad_and_stride` (the original code's zero-pad to 3200 x 2560 and every 5th pixel, without
anti-aliasing, kept for reproducing its numbers). Both return a :class:`ResizeTransform` that maps
gaze points and maps the same way as the image, so targets stay aligned with pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ResizeTransform:
    """``out = in * scale + offset`` per axis, then the output is ``out_shape``.

    Attributes:
        in_shape: ``(H, W)`` of the source.
        out_shape: ``(H, W)`` of the result.
        scale: output pixels per input pixel (same on both axes).
        offset_y: rows added on top (negative: cropped).
        offset_x: columns added on the left (negative: cropped).
        mode: ``letterbox`` or ``pad_and_stride``.
    """

    in_shape: tuple[int, int]
    out_shape: tuple[int, int]
    scale: float
    offset_y: float
    offset_x: float
    mode: str

    def to_dict(self) -> dict:
        return asdict(self)

    def points(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map source pixel coordinates (centres at integers) to output coordinates.

        Shape:
            ``xs, ys: (N,)`` -> two ``(N,)`` float arrays.
        """
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        if self.mode == "pad_and_stride":
            return xs * self.scale + self.offset_x, ys * self.scale + self.offset_y
        # Area resampling maps pixel edges, not centres: x_out + 0.5 = (x_in + 0.5) * scale.
        return (
            (xs + 0.5) * self.scale - 0.5 + self.offset_x,
            (ys + 0.5) * self.scale - 0.5 + self.offset_y,
        )

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Transform an image or gaze map of ``in_shape`` the same way as the image was."""
        if self.mode == "pad_and_stride":
            return _pad_and_stride(array, self)
        return _letterbox(array, self)


def _resize_area(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    # Bilinear with antialias averages over the footprint when shrinking and interpolates
    # when enlarging, so no frequency folds back into the result.
    out = F.interpolate(tensor, size=shape, mode="bilinear", antialias=True, align_corners=False)
    return out[0, 0].numpy()


def _place(content: np.ndarray, out_shape: tuple[int, int], top: int, left: int) -> np.ndarray:
    out = np.zeros(out_shape, dtype=np.float32)
    height, width = content.shape
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    rows = min(height - src_top, out_shape[0] - dst_top)
    cols = min(width - src_left, out_shape[1] - dst_left)
    out[dst_top : dst_top + rows, dst_left : dst_left + cols] = content[
        src_top : src_top + rows, src_left : src_left + cols
    ]
    return out


def _letterbox(array: np.ndarray, transform: ResizeTransform) -> np.ndarray:
    inner = (
        round(transform.in_shape[0] * transform.scale),
        round(transform.in_shape[1] * transform.scale),
    )
    resized = _resize_area(array, inner)
    return _place(resized, transform.out_shape, int(transform.offset_y), int(transform.offset_x))


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, ResizeTransform]:
    """Resize keeping the aspect ratio (anti-aliased), then zero-pad centred to ``size``.

    Args:
        image: 2-D array.
        size: output ``(H, W)``.

    Returns:
        ``(resized float32 (H, W), transform)``; ``transform.apply`` does the same to a gaze map.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    in_h, in_w = image.shape
    out_h, out_w = size
    scale = min(out_h / in_h, out_w / in_w)
    inner = (max(1, round(in_h * scale)), max(1, round(in_w * scale)))
    # The scale actually realised by integer output sizes; points use it to stay exact.
    scale = min(inner[0] / in_h, inner[1] / in_w)
    transform = ResizeTransform(
        in_shape=(in_h, in_w),
        out_shape=(out_h, out_w),
        scale=scale,
        offset_y=float((out_h - inner[0]) // 2),
        offset_x=float((out_w - inner[1]) // 2),
        mode="letterbox",
    )
    return _letterbox(image, transform), transform


def _pad_and_stride(array: np.ndarray, transform: ResizeTransform) -> np.ndarray:
    stride = round(1 / transform.scale)
    padded_shape = (transform.out_shape[0] * stride, transform.out_shape[1] * stride)
    top = round(transform.offset_y * stride)
    left = round(transform.offset_x * stride)
    padded = _place(np.asarray(array, dtype=np.float32), padded_shape, top, left)
    return padded[::stride, ::stride]


def pad_and_stride(
    image: np.ndarray, padded: tuple[int, int] = (3200, 2560), stride: int = 5
) -> tuple[np.ndarray, ResizeTransform]:
    """The original preprocessing: zero-pad centred to ``padded``, keep every ``stride``-th pixel.

    No anti-aliasing (a documented defect of the original, kept for reproduction). A side longer
    than ``padded`` is cropped centred, as the original did with landscape images.

    Args:
        image: 2-D array.
        padded: canvas ``(H, W)``; must be divisible by ``stride``.
        stride: sampling step.

    Returns:
        ``(float32 (padded_H / stride, padded_W / stride), transform)``.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if padded[0] % stride or padded[1] % stride:
        raise ValueError(f"padded size {padded} is not divisible by stride {stride}")
    in_h, in_w = image.shape
    top = (padded[0] - in_h) // 2
    left = (padded[1] - in_w) // 2
    transform = ResizeTransform(
        in_shape=(in_h, in_w),
        out_shape=(padded[0] // stride, padded[1] // stride),
        scale=1.0 / stride,
        offset_y=top / stride,
        offset_x=left / stride,
        mode="pad_and_stride",
    )
    return _pad_and_stride(image, transform), transform
