"""Data for training and evaluation: datasets, splits, resizing and a synthetic task."""

from ml.data.datasets import ArrayDataset
from ml.data.manifest import ManifestDataset, read_manifest, write_manifest
from ml.data.resize import ResizeTransform, letterbox, pad_and_stride
from ml.data.splits import original_split, patient_split
from ml.data.synthetic import blob_dataset

__all__ = [
    "ArrayDataset",
    "ManifestDataset",
    "ResizeTransform",
    "blob_dataset",
    "letterbox",
    "original_split",
    "pad_and_stride",
    "patient_split",
    "read_manifest",
    "write_manifest",
]
