"""The pixels of an image for the model: where they are stored and how they are read back.

No float32 array is stored. ``Image.array_path`` names the file the array is read from:

- a DICOM image: the de-identified DICOM itself (``array_path == dicom_path``). The array is
  decoded from it with ``ml.imaging`` (Modality LUT, VOI LUT or window, MONOCHROME1 inverted):
  the same pixels and display attributes as at ingest, so the same float32 values, and no byte
  stored beyond the DICOM;
- a PNG or JPEG: a 16-bit grayscale PNG of the display array, ``round(array * 65535)``. An 8-bit
  or 16-bit source comes back exactly (``k / 255 == 257 k / 65535``); anything else within half
  a step of 1/65535, far below what the model (bf16 or fp32, images of 8 to 16 bits) resolves;
- a float32 ``.npy``, for images stored before ``manage.py imaging_compact_arrays`` rewrote
  them (see :func:`image_array_compact`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

import numpy as np
from django.db import transaction
from PIL import Image as PILImage

from apps.core import files as files_module
from apps.core import storage
from apps.core.storage import FileBatch, StorageError, spooled_temp
from apps.imaging.models import Image
from ml import imaging

log = logging.getLogger(__name__)

#: Largest difference allowed between a legacy float32 array and the one decoded from its DICOM
#: for the DICOM to replace it (one step of a 16-bit quantisation).
COMPACT_TOLERANCE = 1.0 / 65535


def array_png(array: np.ndarray) -> BinaryIO:
    """A [0, 1] array as a 16-bit grayscale PNG (``round(array * 65535)``), in a temporary file."""
    levels = np.rint(np.clip(np.asarray(array, dtype=np.float64), 0.0, 1.0) * 65535.0)
    out = spooled_temp()
    PILImage.fromarray(levels.astype(np.uint16)).save(out, format="PNG", compress_level=3)
    out.seek(0)
    return out


def array_read(name: str) -> np.ndarray:
    """The float32 array in [0, 1] (rows, columns) held by the stored file ``name``.

    Raises:
        StorageError: the file is missing or cannot be decoded.
    """
    path = storage.local_file(name)
    suffix = PurePosixPath(name).suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False).astype(np.float32, copy=False)
        if suffix == ".png":
            return imaging.read_raster(path)[0]
        _, display, _ = imaging.dicom_pixels(imaging.load_dicom(path))
        return display
    except (imaging.ImageError, OSError, ValueError) as exc:
        raise StorageError(f"{name}: the stored pixels cannot be read ({exc}).") from None


def image_array(*, image: Image) -> np.ndarray:
    """The image's float32 array at full resolution, in [0, 1] with 1 = white as displayed."""
    return array_read(image.array_path)


# --- Compaction of the float32 arrays stored before --------------------------------------------


@dataclass
class ArrayCompaction:
    """What :func:`image_array_compact` did to one image's legacy array."""

    image_id: int
    key: str
    old: str
    new: str  # "" when nothing changed
    how: str  # "dicom", "png16" or "unreadable"
    bytes_freed: int = 0
    message: str = ""


def _compact_target(image: Image, old: np.ndarray | None) -> tuple[str, str, str]:
    """(how, file to point at or "", why) for an image whose array is a legacy .npy."""
    if image.dicom_path:
        try:
            derived = array_read(image.dicom_path)
        except StorageError as exc:
            derived, why = None, str(exc)
        if derived is not None:
            if old is None:
                return "dicom", image.dicom_path, "the old array is missing; read from the DICOM"
            if derived.shape == old.shape:
                gap = float(np.max(np.abs(derived - old))) if old.size else 0.0
                if gap <= COMPACT_TOLERANCE:
                    return "dicom", image.dicom_path, f"the DICOM gives it (max gap {gap:.2g})"
                why = f"the DICOM gives values up to {gap:.3g} away"
            else:
                why = f"the DICOM gives shape {derived.shape}, the array {old.shape}"
        if old is None:
            return "unreadable", "", why
        return "png16", "", f"kept as a 16-bit PNG ({why})"
    if old is None:
        return "unreadable", "", "the old array is missing and there is no DICOM"
    return "png16", "", "kept as a 16-bit PNG"


def image_array_compact(*, image: Image, dry_run: bool = False) -> ArrayCompaction | None:
    """Replace an image's stored float32 ``.npy`` (4 bytes per pixel) with nothing (a DICOM's
    array is decoded from the DICOM when it gives the same values within 1/65535) or with a
    16-bit PNG of it; None when the image has no legacy array.

    The row is updated first (only if it still names the old file), and the old file is deleted
    once that update is committed, and only if no image of the lab names it any more.
    """
    old_name = image.array_path
    if not old_name.lower().endswith(".npy"):
        return None
    try:
        old_size = storage.size(old_name)
        old = array_read(old_name)
    except (StorageError, OSError):
        old_size, old = 0, None
    how, new_name, why = _compact_target(image, old)
    result = ArrayCompaction(image.pk, image.key, old_name, "", how, message=why)
    if how == "unreadable" or dry_run:
        result.new = new_name if how == "dicom" else ""
        result.bytes_freed = old_size if how != "unreadable" else 0
        return result
    files = FileBatch(app="imaging", lab_id=image.lab_id)
    new_size = 0
    if how == "png16":
        with array_png(old) as png:
            new_name = files.put(kind="array", ext="png", fh=png)
        new_size = storage.size(new_name) if files.created else 0
    del old

    try:
        with transaction.atomic():
            updated = Image.objects.filter(pk=image.pk, array_path=old_name).update(
                array_path=new_name
            )
            if updated:
                files_module.delete_after_commit([old_name])
    except BaseException:
        files.discard()
        raise
    if not updated:  # changed or deleted meanwhile: leave it to that change
        files.discard()
        return None
    image.array_path = new_name
    result.new, result.bytes_freed = new_name, max(0, old_size - new_size)
    return result
