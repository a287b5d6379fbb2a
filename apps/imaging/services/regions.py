"""Regions of images (anatomy, findings) in the original image's pixels: imported from EGD-CXR's
``bounding_boxes.csv``, REFLACX's ``anomaly_location_ellipses.csv`` (one reading's file, for
one image) or the platform's boxes CSV (``image,name,x1,y1,x2,y2``), and, for the synthetic
demo, a phantom's masks; listed per image and deleted one by one.

Replace semantics: an import stores regions under its source (``egd``, ``reflacx``, ``boxes``)
and an optional ``group`` (e.g. the REFLACX reading id, so that two readers' ellipses of one
image are both kept); it replaces the regions of that source and group of every image the file
names, and leaves every other image and source alone. All or nothing, in one transaction: a
malformed line, a coordinate outside its image, or a key that names no image of the lab (unless
``skip_unknown``) refuses the whole file with the line and column, and nothing changes.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from apps.core import storage
from apps.imaging.models import Image, ImageRegion
from apps.labs.models import Lab, User
from apps.labs.roles import Action
from apps.labs.services import require_action
from ml.regions import (
    PHANTOM_REGIONS,
    RegionFormatError,
    parse_boxes_csv,
    parse_egd_bounding_boxes,
    parse_reflacx_ellipses,
    phantom_regions,
)

APP = "imaging"
FORMATS = ("egd", "reflacx", "boxes")
# A regions file is read whole: EGD-CXR's bounding_boxes.csv (1,083 images x 17 boxes) is
# about 2 MB.
REGIONS_MAX_BYTES = 32 * 1024**2
MAX_ERRORS = 20
UNKNOWN_LISTED = 5
NAME_MAX = ImageRegion._meta.get_field("name").max_length
GROUP_MAX = ImageRegion._meta.get_field("group").max_length

# The file's columns per format: the image key's (None: one key for the whole file), the
# region name's, and x1, y1, x2, y2's (header names, matched case-insensitively).
_COLUMNS: dict[str, tuple[tuple[str, ...] | None, str | None, tuple[str, str, str, str]]] = {
    "egd": (("dicom_id",), "bbox_name", ("x1", "y1", "x2", "y2")),
    "reflacx": (None, None, ("xmin", "ymin", "xmax", "ymax")),
    "boxes": (("image", "key"), "name", ("x1", "y1", "x2", "y2")),
}


class RegionsTooLarge(ValidationError):
    """A regions file over ``REGIONS_MAX_BYTES`` (the API answers 413)."""


@dataclass
class RegionImportReport:
    source: str
    group: str
    images: int = 0
    regions: int = 0
    replaced: int = 0
    skipped_keys: list[str] = field(default_factory=list)


# --- reading the file ------------------------------------------------------------------------


def _text(*, text: str | None, file: BinaryIO | None, filename: str) -> str:
    if (text is None) == (file is None):
        raise TypeError("give text or file")
    if text is None:
        file.seek(0)
        data = file.read(REGIONS_MAX_BYTES + 1)
        if len(data) > REGIONS_MAX_BYTES:
            raise RegionsTooLarge(
                {"file": f"{filename}: is over the limit of {REGIONS_MAX_BYTES:,} bytes for a "
                         "regions file."}
            )  # fmt: skip
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError({"file": f"{filename}: is not UTF-8 text."}) from None
    elif len(text.encode("utf-8", "surrogatepass")) > REGIONS_MAX_BYTES:
        raise RegionsTooLarge({"file": f"{filename}: is over {REGIONS_MAX_BYTES:,} bytes."})
    nul = text.find("\x00")
    if nul >= 0:  # no database stores it in a name or key; no CSV text holds it
        line = text.count("\n", 0, nul) + 1
        raise ValidationError({"file": f"{filename}: line {line}: a NUL character is not text."})
    return text


def _records(text: str) -> list[tuple[int, list[str]]]:
    """The file's non-blank CSV records with the line each starts on, read as ``ml.regions``
    reads them (so that the n-th region of a key is the n-th record of that key)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    out = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except (StopIteration, csv.Error):
            return out
        if any(cell.strip() for cell in row):
            out.append((start, row))


@dataclass
class _Layout:
    """Where each parsed region came from: its line, and the header's spelling of a column."""

    lines: dict[str, list[int]]
    header: dict[str, str]

    def line(self, key: str, index: int) -> int | None:
        lines = self.lines.get(key, [])
        return lines[index] if index < len(lines) else None

    def column(self, name: str | None) -> str | None:
        return None if name is None else self.header.get(name, name)


def _layout(text: str, fmt: str, key: str | None) -> _Layout:
    records = _records(text)
    if not records:
        return _Layout({}, {})
    names = [cell.strip() for cell in records[0][1]]
    header = {name.lower(): name for name in names if name}
    key_columns, _, _ = _COLUMNS[fmt]
    lines: dict[str, list[int]] = defaultdict(list)
    position = None
    if key_columns is not None:
        lowered = [name.lower() for name in names]
        column = next((c for c in key_columns if c in lowered), None)
        position = None if column is None else lowered.index(column)
    for line, row in records[1:]:
        if key_columns is None:
            lines[key or ""].append(line)
        elif position is not None and position < len(row):
            lines[row[position].strip()].append(line)
    return _Layout(dict(lines), header)


