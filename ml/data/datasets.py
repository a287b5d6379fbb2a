"""Datasets yielding what the training loop and evaluation consume."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class ArrayDataset(Dataset):
    """In-memory images, gaze targets and labels.

    Each item is ``{"image": (C, H, W) float32, "target": (1, H, W) float32, "label": int64,
    "index": int}``.

    Args:
        images: ``(N, C, H, W)`` (or ``(N, H, W)``, given one channel).
        targets: ``(N, 1, H, W)`` or ``(N, H, W)`` non-negative gaze maps.
        labels: ``(N,)`` class indices.
    """

    def __init__(self, images: np.ndarray, targets: np.ndarray, labels: np.ndarray) -> None:
        self.images = images[:, None] if images.ndim == 3 else images
        self.targets = targets[:, None] if targets.ndim == 3 else targets
        self.labels = np.asarray(labels, dtype=np.int64)
        if not len(self.images) == len(self.targets) == len(self.labels):
            raise ValueError("images, targets and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return {
            "image": torch.from_numpy(np.asarray(self.images[index], dtype=np.float32)),
            "target": torch.from_numpy(np.asarray(self.targets[index], dtype=np.float32)),
            "label": torch.tensor(self.labels[index]),
            "index": index,
        }
