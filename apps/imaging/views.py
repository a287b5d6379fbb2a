"""HTML pages of images: the library (with the progress of upload batches), one image (and its
deletion), the upload page, the lab's class vocabulary, and labels from a CSV with a preview.

The upload page sends the chosen files in one request (to ``POST /api/v1/images/`` with the
session's CSRF token, with an upload progress bar; without JavaScript, the form posts here) and
goes to the library, which shows the batch's progress while a worker ingests it, then the images.
"""

from __future__ import annotations

import io
import secrets

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.errors import QuotaExceeded
from apps.core.uploads import Upload
from apps.imaging import selectors, services
from apps.imaging.forms import (
    ImageClassForm,
    ImageClassRenameForm,
    LabelApplyForm,
    LabelImportForm,
)
from apps.labs.forms import add_service_error
from apps.labs.roles import Action, role_allows

PAGE_SIZE = 24
BATCHES_SHOWN = 3


def _can_write(request: HttpRequest) -> bool:
    return bool(request.lab) and role_allows(request.lab_role, Action.WRITE)


def _batches(request: HttpRequest) -> list[dict]:
    """The batch named by ``?batch=`` (of the current lab), else the user's unfinished ones."""
    lab = request.lab
    wanted = request.GET.get("batch", "")
    if wanted.isdigit():
        batch = selectors.upload_batch_get(lab=lab, pk=int(wanted))
        batches = [batch] if batch is not None else []
    else:
        batches = list(
            selectors.upload_batch_list(lab=lab, created_by=request.user, unfinished=True)[
                :BATCHES_SHOWN
            ]
        )
    return [{"batch": b, "files": list(selectors.upload_batch_files(batch=b))} for b in batches]


