"""Datasets over a snapshot manifest: a JSON file naming per-image arrays on disk.

Format (``ml.manifest/1``), paths relative to the manifest's folder::

    {
      "format": "ml.manifest/1",
      "classes": ["Normal", "CHF", "Pneumonia"],
      "resolution": [640, 512],
      "items": [
        {"key": "img-1", "image": "images/img-1.npy", "target": "targets/img-1.npy",
         "label": 1, "split": "train", "patient_id": "p-7",
         "fixations": "fixations/img-1.npy"}
      ]
    }

``image``: ``(H, W)`` at the model resolution, float in [0, 1] or an unsigned integer type
(scaled by its maximum). ``target``: ``(H, W)`` non-negative gaze map. ``fixations`` (optional):
``(N, 2)`` integer ``(x, y)`` pixels at the model resolution, for the location-based metrics.
Arrays are memory-mapped and read only when an item is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

FORMAT = "ml.manifest/1"


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load and check a manifest.

    Raises:
        ValueError: with the item and field at fault.
    """
    path = Path(path)
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: format must be {FORMAT!r}, got {data.get('format')!r}")
    classes = data.get("classes")
    if not classes:
        raise ValueError(f"{path}: 'classes' is missing or empty")
    for index, item in enumerate(data.get("items", [])):
        for field in ("key", "image", "target", "label", "split"):
            if field not in item:
                raise ValueError(f"{path}: item {index} has no {field!r}")
        if not 0 <= int(item["label"]) < len(classes):
            raise ValueError(
                f"{path}: item {index} ({item['key']}) label {item['label']} "
                f"is not one of {len(classes)} classes"
            )
    return data


def _as_unit_float(array: np.ndarray) -> np.ndarray:
    if np.issubdtype(array.dtype, np.unsignedinteger):
        return np.asarray(array, dtype=np.float32) / np.iinfo(array.dtype).max
    return np.asarray(array, dtype=np.float32)


class ManifestDataset(Dataset):
    """The items of one split of a manifest, loaded lazily.

    Each item is ``{"image": (1, H, W) float32, "target": (1, H, W) float32, "label": int64,
    "index": int}``; :meth:`fixations` and :attr:`keys` give the rest.

    Args:
        manifest: path to the manifest JSON.
        split: ``train``, ``val``, ``test``, or ``None`` for all items.
    """

    def __init__(self, manifest: str | Path, split: str | None = None) -> None:
        self.path = Path(manifest)
        self.root = self.path.parent
        data = read_manifest(self.path)
        self.classes: list[str] = list(data["classes"])
        self.resolution = tuple(data.get("resolution", ()))
        self.items = [item for item in data["items"] if split is None or item["split"] == split]
        self.keys = [item["key"] for item in self.items]
        self.labels = np.array([int(item["label"]) for item in self.items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, relative: str) -> np.ndarray:
        return np.load(self.root / relative, mmap_mode="r")

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        image = _as_unit_float(self._load(item["image"]))
        target = np.asarray(self._load(item["target"]), dtype=np.float32)
        if image.shape != target.shape:
            raise ValueError(f"{item['key']}: image {image.shape} and target {target.shape} differ")
        return {
            "image": torch.from_numpy(image.copy())[None],
            "target": torch.from_numpy(target.copy())[None],
            "label": torch.tensor(self.labels[index]),
            "index": index,
        }

    def fixations(self, index: int) -> np.ndarray | None:
        """``(N, 2)`` integer ``(x, y)`` fixations of item ``index``, or ``None``."""
        relative = self.items[index].get("fixations")
        if not relative:
            return None
        return np.asarray(self._load(relative), dtype=np.int64).reshape(-1, 2)


def write_manifest(
    folder: str | Path,
    classes: list[str],
    images: np.ndarray,
    targets: np.ndarray,
    labels: np.ndarray,
    splits: list[str],
    keys: list[str] | None = None,
    patient_ids: list[str] | None = None,
    fixations: list[np.ndarray] | None = None,
) -> Path:
    """Write arrays as a manifest folder (for tests, the demo and the benchmark).

    Shape:
        ``images, targets: (N, H, W)``, ``labels: (N,)``; ``fixations``: N arrays ``(M_i, 2)``.

    Returns:
        The manifest's path (``folder/manifest.json``).
    """
    folder = Path(folder)
    for sub in ("images", "targets", "fixations"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    keys = keys or [f"item-{i:05d}" for i in range(len(labels))]
    items = []
    for i, key in enumerate(keys):
        np.save(folder / "images" / f"{key}.npy", np.asarray(images[i], dtype=np.float32))
        np.save(folder / "targets" / f"{key}.npy", np.asarray(targets[i], dtype=np.float32))
        item = {
            "key": key,
            "image": f"images/{key}.npy",
            "target": f"targets/{key}.npy",
            "label": int(labels[i]),
            "split": splits[i],
        }
        if patient_ids is not None:
            item["patient_id"] = patient_ids[i]
        if fixations is not None:
            np.save(folder / "fixations" / f"{key}.npy", np.asarray(fixations[i], dtype=np.int64))
            item["fixations"] = f"fixations/{key}.npy"
        items.append(item)
    path = folder / "manifest.json"
    manifest = {
        "format": FORMAT,
        "classes": classes,
        "resolution": list(np.asarray(images).shape[-2:]),
        "items": items,
    }
    path.write_text(json.dumps(manifest, indent=1))
    return path
