"""Writes of the gaze app, by what they serve:

- ``access``: who may create sessions and upload (beyond the lab role's plain write right);
- ``readers``: readers, reading sessions (their geometry checked), readings' training flag, and a
  session as ``ml.gaze`` wants it;
- ``recordings``: upload (format detected and refused at once from the ``ml.gaze.FORMATS``
  registry), re-parse, delete, status, claim, enqueue;
- ``parse``: read + analyse (``ml.gaze.analysis``) + store, the parse of one recording;
- ``grading``: the lab's quality thresholds, and the re-grade of stored readings with them;
- ``saliency``: saliency maps of readings and pooled per image.

The science (format readers, fixation detection, screen-to-image mapping, quality grades) lives in
``ml.gaze``. Every public name is re-exported here: ``from apps.gaze import services`` then
``services.recording_upload(...)``. The parse is queued through ``services._enqueue``, the one
place tests replace it.
"""

from apps.core.uploads import Upload
from apps.gaze.services.access import (
    can_change_session,
    can_upload_to,
    check_can_upload,
    reading_session_check_create,
    reading_session_check_update,
    reading_session_owned,
)
from apps.gaze.services.grading import RegradeReport, lab_readings_regrade, thresholds_for_lab
from apps.gaze.services.parse import (
    FIXATION_COLUMNS,
    FIXATION_EXTRA,
    ParseResult,
    ReadingRows,
    recording_analyse,
    recording_parse,
    recording_read,
    recording_store,
    thresholds_from_settings,
)
from apps.gaze.services.readers import (
    SESSION_FIELDS,
    reader_create,
    reader_delete,
    reader_update,
    reading_session_create,
    reading_session_delete,
    reading_session_update,
    reading_update,
    readings_training_set,
    session_geometry,
    session_setup,
)
from apps.gaze.services.recordings import (
    RecordingClaimFailed,
    RecordingRejected,
    _enqueue,
    reading_session_reparse,
    recording_claim,
    recording_delete,
    recording_reparse,
    recording_report_progress,
    recording_update_status,
    recording_upload,
    recordings_sweep,
    tmp_upload,
)
from apps.gaze.services.saliency import (
    SALIENCY_DEFAULT_SIZE,
    SALIENCY_MAX_SIDE,
    reading_saliency_inputs,
    saliency_map_get_or_create,
    saliency_map_load,
    saliency_map_png,
)

__all__ = [
    "FIXATION_COLUMNS",
    "FIXATION_EXTRA",
    "SALIENCY_DEFAULT_SIZE",
    "SALIENCY_MAX_SIDE",
    "SESSION_FIELDS",
    "ParseResult",
    "ReadingRows",
    "RecordingRejected",
    "RegradeReport",
    "Upload",
    "_enqueue",
    "can_change_session",
    "can_upload_to",
    "check_can_upload",
    "lab_readings_regrade",
    "reader_create",
    "reader_delete",
    "reader_update",
    "reading_saliency_inputs",
    "reading_session_check_create",
    "reading_session_check_update",
    "reading_session_create",
    "reading_session_delete",
    "reading_session_owned",
    "reading_session_reparse",
    "reading_session_update",
    "reading_update",
    "readings_training_set",
    "recording_analyse",
    "recording_claim",
    "RecordingClaimFailed",
    "recordings_sweep",
    "recording_delete",
    "recording_parse",
    "recording_read",
    "recording_report_progress",
    "recording_reparse",
    "recording_store",
    "recording_update_status",
    "recording_upload",
    "saliency_map_get_or_create",
    "saliency_map_load",
    "saliency_map_png",
    "session_geometry",
    "session_setup",
    "thresholds_for_lab",
    "thresholds_from_settings",
    "tmp_upload",
]
