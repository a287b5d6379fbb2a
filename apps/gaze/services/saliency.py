"""Saliency targets of readings, and of images pooled over their readers: computed by
``ml.saliency_maps`` from the stored fixations, cached content-addressed by every input."""

from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum

from apps.core import quota, storage
from apps.core.storage import FileBatch
from apps.gaze.models import Reading, SaliencyMap
from apps.gaze.services.access import lab_role
from apps.gaze.services.parse import FIXATION_EXTRA
from apps.gaze.services.readers import session_geometry
from apps.imaging.models import Image
from apps.labs.models import Lab, User
from apps.labs.roles import Action, role_allows
from ml.gaze import ImageRect
from ml.gaze.screen import degree_in_image_px
from ml.saliency_maps import fixation_density, pool_maps, target_cache_key

SALIENCY_MAX_SIDE = 4096
# MT-UNet's input, (height, width): the size a map gets when none is asked for.
SALIENCY_DEFAULT_SIZE = (640, 512)


def _saliency_size(target_size: tuple[int, int], image: Image) -> tuple[int, int]:
    """A map is at most the image's own size, or one of the model's input sizes."""
    h, w = (int(v) for v in target_size)
    if not (1 <= h <= SALIENCY_MAX_SIDE and 1 <= w <= SALIENCY_MAX_SIDE):
        raise ValidationError(
            {"target_size": [f"Height and width must be 1 to {SALIENCY_MAX_SIDE} pixels."]}
        )
    model_sizes = {tuple(s) for s in settings.GAZE_SALIENCY_MODEL_SIZES}
    if (h > image.height or w > image.width) and (h, w) not in model_sizes:
        sizes = ", ".join(f"{a} x {b}" for a, b in sorted(model_sizes))
        raise ValidationError(
            {"target_size": [f"A map of image {image.key!r} is at most its own size, "
                             f"{image.height} x {image.width} (height x width), or a model "
                             f"input size ({sizes}); {h} x {w} was asked for."]}
        )  # fmt: skip
    return h, w


def _may_make(actor: User | None, lab: Lab) -> None:
    """Only roles that write may add maps to the cache (a read must not fill the disk)."""
    if actor is not None and not role_allows(lab_role(lab, actor), Action.WRITE):
        raise PermissionDenied(
            "This map is not made yet, and your role may only read maps that are: ask a "
            "researcher or an admin of the lab to make it, or ask for a size that exists."
        )


def saliency_usage_bytes(lab_id: int) -> int:
    """Bytes of the lab's cached saliency maps (its share of the derived-files quota)."""
    total = SaliencyMap.objects.filter(lab_id=lab_id).aggregate(n=Sum("size_bytes"))["n"]
    return int(total or 0)


def _reading_rect(reading: Reading, image_size: tuple[int, int], screen_px) -> ImageRect:
    """Where the parse placed the image on screen (kept in the reading's quality report)."""
    rect = (reading.quality or {}).get("image_rect")
    if rect and len(rect) == 4 and rect[2] > 0 and rect[3] > 0:
        return ImageRect(*(float(v) for v in rect))
    return ImageRect.fit(screen_px, image_size)


