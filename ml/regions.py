"""Regions of an image (anatomy, findings) and the share of attention that falls in each.

A region is a plain dict ``{"name": str, "kind": "box" | "ellipse" | "mask", ...}``:

* ``box``: ``x1, y1, x2, y2`` in original image pixels, the rectangle ``[x1, x2) x [y1, y2)``;
* ``ellipse``: ``x1, y1, x2, y2``, the bounding box of the ellipse, in original image pixels;
* ``mask``: ``mask``, a boolean ``(H, W)`` array at the original image's size.

Extra keys (e.g. a REFLACX ellipse's ``certainty``) are kept and ignored. Image coordinates are
continuous as in :func:`ml.data.snapshot.fixations_to_model`: pixel ``i`` covers ``[i, i + 1)``,
so an integer box ``(x0, y0, x1, y1)`` with exclusive ends (like ``Phantom.finding_bbox``) covers
exactly its pixels.

:func:`region_masks` rasterises regions at the model's resolution through the image's
:class:`ml.data.resize.ResizeTransform`: a model pixel belongs to a region when the image point
it samples does (its centre mapped back for ``letterbox``; the kept image pixel's centre for
``pad_and_stride``). :func:`dwell_shares` and :func:`mass_shares` then give the share of fixation
time and of predicted saliency inside each region. The parsers read EGD-CXR's
``bounding_boxes.csv``, REFLACX's ``anomaly_location_ellipses.csv`` and the platform's own
``image,name,x1,y1,x2,y2`` format, and name the line and column of any fault.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "PHANTOM_REGIONS",
    "RegionFormatError",
    "dwell_shares",
    "mass_shares",
    "parse_boxes_csv",
    "parse_egd_bounding_boxes",
    "parse_reflacx_ellipses",
    "phantom_regions",
    "region_masks",
]

KINDS = ("box", "ellipse", "mask")
PHANTOM_REGIONS: tuple[str, ...] = ("right_lung", "left_lung", "heart", "mediastinum", "finding")
"""The phantom masks :func:`phantom_regions` returns by default."""

_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0", ""})


class RegionFormatError(ValueError):
    """A region file that cannot be read; the message names the line (1 = header) and column.

    Attributes:
        line: 1-based line number of the record at fault (its first line if it spans several).
        column: the column's header name, or None when the fault is not in one column.
    """

    def __init__(self, message: str, *, line: int, column: str | None = None) -> None:
        self.line = line
        self.column = column
        where = f"line {line}" if column is None else f"line {line}, column {column!r}"
        super().__init__(f"{where}: {message}")


# --- rasterising ------------------------------------------------------------------------------


def _samples(transform: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Image coordinates sampled by each model row and column, and half a model pixel in image
    pixels (the tolerance within which a region's centre is said to fall on a model pixel)."""
    height, width = shape
    if transform is None:
        return np.arange(height) + 0.5, np.arange(width) + 0.5, 0.5
    out_shape = getattr(transform, "out_shape", None)
    if out_shape is not None and tuple(int(v) for v in out_shape) != (height, width):
        raise ValueError(f"shape {(height, width)} differs from the transform's {tuple(out_shape)}")
    scale = float(transform.scale)
    if not scale > 0:
        raise ValueError(f"the transform's scale must be positive, got {scale}")
    offset_y, offset_x = float(transform.offset_y), float(transform.offset_x)
    mode = getattr(transform, "mode", "letterbox")
    rows, cols = np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64)
    if mode == "letterbox":
        # Pixel edges map linearly (out = in * scale + offset): invert at the pixel centres.
        sy = (rows + 0.5 - offset_y) / scale
        sx = (cols + 0.5 - offset_x) / scale
    elif mode == "pad_and_stride":
        # Point sampling: model pixel j is image pixel round((j - offset) / scale).
        sy = np.round((rows - offset_y) / scale) + 0.5
        sx = np.round((cols - offset_x) / scale) + 0.5
    else:
        raise ValueError(f"unknown transform mode {mode!r}")
    return sy, sx, 0.5 / scale


def _coordinates(region: Mapping[str, Any], label: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(region[k]) for k in ("x1", "y1", "x2", "y2"))
    except KeyError as error:
        raise ValueError(f"{label}: missing coordinate {error.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{label}: coordinates must be numbers") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise ValueError(f"{label}: coordinates must be finite")
    if x2 < x1 or y2 < y1:
        raise ValueError(f"{label}: x2 < x1 or y2 < y1 in {(x1, y1, x2, y2)}")
    return x1, y1, x2, y2


