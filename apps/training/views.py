"""HTML pages of training and the registry: the lab's training queue with a form to start a
job, one job (epochs, curves, log, attempts, cancel), the lab's models, and a model card.

The queue and job pages poll ``/api/v1/training-jobs/{id}/status/`` with a small JS module
(``frontend/static/training/job.js``); curves are drawn with the locally served Plotly
(``frontend/static/training/curves.js``).
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

from apps.datasets.models import DatasetSnapshot
from apps.labs.roles import Action, role_allows
from apps.training import selectors, services
from apps.training.models import ModelAlias, ModelVersion, TrainingJob


class JobForm(forms.Form):
    snapshot = forms.ModelChoiceField(queryset=DatasetSnapshot.objects.none())
    preset = forms.ChoiceField(
        choices=[
            ("quick", "quick: a tiny model, a few minutes on a CPU"),
            ("paper", "paper: the original schedule, base 64, batch 6"),
        ],  # fmt: skip
        initial="quick",
    )
    name = forms.CharField(max_length=200, required=False)
    epochs = forms.IntegerField(required=False, min_value=1, max_value=10000,
                                help_text="Leave empty for the preset's.")  # fmt: skip
    base_channels = forms.IntegerField(required=False, min_value=1, max_value=256)
    batch_size = forms.IntegerField(required=False, min_value=1, max_value=1024)
    seed = forms.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1,
        help_text="Another seed trains another model on the same data.",
    )  # fmt: skip
    alias = forms.RegexField(
        services.ALIAS, max_length=60, required=False, label="Alias on success",
        error_messages={"invalid": services.ALIAS_RULE},
        help_text="Set this alias (such as production) on the model when the job succeeds.",
    )  # fmt: skip

    def __init__(self, *args, lab, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = DatasetSnapshot.objects.filter(
            lab=lab, status=DatasetSnapshot.Status.READY
        )


def _lab(request: HttpRequest):
    return request.lab if getattr(request, "lab", None) else None


def _job_or_404(request: HttpRequest, pk: int) -> TrainingJob:
    lab = _lab(request)
    job = selectors.job_list(lab=lab).filter(pk=pk).first() if lab else None
    if job is None:
        raise Http404("No such training job in this lab.")
    return job


def _version_or_404(request: HttpRequest, pk: int) -> ModelVersion:
    lab = _lab(request)
    version = selectors.version_list(lab=lab).filter(pk=pk).first() if lab else None
    if version is None:
        raise Http404("No such model in this lab.")
    return version


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def job_list(request: HttpRequest) -> HttpResponse:
    """The lab's training queue, and a form to start a job (researchers and admins)."""
    lab = _lab(request)
    can_create = bool(lab) and role_allows(request.lab_role, Action.WRITE)
    form = JobForm(request.POST or None, lab=lab) if can_create else None
    if request.method == "POST":
        if not can_create:
            raise PermissionDenied("Your role in this lab does not allow starting training.")
        if form.is_valid():
            data = dict(form.cleaned_data)
            overrides = {k: data[k] for k in ("epochs", "base_channels", "batch_size", "seed")
                         if data.get(k) is not None}  # fmt: skip
            try:
                job = services.job_create(
                    snapshot=data["snapshot"], actor=request.user, preset=data["preset"],
                    name=data.get("name") or "", overrides=overrides,
                    alias=data.get("alias") or "",
                )  # fmt: skip
            except ValidationError as exc:
                for field, errors in getattr(exc, "error_dict", {None: exc.error_list}).items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                messages.success(request, f"Training job {job.name!r} is queued.")
                return redirect("training-job", pk=job.pk)
    jobs = list(selectors.with_queue_fields(selectors.job_list(lab=lab))[:200]) if lab else []
    return render(request, "training/jobs.html", {"jobs": jobs, "form": form})


@never_cache
@login_required
@require_GET
def job_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One job: state and progress, epochs, curves, attempts, log tail, cancel."""
    job = _job_or_404(request, pk)
    context = {
        "job": job,
        "position": services.queue_position(job),
        "config": services.config_summary(job.config),
        "epochs": selectors.job_epochs(job=job),
        "curves": services.job_curves(job=job),
        "version": ModelVersion.objects.filter(job=job).first(),
        "can_cancel": role_allows(request.lab_role, Action.WRITE) and not job.finished,
    }
    return render(request, "training/job.html", context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    if not role_allows(request.lab_role, Action.WRITE):
        raise PermissionDenied("Your role in this lab does not allow cancelling training.")
    services.job_cancel(job=job)
    messages.success(request, f"Cancel requested for {job.name!r}.")
    return redirect("training-job", pk=pk)


@never_cache
@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    lab = _lab(request)
    versions = selectors.version_list(lab=lab).prefetch_related("aliases") if lab else []
    return render(request, "training/models.html", {"versions": versions})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def model_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A model card: data (snapshot), config, curves, metrics, aliases, checkpoint download;
    researchers and admins set an alias here."""
    version = _version_or_404(request, pk)
    can_alias = role_allows(request.lab_role, Action.WRITE)
    if request.method == "POST":
        if not can_alias:
            raise PermissionDenied("Your role in this lab does not allow setting aliases.")
        try:
            alias = services.alias_set(
                version=version, name=request.POST.get("name", "").strip(), actor=request.user
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Alias {alias.name!r} now points at this model.")
        return redirect("training-model", pk=pk)
    context = {
        "version": version,
        "config": services.config_summary(version.config),
        "curves": version.curves,
        "aliases": ModelAlias.objects.filter(version=version),
        "can_alias": can_alias,
    }
    return render(request, "training/model.html", context)
