"""The gallery's panels: an evaluated image's X-ray with a map laid over it (the model's
saliency, the readers' pooled map, or their difference) and the readers' fixations drawn on top,
as a PNG.

The drawing (``panel_png`` and the functions it uses) takes plain arrays and knows nothing of
Django; ``evaluation_image_panel`` at the end reads the stored arrays of one row and calls it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("model", "pooled", "difference")
# Bump when the drawing changes, so that browsers drop panels they cached.
RENDER_VERSION = "2"
# Panels are scaled up by a whole factor until their longer side reaches MIN_SIDE (a 64 x 64
# model frame is drawn at 256 x 256), and down to MAX_SIDE (640 x 512 at 384 x 307).
MIN_SIDE = 256
MAX_SIDE = 384

# Colour maps as anchors (position, RGB) interpolated into 256-entry tables: "inferno" for a
# map (dark and transparent where it is low), red-white-blue for the difference.
_INFERNO = [(0.0, (0, 0, 4)), (0.14, (40, 11, 84)), (0.29, (101, 21, 110)),
            (0.43, (159, 42, 99)), (0.57, (212, 72, 66)), (0.71, (245, 125, 21)),
            (0.86, (250, 193, 39)), (1.0, (252, 255, 164))]  # fmt: skip
_DIVERGING = [(0.0, (33, 102, 172)), (0.25, (103, 169, 207)), (0.5, (247, 247, 247)),
              (0.75, (239, 138, 98)), (1.0, (178, 24, 43))]  # fmt: skip


def _lut(anchors: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """A ``(256, 3)`` uint8 table interpolated between the anchors."""
    positions = np.array([p for p, _ in anchors])
    colours = np.array([c for _, c in anchors], dtype=np.float64)
    x = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(x, positions, colours[:, i]) for i in range(3)], axis=1).round(
    ).astype(np.uint8)  # fmt: skip


INFERNO = _lut(_INFERNO)
DIVERGING = _lut(_DIVERGING)


def xray_unit(image: np.ndarray) -> np.ndarray:
    """A grayscale image in ``[0, 1]``: integers divided by their type's maximum, floats in
    ``[0, 1]`` kept, other floats stretched between their minimum and maximum.

    Shape:
        ``(H, W)`` or ``(1, H, W)`` -> ``(H, W)`` float64.
    """
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"an X-ray is (H, W), got {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float64) / float(np.iinfo(array.dtype).max)
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if low >= 0.0 and high <= 1.0:
        return values
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def unit_peak(saliency: np.ndarray) -> np.ndarray:
    """A non-negative map divided by its maximum (zeros stay zeros)."""
    values = np.clip(np.nan_to_num(np.asarray(saliency, dtype=np.float64)), 0.0, None)
    peak = values.max(initial=0.0)
    return values / peak if peak > 0 else values


def density(saliency: np.ndarray) -> np.ndarray:
    """A non-negative map divided by its sum (uniform when it is all zeros)."""
    values = np.clip(np.nan_to_num(np.asarray(saliency, dtype=np.float64)), 0.0, None)
    total = values.sum()
    return values / total if total > 0 else np.full(values.shape, 1.0 / max(values.size, 1))


def difference(model: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """The model's density minus the readers', scaled to ``[-1, 1]`` by the larger absolute
    difference: positive where the model puts more mass than the readers looked."""
    diff = density(model) - density(pooled)
    scale = np.abs(diff).max(initial=0.0)
    return diff / scale if scale > 0 else diff


def scale_of(shape: tuple[int, int]) -> float:
    """The factor a frame of ``shape`` is drawn at: a whole factor up to ``MIN_SIDE`` for small
    frames, down to ``MAX_SIDE`` for large ones (a gallery panel is a thumbnail: a 640 x 512
    frame drawn whole would cost three times the time and bytes for pixels no screen shows)."""
    longest = max(1, max(shape))
    if longest > MAX_SIDE:
        return MAX_SIDE / longest
    return max(1, -(-MIN_SIDE // longest))


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float map resized to ``size`` ``(width, height)`` bilinearly."""
    image = Image.fromarray(values.astype(np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float64)


def overlay(xray: np.ndarray, values: np.ndarray, *, diverging: bool = False,
            opacity: float = 0.6) -> np.ndarray:  # fmt: skip
    """The X-ray in gray with ``values`` laid over it in colour.

    Args:
        xray: ``[0, 1]`` grayscale.
        values: ``[0, 1]`` for a map (its low values let the X-ray through), ``[-1, 1]`` with
            ``diverging`` (red: positive, blue: negative, near 0 transparent).
        opacity: the colour's weight where ``|values|`` is 1.

    Shape:
        ``xray, values: (H, W)`` -> ``(H, W, 3)`` uint8.
    """
    gray = np.repeat(np.clip(xray, 0.0, 1.0)[..., None] * 255.0, 3, axis=2)
    if diverging:
        v = np.clip(values, -1.0, 1.0)
        colour = DIVERGING[np.round((v + 1.0) * 127.5).astype(np.int64)].astype(np.float64)
        alpha = opacity * np.sqrt(np.abs(v))
    else:
        v = np.clip(values, 0.0, 1.0)
        colour = INFERNO[np.round(v * 255.0).astype(np.int64)].astype(np.float64)
        alpha = opacity * np.sqrt(v)
    mixed = gray * (1.0 - alpha[..., None]) + colour * alpha[..., None]
    return np.clip(mixed.round(), 0, 255).astype(np.uint8)


def draw_fixations(rgb: np.ndarray, fixations: np.ndarray | None, scale: float) -> np.ndarray:
    """Small circles (white with a dark edge) at each fixation's pixel centre.

    Shape:
        ``rgb: (H, W, 3)`` uint8 at the drawn scale; ``fixations: (N, 2)`` integer ``x, y`` in
        the model's frame (``scale`` times smaller).
    """
    if fixations is None or not len(fixations):
        return rgb
    image = Image.fromarray(rgb, mode="RGB")
    draw = ImageDraw.Draw(image)
    radius = max(3, round(1.2 * scale))  # at least 3 px, whatever the scale
    for x, y in np.asarray(fixations, dtype=np.float64).reshape(-1, 2):
        cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        draw.ellipse(box, outline=(20, 20, 20), width=3)
        draw.ellipse(box, outline=(255, 255, 255), width=1)
    return np.asarray(image)


def panel_png(*, kind: str, xray: np.ndarray | None, model: np.ndarray,
              pooled: np.ndarray | None, fixations: np.ndarray | None) -> bytes:  # fmt: skip
    """One gallery panel as PNG bytes.

    Args:
        kind: ``model`` (the model's map), ``pooled`` (the readers' pooled map) or
            ``difference`` (model minus readers, see :func:`difference`).
        xray: the image in the model's frame (black where missing).
        model: the model's saliency map.
        pooled: the readers' pooled map (needed for ``pooled`` and ``difference``).
        fixations: the readers' fixations, ``x, y`` in the model's frame.

    Shape:
        every map ``(H, W)``; the PNG is ``(H, W) * scale_of((H, W))``.

    Raises:
        ValueError: an unknown kind, a missing pooled map, or maps of different shapes.
    """
    if kind not in KINDS:
        raise ValueError(f"kind is one of {', '.join(KINDS)}")
    model = np.asarray(model, dtype=np.float64)
    shape = model.shape
    if kind != "model":
        if pooled is None:
            raise ValueError("this image has no pooled map")
        pooled = np.asarray(pooled, dtype=np.float64)
        if pooled.shape != shape:
            raise ValueError(f"the pooled map is {pooled.shape}, the model's {shape}")
    gray = np.zeros(shape) if xray is None else xray_unit(xray)
    if gray.shape != shape:
        raise ValueError(f"the image is {gray.shape}, the model's map {shape}")
    values = {
        "model": lambda: unit_peak(model),
        "pooled": lambda: unit_peak(pooled),
        "difference": lambda: difference(model, pooled),
    }[kind]()
    scale = scale_of(shape)
    size = (max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale)))
    rgb = overlay(_resize(gray, size), _resize(values, size), diverging=kind == "difference")
    rgb = draw_fixations(rgb, fixations, scale)
    out = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(out, format="PNG", optimize=False)
    return out.getvalue()