def _mark_centre(
    out: np.ndarray, sy: np.ndarray, sx: np.ndarray, cy: float, cx: float, half: float
) -> None:
    """Mark the model pixel whose sample is nearest to ``(cx, cy)``, if it lies on the canvas."""
    i = int(np.argmin(np.abs(sy - cy)))
    j = int(np.argmin(np.abs(sx - cx)))
    if abs(sy[i] - cy) <= half and abs(sx[j] - cx) <= half:
        out[i, j] = True


def _rasterise(
    region: Mapping[str, Any],
    label: str,
    sy: np.ndarray,
    sx: np.ndarray,
    half: float,
    in_shape: tuple[int, int] | None,
    keep_small: bool,
) -> np.ndarray:
    kind = region.get("kind")
    shape = (sy.size, sx.size)
    if kind == "mask":
        mask = np.asarray(region.get("mask"))
        if mask.ndim != 2:
            raise ValueError(f"{label}: a mask region needs a 2-D 'mask', got shape {mask.shape}")
        if in_shape is not None and mask.shape != in_shape:
            raise ValueError(
                f"{label}: mask shape {mask.shape} differs from the image's {in_shape}"
            )
        mask = mask.astype(bool)
        iy = np.floor(sy).astype(np.int64)
        ix = np.floor(sx).astype(np.int64)
        rows = np.flatnonzero((iy >= 0) & (iy < mask.shape[0]))
        cols = np.flatnonzero((ix >= 0) & (ix < mask.shape[1]))
        out = np.zeros(shape, dtype=bool)
        out[np.ix_(rows, cols)] = mask[np.ix_(iy[rows], ix[cols])]
        if keep_small and not out.any() and mask.any():
            ys, xs = np.nonzero(mask)
            _mark_centre(out, sy, sx, float(ys.mean()) + 0.5, float(xs.mean()) + 0.5, half)
        return out
    if kind not in ("box", "ellipse"):
        raise ValueError(f"{label}: kind must be one of {KINDS}, got {kind!r}")
    x1, y1, x2, y2 = _coordinates(region, label)
    if kind == "box":
        out = ((sy >= y1) & (sy < y2))[:, None] & ((sx >= x1) & (sx < x2))[None, :]
    else:
        cy, cx, ry, rx = (y1 + y2) / 2, (x1 + x2) / 2, (y2 - y1) / 2, (x2 - x1) / 2
        if rx > 0 and ry > 0:
            out = ((sy - cy) / ry)[:, None] ** 2 + ((sx - cx) / rx)[None, :] ** 2 <= 1.0
        else:
            out = np.zeros(shape, dtype=bool)
    if keep_small and not out.any():
        _mark_centre(out, sy, sx, (y1 + y2) / 2, (x1 + x2) / 2, half)
    return out


def region_masks(
    regions: Sequence[Mapping[str, Any]],
    shape: tuple[int, int],
    transform: Any = None,
    *,
    keep_small: bool = True,
) -> dict[str, np.ndarray]:
    """Boolean masks of the regions at the model's resolution.

    Args:
        regions: region dicts (see the module's docstring), in original image pixels.
        shape: ``(H, W)`` of the model's frame.
        transform: the image's :class:`ml.data.resize.ResizeTransform` (or any object with
            ``scale``, ``offset_y``, ``offset_x`` and optionally ``mode``, ``in_shape`` and
            ``out_shape``); None when image and model pixels coincide, in which case a mask
            region must already have ``shape``.
        keep_small: a region too small to contain any model pixel's sample point still marks the
            model pixel its centre falls on (if that is on the canvas), so it never vanishes.

    Returns:
        ``{name: (H, W) bool}``, in order of first appearance; regions sharing a name are OR-ed.

    Raises:
        ValueError: a malformed region (unknown kind, missing or reversed coordinates, a mask
            of the wrong size) or a shape that differs from the transform's.
    """
    height, width = (int(v) for v in shape)
    if height < 1 or width < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    sy, sx, half = _samples(transform, (height, width))
    if transform is None:
        in_shape: tuple[int, int] | None = (height, width)
    else:
        raw = getattr(transform, "in_shape", None)
        in_shape = None if raw is None else (int(raw[0]), int(raw[1]))
    masks: dict[str, np.ndarray] = {}
    for index, region in enumerate(regions):
        name = region.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"region {index}: 'name' must be a non-empty string, got {name!r}")
        label = f"region {index} ({name!r})"
        mask = _rasterise(region, label, sy, sx, half, in_shape, keep_small)
        if name in masks:
            masks[name] |= mask
        else:
            masks[name] = mask
    return masks


