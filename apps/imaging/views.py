"""HTML pages of images: the library (with the progress of upload batches), one image, and the
upload page.

The upload page sends the chosen files in one request (to ``POST /api/v1/images/`` with the
session's CSRF token, with an upload progress bar; without JavaScript, the form posts here) and
goes to the library, which shows the batch's progress while a worker ingests it, then the images.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from apps.core.errors import QuotaExceeded
from apps.core.uploads import Upload
from apps.imaging import selectors, services
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
    """One image: the preview with a windowing control, its metadata and labels."""
    lab = request.lab if request.lab else None
    image = selectors.image_get(lab=lab, pk=pk) if lab else None
    if image is None:
        raise Http404("No such image in this lab.")
    audit = selectors.deidentification_audit_list(lab=lab, image=image).first()
    context = {
        "image": image,
        "audit": audit,
        "classes": selectors.image_class_list(lab=lab),
        "can_write": _can_write(request),
    }
    return render(request, "imaging/image.html", context)


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
