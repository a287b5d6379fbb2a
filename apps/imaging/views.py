"""HTML pages of images: the library, one image, and the upload page.

Uploads from the upload page go to the REST API (``POST /api/v1/images/``) with the session's
CSRF token, one request per file, so each file has its own progress bar and result.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.imaging import selectors
from apps.labs.roles import Action, role_allows

PAGE_SIZE = 24


def _can_write(request: HttpRequest) -> bool:
    return bool(request.lab) and role_allows(request.lab_role, Action.WRITE)


@never_cache
@login_required
@require_GET
def image_library(request: HttpRequest) -> HttpResponse:
    """The current lab's images: filter by label, search by key, thumbnails, paging."""
    lab = request.lab if request.lab else None
    label = request.GET.get("label", "")
    search = request.GET.get("q", "").strip()[:200]
    images = selectors.image_list(lab=lab, label=label, search=search) if lab else []
    page = Paginator(images, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "label": label,
        "q": search,
        "classes": selectors.image_class_list(lab=lab) if lab else [],
        "counts": selectors.image_label_counts(lab=lab) if lab else {},
        "query": query.urlencode(),
        "can_write": _can_write(request),
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
@require_GET
def image_upload(request: HttpRequest) -> HttpResponse:
    """Drag and drop files (or a zip): each uploads with its own progress bar and result."""
    context = {
        "can_write": _can_write(request),
        "classes": selectors.image_class_list(lab=request.lab) if request.lab else [],
        "max_bytes": settings.UPLOAD_MAX_BYTES,
    }
    return render(request, "imaging/upload.html", context, status=200)
