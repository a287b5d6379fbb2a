"""Where attention falls, region by region: for each image of an evaluation that has regions
(``apps.imaging.models.ImageRegion``), the share of the model's saliency mass and of each
reader's dwell time inside each region, and the same averaged per region over the images.

- The model's share is computed on the stored map (``as_density``: the density every metric of
  the evaluation was computed from) at the snapshot's model resolution, the regions rasterised
  there through the item's resize transform, rebuilt from the image's size and the snapshot's
  choices exactly as the build made it (:func:`item_transform`). It is a share of the mass on
  the image (the letterbox's padding is no part of any region); ``model_on_image`` says how
  much of the map's mass that is.
- A reader's share is the fixation time of their readings of the image (the item's
  ``reading_ids``, grouped by reader code) whose fixation falls in the region, over their time on
  the image, in image pixels (fixations and regions both are): a fixation counts for the pixel it
  falls in, the pixel for the region when its centre is inside, as ``ml.regions`` rasterises.
  The pooled share pools every reader's fixations (time-weighted).
- ``area_share`` is the region's share of the image's area (in the model's frame): the share a
  map spread evenly over the image would give, the chance level to read the others against.

Regions are keyed by (source, name): regions of one source sharing a name are their union.
Computed on request: four queries (rows, regions, readings, fixations) and one stored map read
per image with regions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from apps.evaluation.models import Evaluation, EvaluationImage
from apps.evaluation.services.run import as_density, load_map
from apps.gaze.models import Fixation, Reading
from apps.imaging.models import ImageRegion
from apps.imaging.services import region_dicts
from ml.data.resize import ResizeTransform
from ml.data.snapshot import SEED_STRIDE
from ml.regions import mass_shares, region_masks

CHUNK = 5000  # ids per IN (...) query


class EvaluationNotReady(Exception):
    """The evaluation has not succeeded: it has no per-image rows to read yet (or ever)."""


def item_transform(*, width: int, height: int, choices: dict[str, Any]) -> ResizeTransform:
    """The transform the snapshot build applied to an image of ``width`` x ``height`` (the same
    arithmetic as ``ml.data.snapshot.model_frame``, without reading the pixels)."""
    out_h, out_w = (int(v) for v in choices["resolution"])
    in_h, in_w = int(height), int(width)
    if choices.get("seed_mode"):
        padded = (out_h * SEED_STRIDE, out_w * SEED_STRIDE)
        return ResizeTransform(
            in_shape=(in_h, in_w), out_shape=(out_h, out_w), scale=1.0 / SEED_STRIDE,
            offset_y=((padded[0] - in_h) // 2) / SEED_STRIDE,
            offset_x=((padded[1] - in_w) // 2) / SEED_STRIDE, mode="pad_and_stride",
        )  # fmt: skip
    scale = min(out_h / in_h, out_w / in_w)
    inner = (max(1, round(in_h * scale)), max(1, round(in_w * scale)))
    scale = min(inner[0] / in_h, inner[1] / in_w)
    return ResizeTransform(
        in_shape=(in_h, in_w), out_shape=(out_h, out_w), scale=scale,
        offset_y=float((out_h - inner[0]) // 2), offset_x=float((out_w - inner[1]) // 2),
        mode="letterbox",
    )  # fmt: skip


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    ids = sorted(set(ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


# --- dwell in image pixels ---------------------------------------------------------------------


def _hits(region: dict, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Which fixation pixels ``(rows, cols)`` (on the image) lie in ``region``: rasterised by
    ``ml.regions.region_masks`` over the region's own window of the image (scale 1), so a large
    image costs no full-size mask per region."""
    height, width = shape
    if region["kind"] == "mask":
        mask = np.asarray(region["mask"], dtype=bool)
        if mask.shape != shape:
            raise ValueError(f"mask {region['name']!r} is {mask.shape}, the image {shape}")
        return mask[rows, cols]
    x1, y1, x2, y2 = (float(region[k]) for k in ("x1", "y1", "x2", "y2"))
    # The window holds the region and both pixels nearest its centre (a region too small to
    # hold a pixel's centre stands for the first of them, as in a full-size mask).
    cx, cy = (x1 + x2) / 2 - 0.5, (y1 + y2) / 2 - 0.5
    c0 = max(0, min(math.floor(x1), math.floor(cx)))
    c1 = min(width, max(math.ceil(x2), math.ceil(cx) + 1))
    r0 = max(0, min(math.floor(y1), math.floor(cy)))
    r1 = min(height, max(math.ceil(y2), math.ceil(cy) + 1))
    if c1 <= c0 or r1 <= r0:
        return np.zeros(rows.shape, dtype=bool)
    size = (r1 - r0, c1 - c0)
    window = SimpleNamespace(scale=1.0, offset_x=-float(c0), offset_y=-float(r0),
                             mode="letterbox", in_shape=None, out_shape=size)  # fmt: skip
    [mask] = region_masks([region], size, window).values()
    inside = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
    out = np.zeros(rows.shape, dtype=bool)
    out[inside] = mask[rows[inside] - r0, cols[inside] - c0]
    return out