def reading_saliency_inputs(*, reading: Reading) -> tuple[dict[str, Any], str]:
    """The arguments of ``fixation_density`` for a reading (without the target size), and the
    sigma mode.

    Sigma is 1 degree of visual angle in image pixels (``ml.gaze.screen.degree_in_image_px``):
    from the session's geometry (screen mm and viewing distance) through where the image was
    drawn, else at the assumed ``FALLBACK_PX_PER_DEG`` screen pixels per degree (mode
    ``assumed``). Where every fixation carries its own pixels per degree (REFLACX), each
    Gaussian uses its own, per axis (mode ``per_fixation``), and where every fixation carries
    the part of the image shown, each is drawn only over that part, as REFLACX's official
    heatmaps are.
    """
    session = reading.session
    image = reading.image
    screen_px = (session.screen_width_px, session.screen_height_px)
    rect = _reading_rect(reading, (image.width, image.height), screen_px)
    geometry = session_geometry(session, screen_px)
    size_hw = (image.height, image.width)
    sigma, measured = degree_in_image_px(geometry, rect, (image.width, image.height))
    mode = SaliencyMap.SigmaMode.GEOMETRY if measured else SaliencyMap.SigmaMode.ASSUMED
    columns = ("x", "y", "duration_ms", *FIXATION_EXTRA)
    rows = np.array(
        list(reading.fixations.order_by("index").values_list(*columns)), dtype=np.float64
    ).reshape(-1, len(columns))
    ppd, shown = rows[:, 3:5], rows[:, 5:9]
    sigma_px: float | np.ndarray = float(sigma)
    if len(rows) and np.isfinite(ppd).all() and (ppd > 0).all():
        # The export states each fixation's pixels per degree (REFLACX): 1 degree per axis.
        sigma_px, mode = ppd, SaliencyMap.SigmaMode.PER_FIXATION
    inputs = {
        "fixations_xy": rows[:, :2],
        "durations_ms": rows[:, 2],
        "image_size": size_hw,
        "sigma_px": sigma_px,
        "shown_rect": shown if len(rows) and np.isfinite(shown).all() else None,
        "include_off_image": False,
    }
    return inputs, mode


def _saliency_store(*, lab: Lab, key: str, values: np.ndarray, **fields: Any) -> SaliencyMap:
    """Write the map's .npy content-addressed, then its row; a concurrent twin's row wins."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(values, dtype=np.float32), allow_pickle=False)
    quota.check(lab=lab, adding=buf.tell(), what="this saliency map")
    fields["size_bytes"] = buf.tell()
    batch = FileBatch(app="gaze", lab_id=lab.pk)
    name = batch.put(kind="saliency", ext="npy", fh=buf)
    try:
        with transaction.atomic():
            return SaliencyMap.objects.create(lab=lab, cache_key=key, file_path=name, **fields)
    except IntegrityError:
        existing = SaliencyMap.objects.filter(lab=lab, cache_key=key).first()
        if existing is None:
            batch.discard()
            raise
        return existing


def saliency_map_load(*, saliency_map: SaliencyMap) -> np.ndarray:
    """The map's values, float32 ``(target_height, target_width)``, summing to 1."""
    return _values_at(saliency_map.file_path)


def _values_at(file_path: str) -> np.ndarray:
    return np.load(io.BytesIO(storage.read_bytes(file_path)), allow_pickle=False)


