"""HTML pages of dataset snapshots: the list with a form to create one, and one snapshot (its
choices, counts per class and split, build progress, export link).

The snapshot page polls ``/api/v1/snapshots/{id}/status/`` while it builds (a small JS module,
``frontend/static/datasets/snapshot.js``) and reloads when the build ends.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.errors import QuotaExceeded
from apps.datasets import selectors, services
from apps.gaze.models import Reader
from apps.imaging.models import ImageClass
from apps.labs.roles import Action, role_allows

SPLITS = (("train", "Train"), ("val", "Validation"), ("test", "Test"))


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=200)
    labels = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, required=False,
        help_text="Classes to include (none ticked: all).",
    )  # fmt: skip
    readers = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, required=False,
        help_text="Readers whose readings count (none ticked: all).",
    )  # fmt: skip
    min_grade = forms.ChoiceField(
        choices=[("good", "Good"), ("usable", "Usable or better"), ("poor", "Any grade")],
        initial="usable", label="Reading quality",
    )  # fmt: skip
    use_for_training_only = forms.BooleanField(
        required=False, initial=True, label="Only readings flagged for training"
    )
    uploaded_after = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Uploaded from"
    )
    uploaded_before = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Uploaded until"
    )
    height = forms.IntegerField(initial=640, min_value=16, max_value=services.MAX_SIDE)
    width = forms.IntegerField(initial=512, min_value=16, max_value=services.MAX_SIDE)
    sigma_deg = forms.FloatField(
        initial=1.0, min_value=0.1, max_value=10.0, label="Sigma (degrees of visual angle)"
    )
    target_reader = forms.ChoiceField(
        required=False, label="Targets", help_text="Pooled over the readers, or one reader's."
    )
    seed_mode = forms.BooleanField(
        required=False, label="Seed mode (the original MT-UNet preprocessing)"
    )
    split = forms.ChoiceField(
        choices=[("original", "2/1/7 by image (the paper's)"), ("patient", "2/1/7 by patient")],
        initial="original",
    )
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**31 - 1)

    def __init__(self, *args, lab, **kwargs):
        super().__init__(*args, **kwargs)
        classes = list(ImageClass.objects.filter(lab=lab).values_list("name", flat=True))
        codes = list(Reader.objects.filter(lab=lab).order_by("code").values_list("code", flat=True))
        self.fields["labels"].choices = [(c, c) for c in classes]
        self.fields["readers"].choices = [(c, c) for c in codes]
        self.fields["target_reader"].choices = [("", "Pooled over readers")] + [
            (c, f"Reader {c} only") for c in codes
        ]

    def choices(self) -> dict:
        data = dict(self.cleaned_data)
        data["resolution"] = [data.pop("height"), data.pop("width")]
        data["target_reader"] = data.get("target_reader") or None
        return data


def _current_lab(request: HttpRequest):
    return request.lab if request.lab else None


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def snapshot_list(request: HttpRequest) -> HttpResponse:
    """The current lab's snapshots, and a form to create one (researchers and admins)."""
    lab = _current_lab(request)
    can_create = bool(lab) and role_allows(request.lab_role, Action.WRITE)
    form = SnapshotForm(request.POST or None, lab=lab) if can_create else None
    if request.method == "POST":
        if not can_create:
            raise PermissionDenied("Your role in this lab does not allow creating snapshots.")
        if form.is_valid():
            choices = form.choices()
            name = choices.pop("name")
            try:
                snapshot = services.snapshot_create(
                    lab=lab, actor=request.user, name=name, **choices
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            except QuotaExceeded as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Snapshot {snapshot.name!r} is being built.")
                return redirect("datasets-snapshot", pk=snapshot.pk)
    context = {
        "snapshots": selectors.snapshot_list(lab=lab) if lab else [],
        "form": form,
        "can_create": can_create,
    }
    return render(request, "datasets/snapshots.html", context)


def _form_errors(form: forms.Form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        target = field if field in form.fields else None
        if field == "resolution":
            target = "height"
        for error in errors:
            form.add_error(target, error)


@never_cache
@login_required
@require_GET
def snapshot_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One snapshot: choices, counts per class and split, build progress, export link."""
    lab = _current_lab(request)
    snapshot = selectors.snapshot_get(user_labs=[lab.pk], pk=pk) if lab else None
    if snapshot is None:
        raise Http404("No such snapshot in this lab.")
    counts = snapshot.counts or {}
    rows = []
    for c in snapshot.classes:
        cells = [counts.get(s, {}).get(c, 0) for s, _ in SPLITS]
        rows.append({"label": c, "cells": cells, "total": sum(cells)})
    totals = [sum(counts.get(s, {}).values()) for s, _ in SPLITS]
    context = {
        "snapshot": snapshot,
        "choices": snapshot.choices,
        "split_names": [name for _, name in SPLITS],
        "rows": rows,
        "totals": totals,
        "total": sum(totals),
        "left_out": (snapshot.selection or {}).get("left_out", {}),
        "identical": selectors.snapshot_identical(snapshot=snapshot),
        "can_delete": role_allows(request.lab_role, Action.WRITE),
    }
    return render(request, "datasets/snapshot.html", context)


@login_required
@require_POST
def snapshot_delete(request: HttpRequest, pk: int) -> HttpResponse:
    lab = _current_lab(request)
    snapshot = selectors.snapshot_get(user_labs=[lab.pk], pk=pk) if lab else None
    if snapshot is None:
        raise Http404("No such snapshot in this lab.")
    if not role_allows(request.lab_role, Action.WRITE):
        raise PermissionDenied("Your role in this lab does not allow deleting snapshots.")
    try:
        services.snapshot_delete(snapshot=snapshot)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("datasets-snapshot", pk=pk)
    messages.success(request, f"Snapshot {snapshot.name!r} deleted.")
    return redirect("datasets-snapshots")
