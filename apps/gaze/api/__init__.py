"""REST API of reading sessions, by resource:

- ``sessions``: readers, sessions (display geometry; readers change their own);
- ``recordings``: multipart upload, parse status and quality report, re-parse;
- ``readings``: readings and fixations (JSON, or CSV with ``?format=csv``), saliency maps.

Views map service errors to responses; the decisions (who may create a session or upload, what
an upload may be) are the services'. The viewsets are re-exported here for ``urls_api``.
"""

from apps.gaze.api.readings import FixationViewSet, ReadingViewSet, SaliencyMapViewSet
from apps.gaze.api.recordings import RecordingViewSet
from apps.gaze.api.sessions import ReaderViewSet, ReadingSessionViewSet

__all__ = [
    "FixationViewSet",
    "ReaderViewSet",
    "ReadingSessionViewSet",
    "ReadingViewSet",
    "RecordingViewSet",
    "SaliencyMapViewSet",
]