def saliency_map_get_or_create(
    *,
    target_size: tuple[int, int],
    reading: Reading | None = None,
    image: Image | None = None,
    include_unused: bool = False,
    actor: User | None = None,
) -> SaliencyMap:
    """A reading's saliency target, or an image's pooled over its readers, from the cache.

    Per reading: ``ml.saliency_maps.fixation_density`` (duration-weighted Gaussians, sigma = 1
    degree: :func:`reading_saliency_inputs`) computed directly at ``target_size`` (each axis of
    the image stretched to it). Pooled: ``ml.saliency_maps.pool_maps`` of the per-reading maps
    (each reading counts once), over the image's readings used for training unless
    ``include_unused``; readings with no fixation on the image are left out.

    The cache key is ``target_cache_key`` of every input (fixations, geometry, size, code
    version; for a pool, the keys of its reading maps), so a matching row is returned as it is
    and anything that changes the map makes a new one.

    Args:
        target_size: ``(height, width)`` of the map.
        reading: The reading (exactly one of ``reading`` and ``image``).
        image: The image whose readings are pooled.
        include_unused: Pool readings left out of training too.
        actor: The user asking (None: the platform itself). A map that is not cached yet is
            made only for roles that write.

    Raises:
        ValidationError: a bad size (over the image's own size and not a model input size), or
            no fixation on the image to make a map of.
        PermissionDenied: the map is not cached and ``actor``'s role may only read.
        QuotaExceeded: the lab's derived files would pass its quota.
    """
    if (reading is None) == (image is None):
        raise TypeError("give exactly one of reading and image")
    size = _saliency_size(target_size, reading.image if reading is not None else image)
    if reading is not None:
        inputs, mode = reading_saliency_inputs(reading=reading)
        key = target_cache_key("fixation_density", target_size=size, transform=None, **inputs)
        found = SaliencyMap.objects.filter(lab_id=reading.lab_id, cache_key=key).first()
        if found is not None:
            return found
        _may_make(actor, reading.lab)
        try:
            values = fixation_density(target_size=size, **inputs)
        except ValueError as exc:
            raise ValidationError(f"Reading {reading.pk} has no saliency map: {exc}") from None
        return _saliency_store(
            lab=reading.lab, key=key, values=values, kind=SaliencyMap.Kind.READING,
            reading=reading, image_id=reading.image_id, target_height=size[0],
            target_width=size[1], sigma_mode=mode, sigma_px=float(np.mean(inputs["sigma_px"])),
            n_readings=1,
            n_fixations=int(len(inputs["durations_ms"])),
        )  # fmt: skip
    readings = Reading.objects.filter(lab_id=image.lab_id, image=image).select_related(
        "session", "image", "lab"
    )
    if not include_unused:
        readings = readings.filter(use_for_training=True)
    parts: list[SaliencyMap] = []
    for r in readings.order_by("id"):
        try:
            parts.append(saliency_map_get_or_create(target_size=size, reading=r, actor=actor))
        except ValidationError:
            continue  # nothing of this reading on the image
    if not parts:
        raise ValidationError(
            f"Image {image.key!r} has no reading with fixations on it"
            + ("" if include_unused else " among those used for training")
            + " to pool."
        )
    key = target_cache_key(
        "pooled", maps=[p.cache_key for p in parts], target_size=size, weights=None
    )
    found = SaliencyMap.objects.filter(lab_id=image.lab_id, cache_key=key).first()
    if found is not None:
        return found
    _may_make(actor, image.lab)
    values = pool_maps([saliency_map_load(saliency_map=p) for p in parts])
    modes = {p.sigma_mode for p in parts}
    return _saliency_store(
        lab=image.lab, key=key, values=values, kind=SaliencyMap.Kind.POOLED, reading=None,
        image=image, target_height=size[0], target_width=size[1],
        sigma_mode=modes.pop() if len(modes) == 1 else SaliencyMap.SigmaMode.MIXED,
        sigma_px=None, n_readings=len(parts), n_fixations=sum(p.n_fixations for p in parts),
    )  # fmt: skip


def pooled_maps_invalidate(*, lab_id: int, image_ids) -> int:
    """Delete the cached pooled maps of these images (a reading of theirs was deleted, or left
    out of or put back into training); their files follow when the transaction commits. The
    next request makes the pool anew from the readings there are."""
    stale = SaliencyMap.objects.filter(
        lab_id=lab_id, kind=SaliencyMap.Kind.POOLED, image_id__in=list(image_ids)
    )
    count, _ = stale.delete()
    return count


PNG_CACHE_SIZE = 64  # rendered PNGs kept per process (a 640 x 512 map's is about 30 kB)


def saliency_map_png(*, saliency_map: SaliencyMap) -> bytes:
    """An 8-bit grayscale PNG of the map, scaled so its maximum is white.

    Rendered once per process and file: the .npy's name carries its content's SHA-256, so the
    PNG of a name never changes (rendering it was 20 ms of CPU, 2 to 4 times a JSON read's).
    """
    return _png_of(saliency_map.file_path)


@functools.lru_cache(maxsize=PNG_CACHE_SIZE)
def _png_of(file_path: str) -> bytes:
    from PIL import Image as PILImage

    values = _values_at(file_path).astype(np.float64)
    peak = values.max()
    gray = np.zeros(values.shape, np.uint8) if not peak > 0 else (values / peak * 255).round()
    out = io.BytesIO()
    PILImage.fromarray(gray.astype(np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()