def _parse(fmt: str, text: str, key: str | None, filename: str) -> dict[str, list[dict]]:
    try:
        if fmt == "egd":
            return parse_egd_bounding_boxes(text)
        if fmt == "reflacx":
            return parse_reflacx_ellipses(text, key)
        return parse_boxes_csv(text)
    except RegionFormatError as exc:
        raise ValidationError({"file": f"{filename}: {exc}"}) from None


def _where(layout: _Layout, key: str, index: int, column: str | None) -> str:
    line = layout.line(key, index)
    parts = [] if line is None else [f"line {line}"]
    if column is not None:
        parts.append(f"column {layout.column(column)!r}")
    return ", ".join(parts) or f"image {key!r}"


def _check(
    fmt: str, key: str, index: int, region: dict, image: Image, layout: _Layout
) -> str | None:
    """What is wrong with one parsed region on its image, or None."""
    _, name_column, (cx1, cy1, cx2, cy2) = _COLUMNS[fmt]
    if len(region["name"]) > NAME_MAX:
        where = _where(layout, key, index, name_column)
        return f"{where}: a region name is at most {NAME_MAX} characters"
    width, height = image.width, image.height
    x1, y1, x2, y2 = region["x1"], region["y1"], region["x2"], region["y2"]
    if region["kind"] == "ellipse":
        # The box of what a reader drew may pass the image's edge; it must overlap the image.
        checks = ((x1 >= width, cx1, f"{x1:g} is not left of the image's right edge ({width})"),
                  (x2 <= 0, cx2, f"{x2:g} is not right of the image's left edge (0)"),
                  (y1 >= height, cy1, f"{y1:g} is not above the image's bottom edge ({height})"),
                  (y2 <= 0, cy2, f"{y2:g} is not below the image's top edge (0)"))  # fmt: skip
    else:
        checks = ((x1 < 0, cx1, f"{x1:g} is left of the image (x from 0 to {width})"),
                  (y1 < 0, cy1, f"{y1:g} is above the image (y from 0 to {height})"),
                  (x2 > width, cx2, f"{x2:g} is past the image's width ({width})"),
                  (y2 > height, cy2, f"{y2:g} is past the image's height ({height})"))  # fmt: skip
    for failed, column, message in checks:
        if failed:
            return f"{_where(layout, key, index, column)}: {message} of image {key!r}"
    return None


# --- writes ----------------------------------------------------------------------------------


def regions_import(
    *,
    lab: Lab,
    actor: User,
    fmt: str,
    text: str | None = None,
    file: BinaryIO | None = None,
    filename: str = "regions.csv",
    key: str | None = None,
    group: str = "",
    skip_unknown: bool = False,
) -> RegionImportReport:
    """Store the regions of a file (``text`` or a binary ``file``) for the lab's images.

    Args:
        fmt: ``egd`` (bounding_boxes.csv: dicom_id, bbox_name, x1, x2, y1, y2), ``reflacx``
            (one reading's anomaly_location_ellipses.csv; ``key`` names its image) or ``boxes``
            (image or key, name, x1, y1, x2, y2, optional kind box/ellipse).
        key: the image key of a REFLACX file (required there, refused elsewhere).
        group: stored with the regions; the import replaces the regions of the same source and
            group of each image it names (default "": all of the source's regions there).
        skip_unknown: leave out keys that name no image of the lab (listed in the report)
            instead of refusing the file.

    Raises:
        ValidationError: the file, its format, a line (named with its column), an unknown key,
            a coordinate outside its image; nothing is stored. ``RegionsTooLarge`` (one) for a
            file over ``REGIONS_MAX_BYTES``.
        PermissionDenied: a role that may not write.
    """
    require_action(user=actor, lab=lab, action=Action.WRITE)
    if fmt not in FORMATS:
        raise ValidationError({"format": f"{fmt!r} is not one of {', '.join(FORMATS)}."})
    key = (key or "").strip() or None
    if fmt == "reflacx" and key is None:
        raise ValidationError(
            {"key": "A REFLACX ellipses file names no image: give the key of its image."}
        )
    if fmt != "reflacx" and key is not None:
        raise ValidationError({"key": f"The {fmt} file names its images itself; give no key."})
    group = (group or "").strip()
    if len(group) > GROUP_MAX:
        raise ValidationError({"group": f"At most {GROUP_MAX} characters."})
    text = _text(text=text, file=file, filename=filename)
    parsed = _parse(fmt, text, key, filename)
    layout = _layout(text, fmt, key)
    report = RegionImportReport(source=fmt, group=group)
    with transaction.atomic():
        images = {
            image.key: image
            for image in Image.objects.select_for_update()
            .filter(lab=lab, key__in=list(parsed))
            .only("pk", "key", "width", "height")
        }  # fmt: skip
        unknown = [k for k in parsed if k not in images]
        if unknown and not skip_unknown:
            listed = ", ".join(repr(k) for k in unknown[:UNKNOWN_LISTED])
            extra = len(unknown) - UNKNOWN_LISTED
            more = f" and {extra} more" if extra > 0 else ""
            raise ValidationError(
                {"file": f"{filename}: {len(unknown)} key(s) name no image of {lab.name}: "
                         f"{listed}{more} (skip_unknown=true leaves them out)."}
            )  # fmt: skip
        report.skipped_keys = unknown
        errors, rows = [], []
        for image_key, regions in parsed.items():
            image = images.get(image_key)
            if image is None:
                continue
            for index, region in enumerate(regions):
                problem = _check(fmt, image_key, index, region, image, layout)
                if problem is not None:
                    errors.append(f"{filename}: {problem}")
                    continue
                attributes = {k: region[k] for k in ("certainty", "findings") if k in region}
                rows.append(ImageRegion(
                    lab=lab, image=image, name=region["name"], kind=region["kind"],
                    x1=region["x1"], y1=region["y1"], x2=region["x2"], y2=region["y2"],
                    source=fmt, group=group, attributes=attributes,
                ))  # fmt: skip
            if len(errors) >= MAX_ERRORS:
                break
        if errors:
            raise ValidationError({"file": errors[:MAX_ERRORS]})
        named = [images[k].pk for k in parsed if k in images]
        report.replaced, _ = ImageRegion.objects.filter(
            image_id__in=named, source=fmt, group=group
        ).delete()
        ImageRegion.objects.bulk_create(rows, batch_size=1000)
        report.images, report.regions = len(named), len(rows)
    return report


