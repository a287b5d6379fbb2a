"""HTML pages of reading sessions: the list (with a form to start one), one session with
drag-and-drop upload, and one recording's result (quality report, unmatched names, scanpaths).

Uploads go to the REST API (``POST /api/v1/recordings/``) with the session's CSRF token; the page
then polls ``/api/v1/recordings/{id}/status/`` for the parse's progress.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from apps.gaze import selectors, services
from apps.gaze.models import ReadingSession
from apps.imaging.models import Image
from apps.labs.roles import Action, role_allows

READINGS_PER_PAGE = 24


class SessionForm(forms.Form):
    reader = forms.ModelChoiceField(queryset=None)
    name = forms.CharField(max_length=200, required=False)
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    tracker_make = forms.CharField(max_length=120, required=False)
    sampling_rate_hz = forms.FloatField(required=False, min_value=0)
    screen_width_px = forms.IntegerField(initial=1920, min_value=1)
    screen_height_px = forms.IntegerField(initial=1080, min_value=1)
    screen_width_mm = forms.FloatField(required=False, min_value=0)
    screen_height_mm = forms.FloatField(required=False, min_value=0)
    viewing_distance_mm = forms.FloatField(required=False, min_value=0)
    image_placement = forms.ChoiceField(choices=ReadingSession.Placement.choices)
    fixation_detection = forms.ChoiceField(choices=ReadingSession.Detection.choices)

    def __init__(self, *args, readers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reader"].queryset = readers


def _readers_for(request: HttpRequest):
    readers = selectors.reader_list(lab=request.lab)
    if role_allows(request.lab_role, Action.WRITE):
        return readers
    return readers.filter(user=request.user)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def session_list(request: HttpRequest) -> HttpResponse:
    """The current lab's sessions, and a form to start one."""
    lab = request.lab if request.lab else None
    can_create = bool(lab) and role_allows(request.lab_role, Action.UPLOAD_OWN)
    readers = _readers_for(request) if lab else None
    form = SessionForm(request.POST or None, readers=readers) if can_create else None
    if request.method == "POST":
        if not can_create:
            raise PermissionDenied("Your role in this lab does not allow creating sessions.")
        if form.is_valid():
            fields = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
            reader = fields.pop("reader")
            try:
                session = services.reading_session_create(
                    lab=lab, reader=reader, created_by=request.user, **fields
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Session {session} created.")
                return redirect("gaze-session", pk=session.pk)
    context = {
        "sessions": selectors.reading_session_list(lab=lab) if lab else [],
        "form": form,
        "can_create": can_create,
    }
    return render(request, "gaze/sessions.html", context)


@never_cache
@login_required
@require_GET
def session_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One session: its geometry, its recordings with their status, and the upload drop zone."""
    lab = request.lab if request.lab else None
    session = selectors.reading_session_get(user_labs=[lab.pk], pk=pk) if lab else None
    if session is None:
        raise Http404("No such session in this lab.")
    can_upload = services.can_upload_to(session=session, user=request.user)
    # Suggestions for the upload's "Image shown" field (``image_key``: the image an export that
    # names none was read on); any key can still be typed.
    image_keys = Image.objects.filter(lab=lab).order_by("key").values_list("key", flat=True)
    context = {
        "session": session,
        "recordings": selectors.recording_list(lab=lab, session=session),
        "can_upload": can_upload,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "image_keys": list(image_keys[:5000]) if can_upload else [],
    }
    return render(request, "gaze/session.html", context)


@never_cache
@login_required
@require_GET
def recording_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A recording's result: quality report, unmatched stimuli, and each reading's image with
    its fixations and scanpath (Plotly)."""
    lab = request.lab if request.lab else None
    recording = selectors.recording_get(lab=lab, pk=pk) if lab else None
    if recording is None:
        raise Http404("No such recording in this lab.")
    # An EGD-CXR recording holds about a thousand readings: one page of figures at a time.
    page = Paginator(selectors.reading_list(lab=lab, recording=recording), READINGS_PER_PAGE)
    page = page.get_page(request.GET.get("page"))
    readings = list(page.object_list)
    figures = [
        {
            "id": r.pk,
            "image_key": r.image.key,
            "width": r.image.width,
            "height": r.image.height,
            "preview": f"/api/v1/images/{r.image_id}/preview/",
            **selectors.scanpath(lab=lab, reading=r),
        }
        for r in readings
    ]
    context = {
        "recording": recording,
        "readings": readings,
        "page": page,
        "figures": figures,
        "quality_rows": _quality_rows(recording.quality),
    }
    return render(request, "gaze/recording.html", context)


QUALITY_LABELS = [
    ("grade", "Grade", ""),
    ("format", "Format", ""),
    ("tracker", "Tracker", ""),
    ("sampling_rate_declared_hz", "Sampling rate declared", "Hz"),
    ("sampling_rate_measured_hz", "Sampling rate measured", "Hz"),
    ("sample_count", "Samples", ""),
    ("valid_pct", "Valid samples", "%"),
    ("on_image_pct", "Gaze on the image", "%"),
    ("blink_count", "Blinks", ""),
    ("validation_error_deg", "Validation error", "deg"),
    ("fixation_source", "Fixations from", ""),
    ("fixation_count", "Fixations", ""),
    ("fixations_stored", "Fixations stored", ""),
    ("original_xy_max_error_px", "Largest disagreement with X/Y_ORIGINAL", "px"),
    ("mean_fixation_ms", "Mean fixation", "ms"),
    ("readings", "Readings stored", ""),
]


def _quality_rows(quality: dict) -> list[tuple[str, str]]:
    rows = []
    for key, label, unit in QUALITY_LABELS:
        value = quality.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = f"{value:.1f}"
        rows.append((label, f"{value} {unit}".strip()))
    return rows