@never_cache
@login_required
@require_GET
def image_library(request: HttpRequest) -> HttpResponse:
    """The current lab's images: filter by label, search by key, thumbnails, paging; above them,
    the progress and results of upload batches."""
    lab = request.lab if request.lab else None
    label = request.GET.get("label", "")
    search = request.GET.get("q", "").strip()[:200]
    images = selectors.image_list(lab=lab, label=label, search=search) if lab else []
    page = Paginator(images, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("batch", None)
    context = {
        "page": page,
        "label": label,
        "q": search,
        "classes": selectors.image_class_list(lab=lab) if lab else [],
        "counts": selectors.image_label_counts(lab=lab) if lab else {},
        "query": query.urlencode(),
        "can_write": _can_write(request),
        "batches": _batches(request) if lab else [],
    }
    return render(request, "imaging/library.html", context)


@never_cache
@login_required
@require_GET
def image_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One image: the preview with a windowing control, its metadata and labels; for
    researchers and admins, its deletion with what goes with it."""
    return _image_response(request, _image_or_404(request, pk))


def _image_response(
    request: HttpRequest, image, delete_error: str | None = None, status: int = 200
) -> HttpResponse:
    lab = request.lab
    can_write = _can_write(request)
    impact = selectors.image_delete_impact(lab=lab, image=image) if can_write else None
    context = {
        "image": image,
        "audit": selectors.deidentification_audit_list(lab=lab, image=image).first(),
        "classes": selectors.image_class_list(lab=lab),
        "can_write": can_write,
        "impact": impact,
        "delete_summary": _delete_summary(image.key, impact) if impact is not None else "",
        "delete_error": delete_error,
    }
    return render(request, "imaging/image.html", context, status=status)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _delete_summary(key: str, impact: dict[str, int]) -> str:
    """The confirmation's question: what goes with the image, and what keeps a copy."""
    parts = [
        _count(impact["readings"], "reading", "readings"),
        _count(impact["fixations"], "fixation", "fixations"),
        _count(impact["saliency_maps"], "saliency map", "saliency maps"),
        _count(impact["regions"], "region", "regions"),
    ]
    text = f"Delete image {key} with its {', '.join(parts[:-1])} and {parts[-1]}?"
    if impact["snapshot_items"]:
        text += (
            f" {_count(impact['snapshots'], 'dataset snapshot keeps', 'dataset snapshots keep')}"
            " its frozen copy."
        )
    if impact["unbuilt_snapshots"]:
        text += (
            f" {_count(impact['unbuilt_snapshots'], 'snapshot', 'snapshots')} not built yet "
            "will fail without it."
        )
    return text + " This cannot be undone."


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def image_upload(request: HttpRequest) -> HttpResponse:
    """Drop or choose files (or a zip); they upload in one request, then the library shows the
    batch's progress. A plain form post (no JavaScript) lands here and is redirected there."""
    errors: list[str] = []
    if request.method == "POST":
        if not request.lab:
            raise Http404("You are not a member of any lab.")
        if not _can_write(request):
            raise PermissionDenied("Your role in this lab does not allow uploading images.")
        label = request.POST.get("label", "")
        uploads = [Upload.from_django(f, label=label) for f in request.FILES.getlist("files")]
        try:
            batch = services.upload_batch_create(
                lab=request.lab, created_by=request.user, uploads=uploads
            )
        except ValidationError as exc:
            errors = exc.messages
        except services.UploadRefused as exc:
            errors = [r.message for r in exc.results]
        except QuotaExceeded as exc:
            errors = [str(exc)]
        else:
            return redirect(f"{reverse('image-library')}?batch={batch.pk}")
    context = {
        "can_write": _can_write(request),
        "classes": selectors.image_class_list(lab=request.lab) if request.lab else [],
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        "errors": errors,
    }
    return render(request, "imaging/upload.html", context, status=400 if errors else 200)


# --- Label and delete an image -------------------------------------------------------------------


@never_cache
@login_required
@require_POST
def image_label(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an image's label (researchers and admins): the label form without JavaScript
    (with it, the form PATCHes the API and stays on the page)."""
    image = _image_or_404(request, pk)
    if not _can_write(request):
        raise PermissionDenied("Your role in this lab does not allow labelling images.")
    try:
        services.image_update(image=image, actor=request.user, label=request.POST.get("label", ""))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, f"Label saved: {image.label or 'unlabelled'}.")
    return redirect("image-page", pk=image.pk)


def _image_or_404(request: HttpRequest, pk: int):
    lab = request.lab if request.lab else None
    image = selectors.image_get(lab=lab, pk=pk) if lab else None
    if image is None:
        raise Http404("No such image in this lab.")
    return image


@never_cache
@login_required
@require_POST
def image_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete an image with its readings, fixations, saliency maps and regions (researchers and
    admins); the image page said what goes with it. Snapshots keep their frozen copies."""
    image = _image_or_404(request, pk)
    if not _can_write(request):
        raise PermissionDenied("Your role in this lab does not allow deleting images.")
    key = image.key
    try:
        services.image_delete(image=image, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        return _image_response(request, image, delete_error=_error_text(exc), status=400)
    messages.success(request, f"Image “{key}” deleted.")
    return redirect("image-library")


def _error_text(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, PermissionDenied):
        return str(exc) or "You are not allowed to do this."
    return " ".join(exc.messages)


# --- The class vocabulary -----------------------------------------------------------------------


def _classes_page(
    request: HttpRequest,
    *,
    form: ImageClassForm | None = None,
    row_forms: dict[int, ImageClassRenameForm] | None = None,
    row_errors: dict[int, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    lab = request.lab if request.lab else None
    usage = selectors.image_class_usage(lab=lab) if lab else {}
    row_forms, row_errors = row_forms or {}, row_errors or {}
    rows = [
        {
            "cls": cls,
            "count": usage.get(cls.name.lower(), 0),
            "form": row_forms.get(cls.pk)
            or ImageClassRenameForm(initial={"name": cls.name}, prefix=f"c{cls.pk}"),
            "error": row_errors.get(cls.pk),
        }
        for cls in (selectors.image_class_list(lab=lab) if lab else [])
    ]
    can_write = _can_write(request)
    context = {
        "rows": rows,
        "form": (form or ImageClassForm(initial={"lab": lab.pk})) if can_write else None,
        "can_write": can_write,
        "unlabelled": selectors.image_label_counts(lab=lab).get("", 0) if lab else 0,
    }
    return render(request, "imaging/classes.html", context, status=status)


def _require_write(request: HttpRequest, what: str) -> None:
    if not request.lab:
        raise Http404("You are not a member of any lab.")
    if not _can_write(request):
        raise PermissionDenied(f"Your role in this lab does not allow {what}.")


def _lab_switched(request: HttpRequest, form) -> bool:
    """Whether the form was made for another lab than the current one (switched in another
    tab); the form then says so and keeps what was typed."""
    if form.cleaned_data.get("lab") == str(request.lab.pk):
        return False
    form.add_error(
        None, f"The current lab is now {request.lab.name}: check the form and send it again."
    )
    return True


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def image_classes(request: HttpRequest) -> HttpResponse:
    """The lab's label classes with how many images carry each; a POST adds one (researchers
    and admins), who also rename classes and remove those no image carries."""
    if request.method != "POST":
        return _classes_page(request)
    _require_write(request, "changing the classes")
    form = ImageClassForm(request.POST)
    if not form.is_valid() or _lab_switched(request, form):
        return _classes_page(request, form=form, status=400)
    try:
        image_class = services.image_class_create(
            lab=request.lab, actor=request.user, name=form.cleaned_data["name"]
        )
    except ValidationError as exc:
        add_service_error(form, exc)
        return _classes_page(request, form=form, status=400)
    messages.success(request, f"Class “{image_class.name}” added.")
    return redirect("image-classes")


def _class_or_404(request: HttpRequest, pk: int):
    lab = request.lab if request.lab else None
    image_class = selectors.image_class_list(lab=lab).filter(pk=pk).first() if lab else None
    if image_class is None:
        raise Http404("No such class in this lab.")
    return image_class


@never_cache
@login_required
@require_POST
def image_class_rename(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename a class; the images carrying it carry the new name (researchers and admins)."""
    image_class = _class_or_404(request, pk)
    _require_write(request, "changing the classes")
    form = ImageClassRenameForm(request.POST, prefix=f"c{pk}")
    if form.is_valid():
        old = image_class.name
        try:
            services.image_class_rename(
                image_class=image_class, actor=request.user, name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Class “{old}” renamed to “{image_class.name}”.")
            return redirect("image-classes")
    return _classes_page(request, row_forms={pk: form}, status=400)


@never_cache
@login_required
@require_POST
def image_class_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a class no image carries (researchers and admins); one in use is refused with
    the reason."""
    image_class = _class_or_404(request, pk)
    _require_write(request, "changing the classes")
    name = image_class.name
    try:
        services.image_class_delete(image_class=image_class, actor=request.user)
    except ValidationError as exc:
        return _classes_page(request, row_errors={pk: _error_text(exc)}, status=400)
    messages.success(request, f"Class “{name}” removed.")
    return redirect("image-classes")


# --- Labels from a CSV, with a preview ------------------------------------------------------------

# The sheet waits in the session between its preview and its apply, as text: at most this much
# (EGD-CXR's master_sheet.csv is about 0.1 MB; larger sheets go through the API).
LABELS_PREVIEW_MAX_BYTES = 2 * 1024**2
LABELS_SESSION_KEY = "imaging_label_preview"
CHANGES_SHOWN = 1000
UNKNOWN_SHOWN = 200


def _labels_page(
    request: HttpRequest,
    form: LabelImportForm | None = None,
    status: int = 200,
    problems: list[str] | None = None,
) -> HttpResponse:
    lab = request.lab if request.lab else None
    can_write = _can_write(request)
    if can_write and form is None:
        form = LabelImportForm(initial={"lab": lab.pk})
    context = {
        "form": form if can_write else None,
        "can_write": can_write,
        "classes": selectors.image_class_list(lab=lab) if lab else [],
        "max_mb": LABELS_PREVIEW_MAX_BYTES // 1024**2,
        "problems": problems or [],
    }
    return render(request, "imaging/labels.html", context, status=status)


def _preview_page(
    request: HttpRequest, plan: services.LabelImportPlan, token: str, status: int = 200, **extra
) -> HttpResponse:
    context = {
        "plan": plan,
        "changes": plan.changes[:CHANGES_SHOWN],
        "more_changes": max(0, len(plan.changes) - CHANGES_SHOWN),
        "unknown": plan.unknown_keys[:UNKNOWN_SHOWN],
        "more_unknown": max(0, len(plan.unknown_keys) - UNKNOWN_SHOWN),
        "repeated": sorted(plan.repeated.items())[:UNKNOWN_SHOWN],
        "apply_form": LabelApplyForm(initial={"token": token}),
        **extra,
    }
    return render(request, "imaging/labels_preview.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def image_labels(request: HttpRequest) -> HttpResponse:
    """Labels in bulk from a CSV, in two steps: a POST of the sheet shows what it would change
    (per image, the old and the new label; keys that name no image; how many stay as they are)
    and writes nothing; the apply (``image_labels_apply``) then writes it all or nothing."""
    if request.method != "POST":
        return _labels_page(request)
    _require_write(request, "importing labels")
    form = LabelImportForm(request.POST, request.FILES)
    if not form.is_valid() or _lab_switched(request, form):
        return _labels_page(request, form=form, status=400)
    upload = form.cleaned_data["file"]
    if upload.size > LABELS_PREVIEW_MAX_BYTES:
        form.add_error(
            "file",
            f"{upload.name} is larger than {LABELS_PREVIEW_MAX_BYTES // 1024**2} MB: split it, "
            "or send it to the API (POST /api/v1/images/labels/).",
        )
        return _labels_page(request, form=form, status=400)
    data = upload.read()
    try:
        plan = services.image_labels_preview_csv(
            lab=request.lab, actor=request.user, file=io.BytesIO(data), filename=upload.name,
            finding_columns=form.finding_columns(),
        )  # fmt: skip
    except ValidationError as exc:
        add_service_error(form, exc)
        return _labels_page(request, form=form, status=400)
    token = secrets.token_urlsafe(16)
    request.session[LABELS_SESSION_KEY] = {
        "token": token,
        "lab": request.lab.pk,
        "filename": upload.name,
        # The preview parsed it, so it is UTF-8 (a BOM is kept: the parse skips it).
        "text": data.decode("utf-8"),
        "findings": form.finding_columns(),
        "digest": plan.digest,
    }
    return _preview_page(request, plan, token)


@never_cache
@login_required
@require_POST
def image_labels_apply(request: HttpRequest) -> HttpResponse:
    """Apply the previewed sheet: every change or none. If the lab's images changed since the
    preview, nothing is written and the new preview is shown; Cancel forgets the sheet."""
    _require_write(request, "importing labels")
    form = LabelApplyForm(request.POST)
    stored = request.session.get(LABELS_SESSION_KEY) or {}
    if request.POST.get("action") == "cancel":
        request.session.pop(LABELS_SESSION_KEY, None)
        messages.info(request, "Label import cancelled: nothing changed.")
        return redirect("image-labels-import")
    if (
        not form.is_valid()
        or not stored
        or not secrets.compare_digest(str(stored.get("token", "")), form.cleaned_data["token"])
        or stored.get("lab") != request.lab.pk
    ):
        problem = (
            "This preview is no longer kept (another preview replaced it, the lab was switched, "
            "or it was applied already): nothing was changed; upload the sheet again."
        )
        return _labels_page(request, status=400, problems=[problem])
    try:
        report = services.image_labels_import_csv(
            lab=request.lab, actor=request.user, file=io.BytesIO(stored["text"].encode()),
            filename=stored["filename"], finding_columns=stored["findings"],
            expected_digest=stored["digest"],
        )  # fmt: skip
    except services.LabelPlanChanged as exc:
        stored["digest"] = exc.plan.digest
        request.session[LABELS_SESSION_KEY] = stored
        return _preview_page(request, exc.plan, stored["token"], status=409, changed_since=True)
    except ValidationError as exc:
        # The vocabulary changed since the preview (a class removed): the sheet is checked anew.
        request.session.pop(LABELS_SESSION_KEY, None)
        return _labels_page(request, status=400, problems=exc.messages)
    request.session.pop(LABELS_SESSION_KEY, None)
    messages.success(
        request,
        f"Labels imported from {stored['filename']}: {report.updated} image(s) changed, "
        f"{report.unchanged} unchanged, {len(report.unknown_keys)} key(s) naming no image.",
    )
    return redirect("image-library")
