"""HTML pages of readers and reading sessions: the lab's readers (create, edit, link to a member,
delete), the sessions (with a form to start one), one session (edit its display geometry and
fixation detection, re-parse, drag-and-drop upload, its readings' training flags, delete), and
one recording's result (quality report, unmatched names, scanpaths, re-parse, delete).

Every action the REST API offers a lab member is here with the API's roles: researchers and
admins (``Action.WRITE``) manage readers and readings' training flags; they and the session's
own reader (``services.can_change_session``) change, re-parse and delete a session and its
recordings. Objects of another lab are 404, writes the role does not allow 403.

Uploads go to the REST API (``POST /api/v1/recordings/``) with the session's CSRF token; the
pages poll ``/api/v1/recordings/{id}/status/`` for a parse's progress.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.gaze import selectors, services
from apps.gaze.forms import (
    PARSE_FIELDS,
    BulkTrainingForm,
    ReaderForm,
    ReadingTrainingForm,
    SessionEditForm,
    SessionForm,
)
from apps.gaze.models import Reader, Reading, ReadingSession, Recording
from apps.imaging.models import Image
from apps.labs.forms import add_service_error
from apps.labs.roles import Action, role_allows

READINGS_PER_PAGE = 24  # figures on the recording page
SESSION_READINGS_PER_PAGE = 50  # rows on the session page
NOT_WRITER = "Your role in this lab does not allow this: researchers and admins do it."
NOT_SESSION_CHANGER = (
    "Your role in this lab does not allow changing this session: researchers, admins and the "
    "session's own reader do."
)


# --- Helpers ----------------------------------------------------------------------------------
def _lab(request: HttpRequest):
    return request.lab if getattr(request, "lab", None) else None


def _can_write(request: HttpRequest) -> bool:
    return bool(_lab(request)) and role_allows(str(request.lab_role), Action.WRITE)


def _require_write(request: HttpRequest) -> None:
    if not _can_write(request):
        raise PermissionDenied(NOT_WRITER)


def _require_session_change(request: HttpRequest, session: ReadingSession) -> None:
    if not services.can_change_session(session=session, user=request.user):
        raise PermissionDenied(NOT_SESSION_CHANGER)


def _in_lab_or_404(request: HttpRequest, get, what: str):
    """The lab's ``what`` found by ``get(lab)``, or 404 (another lab's reads as missing)."""
    lab = _lab(request)
    found = get(lab) if lab else None
    if found is None:
        raise Http404(f"No such {what} in this lab.")
    return found


def _session_or_404(request: HttpRequest, pk: int) -> ReadingSession:
    return _in_lab_or_404(
        request, lambda lab: selectors.reading_session_get(user_labs=[lab.pk], pk=pk), "session"
    )


def _recording_or_404(request: HttpRequest, pk: int) -> Recording:
    return _in_lab_or_404(request, lambda lab: selectors.recording_get(lab=lab, pk=pk), "recording")


def _reader_or_404(request: HttpRequest, pk: int) -> Reader:
    return _in_lab_or_404(request, lambda lab: selectors.reader_get(lab=lab, pk=pk), "reader")


def _reading_or_404(request: HttpRequest, pk: int) -> Reading:
    return _in_lab_or_404(request, lambda lab: selectors.reading_get(lab=lab, pk=pk), "reading")


def _next_url(request: HttpRequest, default: str) -> str:
    """The page a small form came from (``next``), when it is one of this site's."""
    url = request.POST.get("next", "")
    ok = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if url and ok and url.startswith("/") else default


