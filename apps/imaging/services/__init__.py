"""Writes of the imaging app, by concern:

- ``ingest``: one image file (check, decode, de-identify, store);
- ``zips``: zip uploads (safe member names, zip-bomb limits, extraction);
- ``batches``: many files (upload batches staged in a request and ingested by a worker, and the
  in-process ingest of many files);
- ``labels``: the lab's class vocabulary and labels in bulk from a CSV (parse, plan, apply);
- ``images``: label, findings and key changes, delete;
- ``pixels``: where an image's pixels for the model live and how they are read back;
- ``regions``: regions of images (EGD-CXR boxes, REFLACX ellipses, boxes CSV, phantom masks).

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
    LabelChange,
    LabelImportPlan,
    LabelImportReport,
    LabelPlanChanged,
    LabelSheet,
    image_class_create,
    image_class_defaults_ensure,
    image_class_delete,
    image_class_rename,
    image_labels_apply,
    image_labels_import_csv,
    image_labels_parse_csv,
    image_labels_plan,
    image_labels_preview_csv,
)
from apps.imaging.services.pixels import (
    ArrayCompaction,
    array_read,
    image_array,
    image_array_compact,
)
from apps.imaging.services.regions import (
    RegionImportReport,
    RegionsTooLarge,
    phantom_regions_store,
    region_delete,
    region_dicts,
    region_mask,
    regions_for_image,
    regions_import,
)

__all__ = [
    "ArrayCompaction",
    "ImageRejected",
    "IngestResult",
    "LabelChange",
    "LabelImportPlan",
    "LabelImportReport",
    "LabelPlanChanged",
    "LabelSheet",
    "RegionImportReport",
    "RegionsTooLarge",
    "Upload",
    "UploadRefused",
    "array_read",
    "image_array",
    "image_array_compact",
    "image_class_create",
    "image_class_defaults_ensure",
    "image_class_delete",
    "image_class_rename",
    "image_delete",
    "image_ingest",
    "image_labels_apply",
    "image_labels_import_csv",
    "image_labels_parse_csv",
    "image_labels_plan",
    "image_labels_preview_csv",
    "image_update",
    "image_upload_batch",
    "phantom_regions_store",
    "region_delete",
    "region_dicts",
    "region_mask",
    "regions_for_image",
    "regions_import",
    "upload_batch_claim",
    "upload_batch_create",
    "upload_batch_run",
    "upload_batches_sweep",
]
