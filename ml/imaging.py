"""Chest X-ray images in, arrays out: DICOM and PNG/JPEG reading and previews (de-identification
lives in :mod:`ml.deidentify`, and is re-exported here).

Django-free (the apps call this module, never the reverse). Every function takes paths, open
binary files, pydicom datasets or arrays, and returns arrays, bytes and plain dicts.

Output convention of the readers: a 2-D ``float32`` array in ``[0, 1]`` where 0 is black and 1 is
white *as a radiologist views it* — the DICOM Modality LUT (rescale slope/intercept or a Modality
LUT Sequence) and the VOI LUT (a VOI LUT Sequence, else Window Center/Width, else the image's own
min-max) are applied, and MONOCHROME1 is inverted.

Anything a user's file can make go wrong is raised as :class:`ImageError` with a message meant for
that user; no decoder exception escapes as anything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image as PILImage
from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from ml.deidentify import (  # noqa: F401 (re-exported: the imaging API the apps call)
    DEIDENTIFICATION_METHOD,
    deidentify,
    patient_key,
    uid_remap,
    write_dicom,
)

__all__ = [
    "DEIDENTIFICATION_METHOD",
    "ImageError",
    "deidentify",
    "dicom_pixels",
    "load_dicom",
    "pixel_sha256",
    "read_dicom",
    "read_raster",
    "render_preview",
    "sniff_format",
    "patient_key",
    "uid_remap",
]

#: Largest image accepted, in pixels (a 2500 x 3000 CXR has 7.5 M). Guards decompression bombs.
MAX_PIXELS = 100_000_000


class ImageError(ValueError):
    """A file cannot be used as an image; the message says why, in the user's terms."""


Source = str | Path | BinaryIO


# --- Format detection -----------------------------------------------------------------------


def sniff_format(source: Source) -> str | None:
    """``"dicom"``, ``"png"``, ``"jpeg"``, ``"zip"`` or ``None``, from the file's first bytes.

    DICOM needs its 128-byte preamble and ``DICM`` marker (Part 10 files); the file's name is
    not consulted, so a PNG named ``.dcm`` is recognised as a PNG.
    """
    head = _head(source, 132)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    return None


def _head(source: Source, n: int) -> bytes:
    if isinstance(source, str | Path):
        with open(source, "rb") as fh:
            return fh.read(n)
    pos = source.tell()
    try:
        return source.read(n)
    finally:
        source.seek(pos)


def pixel_sha256(array: np.ndarray) -> str:
    """SHA-256 of decoded pixel values with their shape and type: equal images, equal hashes.

    Hashing decoded values (not file bytes) makes a re-encoded or re-anonymised copy of the same
    image a duplicate too.
    """
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


# --- DICOM ----------------------------------------------------------------------------------