def mask_bytes(mask: np.ndarray) -> bytes:
    """A mask as stored: a compressed ``.npz`` with its bits packed (``bits``) and ``shape``."""
    mask = np.asarray(mask, dtype=bool)
    out = io.BytesIO()
    np.savez_compressed(out, bits=np.packbits(mask, axis=None), shape=np.array(mask.shape))
    return out.getvalue()


def region_mask(region: ImageRegion) -> np.ndarray:
    """A mask region's boolean ``(H, W)`` array at its image's size."""
    with np.load(io.BytesIO(storage.read_bytes(region.mask_name))) as data:
        shape = tuple(int(v) for v in data["shape"])
        bits = data["bits"]
    return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)


def phantom_regions_store(
    *, image: Image, phantom: Any, names: Sequence[str] = PHANTOM_REGIONS
) -> list[ImageRegion]:
    """Store a synthetic phantom's masks (``ml.synthetic.make_phantom``) as the mask regions of
    the image made from it (source ``phantom``), replacing that image's phantom regions.

    Raises:
        ValueError: the phantom's masks are not at the image's size.
    """
    regions = phantom_regions(phantom, names)
    for region in regions:
        if region["mask"].shape != (image.height, image.width):
            raise ValueError(
                f"mask {region['name']!r} is {region['mask'].shape}, the image "
                f"{(image.height, image.width)}"
            )
    files = storage.FileBatch(app=APP, lab_id=image.lab_id)
    try:
        rows = []
        for region in regions:
            ys, xs = np.nonzero(region["mask"])
            name = files.put(kind="regions", fh=io.BytesIO(mask_bytes(region["mask"])), ext="npz")
            rows.append(ImageRegion(
                lab_id=image.lab_id, image=image, name=region["name"], kind="mask",
                x1=float(xs.min()), y1=float(ys.min()), x2=float(xs.max() + 1),
                y2=float(ys.max() + 1), mask_name=name, source=ImageRegion.Source.PHANTOM,
            ))  # fmt: skip
        with transaction.atomic():
            ImageRegion.objects.filter(image=image, source=ImageRegion.Source.PHANTOM).delete()
            return ImageRegion.objects.bulk_create(rows)
    except BaseException:
        files.discard()
        raise


def region_delete(*, region: ImageRegion, actor: User) -> None:
    """Delete one region (researchers and admins); a mask's file goes with it."""
    require_action(user=actor, lab=region.lab, action=Action.WRITE)
    region.delete()


# --- reads -----------------------------------------------------------------------------------


def regions_for_image(*, image: Image) -> QuerySet[ImageRegion]:
    """The image's regions, by source, group and order of import."""
    return ImageRegion.objects.filter(lab_id=image.lab_id, image=image)


def region_dicts(regions: Sequence[ImageRegion]) -> list[dict]:
    """Regions as ``ml.regions`` takes them (masks read from storage)."""
    out = []
    for region in regions:
        entry = {"name": region.name, "kind": region.kind, "x1": region.x1, "y1": region.y1,
                 "x2": region.x2, "y2": region.y2}  # fmt: skip
        if region.kind == ImageRegion.Kind.MASK:
            entry["mask"] = region_mask(region)
        out.append(entry)
    return out
