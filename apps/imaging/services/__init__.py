"""Writes of the imaging app, by concern:

- ``ingest``: one image file (check, decode, de-identify, store);
- ``zips``: zip uploads (safe member names, zip-bomb limits, extraction);
- ``batches``: many files (upload batches staged in a request and ingested by a worker, and the
  in-process ingest of many files);
- ``labels``: the lab's class vocabulary and labels in bulk from a CSV;
- ``images``: label, findings and key changes, delete;
- ``pixels``: where an image's pixels for the model live and how they are read back.

Every public name is re-exported here: ``from apps.imaging import services`` then
``services.image_ingest(...)``.
"""

from apps.core.uploads import Upload
from apps.imaging.services.batches import (
    UploadRefused,
    image_upload_batch,
    upload_batch_claim,
    upload_batch_create,
    upload_batch_run,
    upload_batches_sweep,
)
from apps.imaging.services.images import image_delete, image_update
from apps.imaging.services.ingest import ImageRejected, IngestResult, image_ingest
from apps.imaging.services.labels import (
    LabelImportReport,
    image_class_create,
    image_class_defaults_ensure,
    image_class_delete,
    image_labels_import_csv,
)
from apps.imaging.services.pixels import (
    ArrayCompaction,
    array_read,
    image_array,
    image_array_compact,
)

__all__ = [
    "ArrayCompaction",
    "ImageRejected",
    "IngestResult",
    "LabelImportReport",
    "Upload",
    "UploadRefused",
    "array_read",
    "image_array",
    "image_array_compact",
    "image_class_create",
    "image_class_defaults_ensure",
    "image_class_delete",
    "image_delete",
    "image_ingest",
    "image_labels_import_csv",
    "image_update",
    "image_upload_batch",
    "upload_batch_claim",
    "upload_batch_create",
    "upload_batch_run",
    "upload_batches_sweep",
]