def load_dicom(source: Source) -> Dataset:
    """Parse a DICOM Part 10 file (pixel data not decoded yet); ``ImageError`` if it is not one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(source, force=False)
            # Touch every element now, so that a truncated file fails here with a clear message
            # and not later inside de-identification or saving.
            for _ in ds.iterall():
                pass
    except InvalidDicomError:
        raise ImageError("is not a DICOM file (no DICM marker after the preamble).") from None
    except Exception as exc:  # pydicom raises many types on damaged input
        raise ImageError(
            f"is not a readable DICOM file: it is truncated or damaged ({exc})."
        ) from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageError("is a DICOM file without pixel data (not an image).")
    return ds


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts is None:
        raise ImageError("is a DICOM file without a transfer syntax in its file meta.")
    return UID(ts)


def _check_decodable(ds: Dataset) -> None:
    from pydicom.pixels import get_decoder

    ts = _transfer_syntax(ds)
    name = ts.name if ts.is_valid and ts.name != ts else str(ts)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise ImageError(
            f"uses the transfer syntax {name} ({ts}), which cannot be decoded."
        ) from None
    if not decoder.is_available:
        raise ImageError(
            f"uses the transfer syntax {name} ({ts}), for which no decoder is installed."
        )


def dicom_pixels(ds: Dataset) -> tuple[np.ndarray, np.ndarray, dict]:
    """Decode a parsed dataset: ``(stored_values, display_array, metadata)``.

    ``stored_values`` are the raw pixel values (for hashing); ``display_array`` follows the
    module's output convention (float32 in [0, 1], Modality LUT, VOI LUT, MONOCHROME1 inverted).
    """
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows <= 0 or columns <= 0:
        raise ImageError(f"has an empty image ({columns} x {rows} pixels).")
    if rows * columns > MAX_PIXELS:
        raise ImageError(f"is too large ({columns} x {rows} pixels; at most {MAX_PIXELS:,}).")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageError(
            f"has the photometric interpretation {photometric or 'none'}; only grayscale "
            "(MONOCHROME1 or MONOCHROME2) X-rays are supported."
        )
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise ImageError("has more than one sample per pixel; only grayscale is supported.")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise ImageError(f"has {frames} frames; only single-frame images are supported.")
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0)
    if not 1 <= bits <= 16:
        raise ImageError(f"stores {bits} bits per pixel; 1 to 16 are supported.")
    _check_decodable(ds)
    ts = _transfer_syntax(ds)
    if not ts.is_compressed and "PixelData" in ds:
        expected = rows * columns * int(ds.get("BitsAllocated") or 16) // 8
        actual = len(ds.PixelData or b"")
        if actual < expected:
            raise ImageError(
                f"is truncated or damaged: it holds {actual:,} of the {expected:,} bytes of "
                "pixel data its header declares."
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stored = ds.pixel_array
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"has pixel data that cannot be decoded ({exc}).") from None
    if stored.ndim != 2 or stored.shape != (rows, columns):
        raise ImageError(
            f"has pixel data of shape {stored.shape}, not the {rows} x {columns} it declares."
        )
    try:
        display, voi = _display(stored, ds, photometric)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"has a Modality or VOI LUT that cannot be applied ({exc}).") from None
    return stored, display, _dicom_metadata(ds, photometric, voi)


def _display(stored: np.ndarray, ds: Dataset, photometric: str) -> tuple[np.ndarray, str]:
    from pydicom.pixels import apply_modality_lut, apply_voi

    values = apply_modality_lut(stored, ds).astype(np.float64, copy=False)
    voi_seq = ds.get("VOILUTSequence")
    if voi_seq:
        item = voi_seq[0]
        lut_bits = int(item.LUTDescriptor[2])
        # A LUT is indexed by integer modality values.
        indices = np.rint(values).astype(np.int64)
        out = apply_voi(indices, ds, index=0).astype(np.float64) / float(2**lut_bits - 1)
        voi = "lut"
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        center = _first(ds.WindowCenter)
        width = _first(ds.WindowWidth)
        out = window(values, center, width, function=str(ds.get("VOILUTFunction", "LINEAR")))
        voi = "window"
    else:
        lo, hi = float(values.min()), float(values.max())
        out = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        voi = "minmax"
    out = np.clip(out, 0.0, 1.0)
    if photometric == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32), voi


def _first(value) -> float:
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        value = list(value)[0]
    return float(value)


def window(values: np.ndarray, center: float, width: float, *, function: str = "LINEAR"):
    """The DICOM VOI window (PS3.3 C.11.2.1.2) mapped to [0, 1].

    Args:
        values: modality values (after the Modality LUT).
        center, width: Window Center and Window Width.
        function: VOI LUT Function: LINEAR (default), LINEAR_EXACT or SIGMOID.
    """
    function = function.strip().upper() or "LINEAR"
    values = np.asarray(values, dtype=np.float64)
    if function == "SIGMOID":
        if width <= 0:
            raise ImageError(f"has a Window Width of {width:g}; it must be above 0.")
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        if width <= 0:
            raise ImageError(f"has a Window Width of {width:g}; it must be above 0.")
        return np.clip((values - center) / width + 0.5, 0.0, 1.0)
    if width < 1:
        raise ImageError(f"has a Window Width of {width:g}; a linear window needs 1 or more.")
    if width == 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _dicom_metadata(ds: Dataset, photometric: str, voi: str) -> dict:
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    try:
        spacing = [float(v) for v in spacing] if spacing else None
    except (TypeError, ValueError):
        spacing = None
    window_center = window_width = None
    if "WindowCenter" in ds and "WindowWidth" in ds:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            window_center, window_width = _first(ds.WindowCenter), _first(ds.WindowWidth)
    ts = _transfer_syntax(ds)
    return {
        "format": "dicom",
        "width": int(ds.Columns),
        "height": int(ds.Rows),
        "bits_allocated": int(ds.get("BitsAllocated") or 0),
        "bits_stored": int(ds.get("BitsStored") or 0),
        "photometric_interpretation": photometric,
        "pixel_spacing": spacing,
        "view_position": str(ds.get("ViewPosition", "") or "").strip().upper(),
        "modality": str(ds.get("Modality", "") or "").strip(),
        "transfer_syntax": str(ts),
        "transfer_syntax_name": ts.name,
        "voi": voi,
        "window_center": window_center,
        "window_width": window_width,
        "burned_in_annotation": str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES",
    }


def read_dicom(source: Source) -> tuple[np.ndarray, dict]:
    """Read a DICOM file into ``(float32 array in [0, 1], metadata)``.

    The array has shape ``(rows, columns)``; Modality LUT and VOI LUT (or window) are applied and
    MONOCHROME1 is inverted, so 1 is white as displayed. ``metadata`` holds ``width``,
    ``height``, ``bits_stored``, ``photometric_interpretation``, ``pixel_spacing`` (row, column
    in mm, or None), ``view_position``, ``transfer_syntax``, ``voi`` (``lut``, ``window`` or
    ``minmax``), ``burned_in_annotation`` and ``pixel_sha256`` (of the stored values).
    """
    ds = load_dicom(source)
    stored, display, meta = dicom_pixels(ds)
    meta["pixel_sha256"] = pixel_sha256(stored)
    return display, meta


# --- PNG / JPEG -----------------------------------------------------------------------------


def read_raster(source: Source) -> tuple[np.ndarray, dict]:
    """Read a PNG or JPEG into ``(float32 array in [0, 1], metadata)``, as :func:`read_dicom`.

    Colour images become grayscale (ITU-R 601 luma); 8-bit values are divided by 255 and 16-bit
    values by 65535 (a PNG is taken as already windowed for display).
    """
    kind = sniff_format(source)
    if kind not in ("png", "jpeg"):
        raise ImageError("is not a PNG or JPEG image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(source) as img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise ImageError(f"has an empty image ({width} x {height} pixels).")
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"is too large ({width} x {height} pixels; at most {MAX_PIXELS:,})."
                    )
                img.load()
                stored, display, bits = _raster_arrays(img)
    except ImageError:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise ImageError(f"is too large (more than {MAX_PIXELS:,} pixels).") from None
    except Exception as exc:
        raise ImageError(
            f"is not a readable {kind.upper()} image: truncated or damaged ({exc})."
        ) from None
    meta = {
        "format": kind,
        "width": width,
        "height": height,
        "bits_allocated": bits,
        "bits_stored": bits,
        "photometric_interpretation": "MONOCHROME2",
        "pixel_spacing": None,
        "view_position": "",
        "modality": "",
        "transfer_syntax": "",
        "transfer_syntax_name": "",
        "voi": "none",
        "window_center": None,
        "window_width": None,
        "burned_in_annotation": False,
        "pixel_sha256": pixel_sha256(stored),
    }
    return display, meta


def _raster_arrays(img: PILImage.Image) -> tuple[np.ndarray, np.ndarray, int]:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        stored = np.asarray(img)
        if stored.dtype != np.uint16:
            stored = np.clip(stored, 0, 65535).astype(np.uint16)
        return stored, (stored.astype(np.float32) / 65535.0), 16
    if img.mode == "F":
        stored = np.asarray(img, dtype=np.float32)
        lo, hi = float(stored.min()), float(stored.max())
        display = (stored - lo) / (hi - lo) if hi > lo else np.zeros_like(stored)
        return stored, display.astype(np.float32), 32
    if img.mode != "L":
        img = img.convert("L")
    stored = np.asarray(img, dtype=np.uint8)
    return stored, stored.astype(np.float32) / 255.0, 8


# --- Preview --------------------------------------------------------------------------------


def to_uint8(array: np.ndarray) -> np.ndarray:
    """A [0, 1] float array as 8-bit gray levels (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(array, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def render_preview(array: np.ndarray, max_side: int = 1024) -> bytes:
    """An 8-bit grayscale PNG of a [0, 1] array, downscaled so its longer side is ``max_side``.

    Never upscaled; the aspect ratio is kept (each side at least 1 pixel).
    """
    if array.ndim != 2 or 0 in array.shape:
        raise ImageError(f"has an empty image ({array.shape}).")
    img = PILImage.fromarray(to_uint8(array), mode="L")
    height, width = array.shape
    scale = min(1.0, max_side / max(width, height))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        img = img.resize(size, PILImage.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False, compress_level=3)
    return out.getvalue()


_SAFE_KEY = re.compile(r"[^A-Za-z0-9._-]+")


def key_from_filename(name: str) -> str:
    """The default image key: the file's stem (``abc.dcm`` -> ``abc``), spaces and odd signs
    replaced by ``_``, at most 200 characters."""
    stem = Path(name.replace("\\", "/")).name
    for suffix in (".dcm", ".dicom", ".png", ".jpg", ".jpeg"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return _SAFE_KEY.sub("_", stem).strip("._")[:200]