# --- Stored arrays (Django) ---------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    png: bytes
    etag: str


def panel_etag(row, kind: str) -> str:
    """The panel's ETag: the drawing's version, the kind, and the content hashes of every
    stored array it is drawn from (each name carries its SHA-256)."""
    from apps.core import storage

    item = row.item
    names = [row.map_name]
    if item is not None:
        names += [item.image_name, item.target_name, item.fixations_name]
    digests = [storage.digest_of(n) or n for n in names]
    text = "|".join([RENDER_VERSION, kind, *digests])
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def evaluation_image_panel(*, row, kind: str) -> Panel:
    """The ``kind`` panel of an evaluated image (``row``: an ``EvaluationImage`` with its
    ``item`` loaded).

    Raises:
        ValueError: an unknown kind, or the snapshot's arrays do not fit the stored map.
        apps.core.storage.StorageError: a stored array is missing.
    """
    from apps.core import storage
    from apps.evaluation.services.run import load_map

    if kind not in KINDS:
        raise ValueError(f"kind is one of {', '.join(KINDS)}")

    def array(name: str) -> np.ndarray | None:
        if not name:
            return None
        return np.load(io.BytesIO(storage.read_bytes(name)), allow_pickle=False)

    item = row.item
    xray = pooled = fixations = None
    if item is not None:
        xray = array(item.image_name)
        pooled = array(item.target_name)
        fixations = array(item.fixations_name)
    if kind != "model" and pooled is None:
        raise ValueError("The readers' pooled map of this image is no longer stored.")
    png = panel_png(kind=kind, xray=xray, model=load_map(row.map_name), pooled=pooled,
                    fixations=fixations)  # fmt: skip
    return Panel(png=png, etag=panel_etag(row, kind))