def _counted(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _what_goes(counts: dict[str, int]) -> str:
    """``counts`` in words: "2 recordings, 30 readings, 450 fixations and 3 saliency maps"."""
    words = [("recordings", "recording"), ("readings", "reading"), ("fixations", "fixation"),
             ("saliency_maps", "saliency map")]  # fmt: skip
    parts = [_counted(counts[key], word) for key, word in words if key in counts]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


# --- Readers ----------------------------------------------------------------------------------
def _readers_page(
    request: HttpRequest,
    form: ReaderForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    lab = _lab(request)
    can_write = _can_write(request)
    if can_write and form is None:
        form = ReaderForm(members=selectors.lab_member_list(lab=lab))
    readers = list(selectors.reader_list_with_counts(lab=lab)) if lab else []
    for reader in readers:
        reader.confirm = f"Delete reader {reader.code}?"
    context = {
        "readers": readers,
        "form": form if can_write else None,
        "can_write": can_write,
        "delete_error": error,
    }
    return render(request, "gaze/readers.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reader_list(request: HttpRequest) -> HttpResponse:
    """The lab's readers with their sessions, readings and grades; a POST adds one
    (researchers and admins)."""
    if request.method == "GET":
        return _readers_page(request)
    _require_write(request)
    lab = _lab(request)
    form = ReaderForm(request.POST, members=selectors.lab_member_list(lab=lab))
    if not form.is_valid():
        return _readers_page(request, form=form, status=400)
    try:
        reader = services.reader_create(lab=lab, **form.cleaned_data)
    except ValidationError as exc:
        add_service_error(form, exc)
        return _readers_page(request, form=form, status=400)
    messages.success(request, f"Reader {reader.code} added.")
    return redirect("gaze-readers")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reader_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One reader: details, sessions, and (researchers and admins) the edit form."""
    reader = _reader_or_404(request, pk)
    lab = _lab(request)
    can_write = _can_write(request)
    members = selectors.lab_member_list(lab=lab)
    status = 200
    form = ReaderForm(initial=ReaderForm.initial_of(reader), members=members) if can_write else None
    if request.method == "POST":
        _require_write(request)
        form = ReaderForm(request.POST, members=members)
        if form.is_valid():
            try:
                services.reader_update(reader=reader, **form.cleaned_data)
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Reader {reader.code} saved.")
                return redirect("gaze-reader", pk=reader.pk)
        status = 400
        reader = _reader_or_404(request, pk)  # as stored, not as the refused form left it
    sessions = selectors.reading_session_list(lab=lab).filter(reader=reader)
    context = {
        "reader": reader,
        "form": form,
        "can_write": can_write,
        "sessions": sessions,
        "confirm": f"Delete reader {reader.code}?",
    }
    return render(request, "gaze/reader.html", context, status=status)


@never_cache
@login_required
@require_POST
def reader_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a reader (researchers and admins); refused, with the reason, while sessions use
    them."""
    reader = _reader_or_404(request, pk)
    _require_write(request)
    try:
        services.reader_delete(reader=reader)
    except ValidationError as exc:
        error = f"Reader {reader.code} was not deleted: {' '.join(exc.messages)}"
        return _readers_page(request, error=error, status=400)
    messages.success(request, f"Reader {reader.code} deleted.")
    return redirect("gaze-readers")


# --- Sessions ---------------------------------------------------------------------------------
def _readers_for(request: HttpRequest):
    readers = selectors.reader_list(lab=_lab(request))
    if _can_write(request):
        return readers
    return readers.filter(user=request.user)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def session_list(request: HttpRequest) -> HttpResponse:
    """The current lab's sessions, and a form to start one."""
    lab = _lab(request)
    can_create = bool(lab) and role_allows(str(request.lab_role), Action.UPLOAD_OWN)
    readers = _readers_for(request) if lab else None
    form = SessionForm(request.POST or None, readers=readers) if can_create else None
    status = 200
    if request.method == "POST":
        if not can_create:
            raise PermissionDenied("Your role in this lab does not allow creating sessions.")
        status = 400
        if form.is_valid():
            fields = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
            reader = fields.pop("reader")
            try:
                session = services.reading_session_create(
                    lab=lab, reader=reader, created_by=request.user, **fields
                )
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Session {session} created.")
                return redirect("gaze-session", pk=session.pk)
    context = {
        "sessions": selectors.reading_session_list(lab=lab) if lab else [],
        "form": form,
        "can_create": can_create,
        "can_write": _can_write(request),
    }
    return render(request, "gaze/sessions.html", context, status=status)


def _session_page(
    request: HttpRequest,
    session: ReadingSession,
    *,
    edit_form: SessionEditForm | None = None,
    bulk_form: BulkTrainingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    lab = _lab(request)
    can_upload = services.can_upload_to(session=session, user=request.user)
    can_change = services.can_change_session(session=session, user=request.user)
    can_write = _can_write(request)
    recordings = list(
        selectors.recording_list(lab=lab, session=session).annotate(n_readings=Count("readings"))
    )
    if can_change:
        goes = selectors.recordings_deletion_counts(session=session)
        for rec in recordings:
            rec.confirm = (
                f"Delete the recording {rec.original_name} with its "
                f"{_what_goes(goes[rec.pk])}? This cannot be undone."
            )
        counts = selectors.reading_session_deletion_counts(session=session)
        session_confirm = (
            f"Delete the session {session} with its {_what_goes(counts)}? This cannot be undone."
        )
        if edit_form is None:
            edit_form = SessionEditForm(
                initial=SessionEditForm.initial_of(session),
                readers=selectors.reader_list(lab=lab) if can_write else None,
            )
    else:
        edit_form, session_confirm = None, ""
    if can_write and bulk_form is None:
        bulk_form = BulkTrainingForm()
    names = {rec.pk: rec.original_name for rec in recordings}
    page = Paginator(selectors.reading_list(lab=lab, session=session), SESSION_READINGS_PER_PAGE)
    page = page.get_page(request.GET.get("page"))
    readings = list(page.object_list)
    for reading in readings:
        reading.recording_name = names.get(reading.recording_id, "")
    # Suggestions for the upload's "Image shown" field (``image_key``: the image an export that
    # names none was read on); any key can still be typed.
    image_keys = Image.objects.filter(lab=lab).order_by("key").values_list("key", flat=True)
    context = {
        "session": session,
        "recordings": recordings,
        "busy": [r.pk for r in recordings if r.status in ("queued", "parsing")],
        "can_upload": can_upload,
        "can_change": can_change,
        "can_write": can_write,
        "edit_form": edit_form,
        "edit_open": bool(edit_form is not None and edit_form.is_bound),
        "edit_error_fields": [f for f in edit_form if f.errors] if edit_form is not None else [],
        "bulk_form": bulk_form if can_write else None,
        "session_confirm": session_confirm,
        "reparse_offer": can_change and bool(recordings) and request.GET.get("reparse") == "offer",
        "readings": readings,
        "page": page,
        "here": request.get_full_path(),
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "image_keys": list(image_keys[:5000]) if can_upload else [],
    }
    return render(request, "gaze/session.html", context, status=status)


@never_cache
@login_required
@require_GET
def session_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One session: its geometry (and the form to change it), its recordings with their status,
    its readings with their training flags, and the upload drop zone."""
    return _session_page(request, _session_or_404(request, pk))


@never_cache
@login_required
@require_POST
def session_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a session's details, tracker, display geometry and fixation detection; after a
    change that the parse reads, the session page offers to re-parse its recordings."""
    session = _session_or_404(request, pk)
    _require_session_change(request, session)
    readers = selectors.reader_list(lab=_lab(request)) if _can_write(request) else None
    form = SessionEditForm(request.POST, readers=readers)
    if not form.is_valid():
        return _session_page(request, session, edit_form=form, status=400)
    changes = form.changes(session)
    services.reading_session_check_update(session=session, user=request.user, changes=changes)
    try:
        services.reading_session_update(session=session, **changes)
    except ValidationError as exc:
        add_service_error(form, exc)
        # The service set the refused values on the object: show the session as stored.
        return _session_page(request, _session_or_404(request, pk), edit_form=form, status=400)
    url = reverse("gaze-session", args=[session.pk])
    if not changes:
        messages.info(request, "Nothing changed.")
        return redirect(url)
    messages.success(request, "Session saved.")
    if PARSE_FIELDS & set(changes) and session.recordings.exists():
        return redirect(f"{url}?reparse=offer#reparse")
    return redirect(url)


@never_cache
@login_required
@require_POST
def session_reparse(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue every recording of the session for a new parse; the page then polls them."""
    session = _session_or_404(request, pk)
    _require_session_change(request, session)
    queued, busy = services.reading_session_reparse(session=session, actor=request.user)
    if queued:
        messages.success(request, f"{_counted(len(queued), 'recording')} queued for a new parse.")
    if busy:
        messages.warning(
            request,
            f"{_counted(len(busy), 'recording')} skipped: a parse of "
            f"{'its' if len(busy) == 1 else 'theirs'} is queued or running already.",
        )
    return redirect(reverse("gaze-session", args=[session.pk]) + "#recordings")


@never_cache
@login_required
@require_POST
def session_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a session with its recordings, readings, fixations and saliency maps."""
    session = _session_or_404(request, pk)
    _require_session_change(request, session)
    name = str(session)
    services.reading_session_delete(session=session)
    messages.success(request, f"Session {name} deleted.")
    return redirect("gaze-sessions")


@never_cache
@login_required
@require_POST
def session_training(request: HttpRequest, pk: int) -> HttpResponse:
    """Put all readings of one grade in the session into training, or leave them out
    (researchers and admins)."""
    session = _session_or_404(request, pk)
    _require_write(request)
    form = BulkTrainingForm(request.POST)
    if not form.is_valid():
        return _session_page(request, session, bulk_form=form, status=400)
    grade, use = form.cleaned_data["grade"], form.cleaned_data["use_for_training"]
    changed = services.readings_training_set(session=session, grade=grade, use_for_training=use)
    where = "used for training" if use else "left out of training"
    total = session.readings.filter(grade=grade).count()
    messages.success(
        request,
        f"All {_counted(total, f'{grade} reading')} of this session are {where} "
        f"({changed} changed).",
    )
    return redirect(reverse("gaze-session", args=[session.pk]) + "#readings")


# --- Readings ---------------------------------------------------------------------------------
@never_cache
@login_required
@require_POST
def reading_training(request: HttpRequest, pk: int) -> HttpResponse:
    """Use one reading for training or leave it out (researchers and admins)."""
    reading = _reading_or_404(request, pk)
    _require_write(request)
    form = ReadingTrainingForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return HttpResponseBadRequest(errors, content_type="text/plain; charset=utf-8")
    use = form.cleaned_data["use_for_training"]
    services.reading_update(reading=reading, use_for_training=use)
    messages.success(
        request,
        f"Reading of {reading.stimulus_name} "
        f"{'used for training' if use else 'left out of training'}.",
    )
    default = reverse("gaze-recording", args=[reading.recording_id])
    return redirect(_next_url(request, default))


# --- Recordings -------------------------------------------------------------------------------
@never_cache
@login_required
@require_GET
def recording_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A recording's result: quality report, unmatched stimuli, and each reading's image with
    its fixations and scanpath (Plotly)."""
    lab = _lab(request)
    recording = _recording_or_404(request, pk)
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
    can_change = services.can_change_session(session=recording.session, user=request.user)
    confirm = ""
    if can_change:
        goes = _what_goes(selectors.recording_deletion_counts(recording=recording))
        confirm = f"Delete the recording {recording.original_name} with its {goes}? "
        confirm += "This cannot be undone."
    context = {
        "recording": recording,
        "readings": readings,
        "page": page,
        "figures": figures,
        "quality_rows": _quality_rows(recording.quality),
        "can_change": can_change,
        "can_write": _can_write(request),
        "confirm": confirm,
        "busy": recording.status in ("queued", "parsing"),
        "here": request.get_full_path(),
    }
    return render(request, "gaze/recording.html", context)


@never_cache
@login_required
@require_POST
def recording_reparse(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue one recording's parse again; the page it came from polls its progress."""
    recording = _recording_or_404(request, pk)
    _require_session_change(request, recording.session)
    try:
        services.recording_reparse(recording=recording, actor=request.user)
    except ValidationError as exc:
        messages.error(request, f"{recording.original_name}: {' '.join(exc.messages)}")
    else:
        messages.success(request, f"{recording.original_name} is queued for a new parse.")
    return redirect(_next_url(request, reverse("gaze-recording", args=[recording.pk])))


@never_cache
@login_required
@require_POST
def recording_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a recording with its readings, fixations and saliency maps."""
    recording = _recording_or_404(request, pk)
    _require_session_change(request, recording.session)
    name, session_id = recording.original_name, recording.session_id
    services.recording_delete(recording=recording)
    messages.success(request, f"Recording {name} deleted.")
    return redirect("gaze-session", pk=session_id)


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