# --- shares -----------------------------------------------------------------------------------


def _mask_shape(masks: Mapping[str, np.ndarray]) -> tuple[int, int] | None:
    shape = None
    for name, mask in masks.items():
        mask_shape = np.shape(mask)
        if len(mask_shape) != 2:
            raise ValueError(f"mask {name!r} must be 2-D, got shape {mask_shape}")
        if shape is not None and mask_shape != shape:
            raise ValueError(f"mask {name!r} has shape {mask_shape}, the others {shape}")
        shape = mask_shape
    return shape


def dwell_shares(
    fixations_xy: np.ndarray, durations_ms: np.ndarray, masks: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Share of the fixation time on the map that falls inside each region.

    A fixation at model coordinates ``(x, y)`` is in pixel ``(floor(y), floor(x))`` (integer
    pixels from :func:`ml.data.snapshot.fixations_to_model` stay where they are). The total is
    the duration of the fixations that fall on the map; fixations off the map, with non-finite
    coordinates or with a NaN duration count nowhere.

    Args:
        fixations_xy: ``(N, 2)`` model-pixel ``(x, y)``.
        durations_ms: ``(N,)`` fixation durations (any unit: only ratios are returned).
        masks: ``{name: (H, W) bool}`` as from :func:`region_masks`.

    Returns:
        ``{name: share in [0, 1]}``; NaN for every region when there is no dwell time on the map.

    Raises:
        ValueError: lengths that differ, negative durations, or masks of different shapes.
    """
    xy = np.asarray(fixations_xy, dtype=np.float64).reshape(-1, 2)
    durations = np.asarray(durations_ms, dtype=np.float64).reshape(-1)
    if durations.size != xy.shape[0]:
        raise ValueError(f"{durations.size} durations for {xy.shape[0]} fixations")
    if np.any(durations < 0):
        raise ValueError("durations must not be negative")
    shape = _mask_shape(masks)
    if shape is None:
        return {}
    keep = np.all(np.isfinite(xy), axis=1) & np.isfinite(durations)
    cols = np.floor(xy[keep, 0])
    rows = np.floor(xy[keep, 1])
    weights = durations[keep]
    on_map = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    rows, cols, weights = (
        rows[on_map].astype(np.int64),
        cols[on_map].astype(np.int64),
        weights[on_map],
    )
    total = float(weights.sum())
    if total <= 0:
        return {name: float("nan") for name in masks}
    return {
        name: float(weights[np.asarray(mask, dtype=bool)[rows, cols]].sum() / total)
        for name, mask in masks.items()
    }


def mass_shares(saliency: np.ndarray, masks: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Share of a saliency map's mass inside each region.

    Args:
        saliency: ``(H, W)`` non-negative map (a probability map, or any density up to scale).
        masks: ``{name: (H, W) bool}`` as from :func:`region_masks`.

    Returns:
        ``{name: share in [0, 1]}``; NaN for every region when the map sums to 0.

    Raises:
        ValueError: a map that is not 2-D, has negative or non-finite values, or does not match
            the masks' shape.
    """
    array = np.ascontiguousarray(saliency, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or (array.size and array.min() < 0):
        raise ValueError("the map must be finite and non-negative")
    shape = _mask_shape(masks)
    if shape is not None and shape != array.shape:
        raise ValueError(f"the map's shape {array.shape} differs from the masks' {shape}")
    total = float(array.sum())
    if total <= 0:
        return {name: float("nan") for name in masks}
    # The region's sum runs over the whole map with zeros outside it, in the same order as the
    # total's (both C-contiguous), so it is never above the total and a region that holds all
    # the mass is exactly 1 (a gathered sum of the same values can round to 0.9999999999999999
    # or 1.0000000000000002).
    return {
        name: float(np.where(np.asarray(mask, dtype=bool), array, 0.0).sum() / total)
        for name, mask in masks.items()
    }


# --- parsers ----------------------------------------------------------------------------------


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on; blank lines are skipped."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise RegionFormatError(f"malformed CSV: {error}", line=start) from None
        if any(cell.strip() for cell in row):
            yield start, row


def _header(
    records: Iterator[tuple[int, list[str]]], required: Sequence[str]
) -> tuple[list[str], dict[str, int]]:
    """The header's names (stripped) and the index of each required column (case-insensitive)."""
    try:
        line, row = next(records)
    except StopIteration:
        raise RegionFormatError("no header: the file is empty", line=1) from None
    names = [cell.strip() for cell in row]
    index: dict[str, int] = {}
    seen: set[str] = set()
    for position, name in enumerate(names):
        key = name.lower()
        if key and key in seen:
            raise RegionFormatError("duplicate column in the header", line=line, column=name)
        seen.add(key)
        if key in required:
            index[key] = position
    for name in required:
        if name not in index:
            raise RegionFormatError("missing from the header", line=line, column=name)
    return names, index


def _cell(row: list[str], names: list[str], position: int, line: int) -> str:
    if position >= len(row):
        raise RegionFormatError("missing value (too few fields)", line=line, column=names[position])
    return row[position].strip()


def _check_width(row: list[str], names: list[str], line: int) -> None:
    if len(row) > len(names) and any(cell.strip() for cell in row[len(names) :]):
        raise RegionFormatError(f"{len(row)} fields but the header has {len(names)}", line=line)


def _number(row: list[str], names: list[str], position: int, line: int) -> float:
    text = _cell(row, names, position, line)
    column = names[position]
    if not text:
        raise RegionFormatError("empty value, expected a number", line=line, column=column)
    try:
        value = float(text)
    except ValueError:
        raise RegionFormatError(f"{text!r} is not a number", line=line, column=column) from None
    if not math.isfinite(value):
        raise RegionFormatError(f"{text!r} is not a finite number", line=line, column=column)
    return value


def _text(row: list[str], names: list[str], position: int, line: int) -> str:
    value = _cell(row, names, position, line)
    if not value:
        raise RegionFormatError("empty value", line=line, column=names[position])
    return value


def _corners(
    row: list[str], names: list[str], index: Mapping[str, int], keys: Sequence[str], line: int
) -> dict[str, float]:
    """``x1, y1, x2, y2`` read from the columns ``keys`` (in that order); ends must not precede
    starts."""
    x1, y1, x2, y2 = (_number(row, names, index[k], line) for k in keys)
    if x2 < x1:
        raise RegionFormatError(
            f"{x2:g} is less than {keys[0]} ({x1:g})", line=line, column=names[index[keys[2]]]
        )
    if y2 < y1:
        raise RegionFormatError(
            f"{y2:g} is less than {keys[1]} ({y1:g})", line=line, column=names[index[keys[3]]]
        )
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def parse_egd_bounding_boxes(text: str) -> dict[str, list[dict]]:
    """EGD-CXR's ``bounding_boxes.csv``: ``dicom_id, bbox_name, x1, x2, y1, y2``.

    Columns are found by name (case-insensitive, any order; others are ignored). Coordinates are
    original DICOM pixels.

    Args:
        text: the file's content.

    Returns:
        ``{dicom_id: [{"name": bbox_name, "kind": "box", "x1", "y1", "x2", "y2"}, ...]}`` in file
        order.

    Raises:
        RegionFormatError: a missing header column or value, a non-number, or ``x2 < x1`` /
            ``y2 < y1``; the message names the line and column.
    """
    records = _records(text)
    names, index = _header(records, ("dicom_id", "bbox_name", "x1", "x2", "y1", "y2"))
    out: dict[str, list[dict]] = {}
    for line, row in records:
        key = _text(row, names, index["dicom_id"], line)
        name = _text(row, names, index["bbox_name"], line)
        corners = _corners(row, names, index, ("x1", "y1", "x2", "y2"), line)
        _check_width(row, names, line)
        out.setdefault(key, []).append({"name": name, "kind": "box", **corners})
    return out


def _boolean(row: list[str], names: list[str], position: int, line: int) -> bool:
    value = _cell(row, names, position, line)
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise RegionFormatError(
        f"{value!r} is not a boolean (True/False)", line=line, column=names[position]
    )


def parse_reflacx_ellipses(
    text: str, key: str, *, min_certainty: float | None = None
) -> dict[str, list[dict]]:
    """REFLACX's ``anomaly_location_ellipses.csv`` of one reading.

    Columns ``xmin, ymin, xmax, ymax, certainty`` (case-insensitive) and one boolean column per
    finding (``True``/``False``; ``1``/``0`` and an empty cell, read as False, are accepted).
    Coordinates are the ellipse's bounding box in original image pixels.

    Args:
        text: the file's content.
        key: the image key to file the ellipses under (the file itself names no image).
        min_certainty: if given, ellipses with a lower certainty (1-5) are left out.

    Returns:
        ``{key: [{"name", "kind": "ellipse", "x1", "y1", "x2", "y2", "certainty",
        "findings"}, ...]}``; ``name`` is the findings set true joined by ``+`` (in column
        order), or ``"anomaly"`` when none is. A file with a header only gives ``{key: []}``.

    Raises:
        RegionFormatError: a missing header column or value, a non-number, a non-boolean
            finding, or ``xmax < xmin`` / ``ymax < ymin``; the message names line and column.
    """
    required = ("xmin", "ymin", "xmax", "ymax", "certainty")
    records = _records(text)
    names, index = _header(records, required)
    findings = [
        position for position, name in enumerate(names) if name and name.lower() not in required
    ]
    regions: list[dict] = []
    for line, row in records:
        corners = _corners(row, names, index, ("xmin", "ymin", "xmax", "ymax"), line)
        certainty = _number(row, names, index["certainty"], line)
        positive = [names[p] for p in findings if _boolean(row, names, p, line)]
        _check_width(row, names, line)
        if min_certainty is not None and certainty < min_certainty:
            continue
        regions.append(
            {
                "name": "+".join(positive) or "anomaly",
                "kind": "ellipse",
                **corners,
                "certainty": certainty,
                "findings": positive,
            }
        )
    return {key: regions}


def parse_boxes_csv(text: str) -> dict[str, list[dict]]:
    """The platform's generic regions file: header ``image,name,x1,y1,x2,y2``, one box a line.

    ``key`` is accepted instead of ``image``; an optional ``kind`` column (``box`` or
    ``ellipse``; empty means ``box``) makes the box the bounding box of an ellipse. Coordinates
    are original image pixels.

    Args:
        text: the file's content.

    Returns:
        ``{image_key: [{"name", "kind", "x1", "y1", "x2", "y2"}, ...]}`` in file order.

    Raises:
        RegionFormatError: a missing header column or value, a non-number, an unknown kind, or
            ``x2 < x1`` / ``y2 < y1``; the message names the line and column.
    """
    records = _records(text)
    try:
        first = next(records)
    except StopIteration:
        raise RegionFormatError("no header: the file is empty", line=1) from None
    lowered = [cell.strip().lower() for cell in first[1]]
    if "image" in lowered and "key" in lowered:
        raise RegionFormatError("give 'image' or 'key', not both", line=first[0], column="key")
    image_column = "key" if "key" in lowered and "image" not in lowered else "image"
    optional = ("kind",) if "kind" in lowered else ()
    required = (image_column, "name", "x1", "y1", "x2", "y2", *optional)
    names, index = _header(iter([first]), required)
    out: dict[str, list[dict]] = {}
    for line, row in records:
        key = _text(row, names, index[image_column], line)
        name = _text(row, names, index["name"], line)
        corners = _corners(row, names, index, ("x1", "y1", "x2", "y2"), line)
        kind = "box"
        if optional:
            kind = _cell(row, names, index["kind"], line).lower() or "box"
            if kind not in ("box", "ellipse"):
                raise RegionFormatError(
                    f"{kind!r} is not 'box' or 'ellipse'", line=line, column=names[index["kind"]]
                )
        _check_width(row, names, line)
        out.setdefault(key, []).append({"name": name, "kind": kind, **corners})
    return out


# --- phantoms ---------------------------------------------------------------------------------


def phantom_regions(phantom: Any, names: Sequence[str] = PHANTOM_REGIONS) -> list[dict]:
    """Mask regions of a synthetic phantom (:func:`ml.synthetic.make_phantom`).

    Args:
        phantom: a :class:`ml.synthetic.Phantom` (anything with a ``masks`` mapping of boolean
            ``(H, W)`` arrays at the image's size).
        names: the masks to return; the phantom also has ``body``, ``thorax`` and ``lungs``.

    Returns:
        ``[{"name", "kind": "mask", "mask"}, ...]`` in the order of ``names``; empty masks (the
        ``finding`` of a Normal phantom) are left out.

    Raises:
        KeyError: a name the phantom has no mask for.
    """
    masks = phantom.masks
    out = []
    for name in names:
        if name not in masks:
            raise KeyError(f"the phantom has no mask {name!r}; it has {sorted(masks)}")
        mask = np.asarray(masks[name], dtype=bool)
        if mask.any():
            out.append({"name": name, "kind": "mask", "mask": mask})
    return out