def dwell_shares_in_image(
    groups: dict[str, list[dict]], xy: np.ndarray, durations: np.ndarray, shape: tuple[int, int]
) -> dict[str, float]:
    """Share of the fixation time on the image (``shape`` ``(H, W)``) inside each group of
    regions (their union); NaN for every group without dwell time on the image. Equal to
    ``ml.regions.dwell_shares`` over ``region_masks`` at the image's own size."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    durations = np.asarray(durations, dtype=np.float64).reshape(-1)
    keep = np.all(np.isfinite(xy), axis=1) & np.isfinite(durations) & (durations >= 0)
    cols, rows = np.floor(xy[keep, 0]), np.floor(xy[keep, 1])
    weights = durations[keep]
    on = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    rows, cols, weights = rows[on].astype(np.int64), cols[on].astype(np.int64), weights[on]
    total = float(weights.sum())
    if total <= 0:
        return {label: float("nan") for label in groups}
    out = {}
    for label, regions in groups.items():
        inside = np.zeros(rows.shape, dtype=bool)
        for region in regions:
            inside |= _hits(region, rows, cols, shape)
        out[label] = float(weights[inside].sum() / total)
    return out


# --- the evaluation ----------------------------------------------------------------------------


def _fixations(reading_ids: list[int], lab_id: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Reading id -> (xy (N, 2), durations (N,)) in image pixels, in one query per chunk."""
    values: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    for chunk in _chunks(reading_ids):
        rows = Fixation.objects.filter(lab_id=lab_id, reading_id__in=chunk).values_list(
            "reading_id", "x", "y", "duration_ms"
        )
        for reading_id, x, y, duration in rows.iterator(chunk_size=5000):
            values[reading_id].append((x, y, duration))
    out = {}
    for reading_id, points in values.items():
        array = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out[reading_id] = (array[:, :2], array[:, 2])
    return out


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros((0, 2)), np.zeros(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _image_result(row, regions, fixations, readers_of, choices) -> dict[str, Any]:
    image = row.item.image
    shape = (image.height, image.width)
    dicts = region_dicts(regions)
    labels: dict[tuple[str, str], str] = {}
    groups: dict[str, list[dict]] = defaultdict(list)
    kinds: dict[str, set[str]] = defaultdict(set)
    for region, entry in zip(regions, dicts, strict=True):
        label = labels.setdefault((region.source, region.name), str(len(labels)))
        groups[label].append({**entry, "name": label})
        kinds[label].add(region.kind)
    transform = item_transform(width=image.width, height=image.height, choices=choices)
    model: dict[str, float] = {}
    masks = region_masks([r for g in groups.values() for r in g], transform.out_shape, transform)
    frame = region_masks(
        [{"name": "image", "kind": "box", "x1": 0, "y1": 0, "x2": image.width,
          "y2": image.height}], transform.out_shape, transform,
    )["image"]  # fmt: skip
    area = {label: float(mask.sum() / max(1, frame.sum())) for label, mask in masks.items()}
    on_image = None
    if row.map_name:
        density = as_density(load_map(row.map_name))
        if density.shape == tuple(transform.out_shape):
            # Shares of the mass on the image: the letterbox's padding is no region of it.
            on_image = float(density[frame].sum())
            model = mass_shares(np.where(frame, density, 0.0), masks)
    by_reader: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for reading_id in row.item.reading_ids:
        if reading_id in readers_of and reading_id in fixations:
            by_reader[readers_of[reading_id]].append(fixations[reading_id])
    per_reader = {
        code: dwell_shares_in_image(groups, *_concat(parts), shape)
        for code, parts in sorted(by_reader.items())
    }
    pooled = dwell_shares_in_image(
        groups, *_concat([p for parts in by_reader.values() for p in parts]), shape
    )
    out_regions = []
    for (source, name), label in labels.items():
        out_regions.append({
            "source": source, "name": name, "kinds": sorted(kinds[label]),
            "area_share": _finite(area[label]), "model_share": _finite(model.get(label)),
            "dwell_share": _finite(pooled[label]),
            "reader_dwell_shares": {c: _finite(s[label]) for c, s in per_reader.items()},
        })  # fmt: skip
    return {"evaluation_image": row.pk, "key": row.key, "image": image.pk,
            "model_on_image": _finite(on_image), "readers": sorted(per_reader),
            "regions": out_regions}  # fmt: skip


def _mean(values: list[float | None]) -> tuple[float | None, int]:
    kept = [v for v in values if v is not None]
    return (float(np.mean(kept)) if kept else None), len(kept)


def _aggregate(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    collected: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for image in images:
        for region in image["regions"]:
            collected[(region["source"], region["name"])].append(region)
    out = []
    for (source, name), rows in sorted(collected.items()):
        codes = sorted({c for r in rows for c in r["reader_dwell_shares"]})
        readers = {c: _mean([r["reader_dwell_shares"].get(c) for r in rows]) for c in codes}
        area, _ = _mean([r["area_share"] for r in rows])
        model, n_model = _mean([r["model_share"] for r in rows])
        dwell, n_dwell = _mean([r["dwell_share"] for r in rows])
        out.append({
            "source": source, "name": name, "n_images": len(rows), "area_share": area,
            "model_share": model, "n_model": n_model, "dwell_share": dwell, "n_dwell": n_dwell,
            "reader_dwell_shares": {c: m for c, (m, _) in readers.items()},
            "reader_n": {c: n for c, (_, n) in readers.items()},
        })  # fmt: skip
    return out


def evaluation_regions(*, evaluation: Evaluation) -> dict[str, Any]:
    """Per image with regions and per region: ``area_share``, ``model_share``, ``dwell_share``
    (pooled readers) and ``reader_dwell_shares`` {code: share}; shares are None where there is
    nothing to share (no dwell time on the image). ``regions``: per (source, name), the mean of
    each share over the images that have the region (``n_images``; ``n_model``, ``n_dwell``
    and ``reader_n`` count the images each mean is over).

    Raises:
        EvaluationNotReady: the evaluation has not succeeded.
    """
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        raise EvaluationNotReady(
            f"Evaluation {evaluation.pk} is {evaluation.status}: regions are read from the "
            "images of a succeeded evaluation."
        )
    choices = evaluation.snapshot.choices
    with_regions = ImageRegion.objects.filter(lab_id=evaluation.lab_id).values("image_id")
    rows = list(
        EvaluationImage.objects.filter(evaluation=evaluation, item__image_id__in=with_regions)
        .select_related("item__image")
        .only("pk", "key", "map_name", "item__reading_ids", "item__image__width",
              "item__image__height", "item__image__lab_id")
        .order_by("key")
    )  # fmt: skip
    image_ids = [row.item.image_id for row in rows]
    regions: dict[int, list[ImageRegion]] = defaultdict(list)
    for chunk in _chunks(image_ids):
        for region in ImageRegion.objects.filter(lab_id=evaluation.lab_id, image_id__in=chunk):
            regions[region.image_id].append(region)
    reading_ids = [pk for row in rows for pk in row.item.reading_ids]
    readers_of: dict[int, str] = {}
    for chunk in _chunks(reading_ids):
        readers_of.update(
            Reading.objects.filter(lab_id=evaluation.lab_id, pk__in=chunk).values_list(
                "pk", "session__reader__code"
            )
        )
    fixations = _fixations(list(readers_of), evaluation.lab_id)
    images = [
        _image_result(row, regions[row.item.image_id], fixations, readers_of, choices)
        for row in rows
        if regions.get(row.item.image_id)
    ]
    return {
        "evaluation": evaluation.pk,
        "split": evaluation.split,
        "resolution": [int(v) for v in choices["resolution"]],
        "mode": "pad_and_stride" if choices.get("seed_mode") else "letterbox",
        "n_images": len(images),
        "readers": sorted({c for image in images for c in image["readers"]}),
        "regions": _aggregate(images),
        "images": images,
    }


def evaluation_regions_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The per-image-per-region rows of :func:`evaluation_regions` as a table (header, rows):
    one ``dwell_<code>`` column per reader."""
    readers = result["readers"]
    header = ["key", "image", "source", "name", "area_share", "model_share", "dwell_share",
              *(f"dwell_{code}" for code in readers)]  # fmt: skip
    rows = []
    for image in result["images"]:
        for region in image["regions"]:
            shares = region["reader_dwell_shares"]
            rows.append([image["key"], image["image"], region["source"], region["name"],
                         region["area_share"], region["model_share"], region["dwell_share"],
                         *(shares.get(code) for code in readers)])  # fmt: skip
    return header, rows
