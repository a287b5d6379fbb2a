"""HTML pages of evaluations: the lab's evaluations with a form to start one, an evaluation's
dashboard (metrics with 95 % intervals, distributions, ROC curves, confusion matrix), the gallery
of images (the model's map, the readers' pooled map and their difference, drawn as PNGs by
``services.render``), the readers' agreement, and the comparison of evaluations.

Figures are drawn with the locally served Plotly from JSON the pages embed (``json_script``;
no inline script runs under the CSP): ``frontend/static/evaluation/``. Every table has a CSV
(``evaluation-csv``, the comparison's ``?format=csv``, the API's per-image CSV).
"""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import parse_etags
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from apps.core import storage
from apps.evaluation import selectors, services
from apps.evaluation.forms import (
    GALLERY_DEFAULT_ORDERING,
    LOWER_IS_BETTER,
    METRIC_LABELS,
    EvaluationForm,
    GalleryForm,
)
from apps.evaluation.models import METRICS, Evaluation, EvaluationImage
from apps.evaluation.services import render as panels
from apps.labs.forms import add_service_error
from apps.labs.roles import Action, role_allows

GALLERY_PER_PAGE = 12
LISTED = 200
STATS = ("n", "mean", "median", "std", "ci95_low", "ci95_high")
PAIR_FIELDS = ("n", "mean_a", "mean_b", "mean_diff", "ci95_low", "ci95_high", "statistic",
               "p_value", "p_holm", "rank_biserial", "better")  # fmt: skip
MAX_ID = 2**63 - 1


def _lab(request: HttpRequest):
    return request.lab if getattr(request, "lab", None) else None


def _evaluation_or_404(request: HttpRequest, pk: int) -> Evaluation:
    lab = _lab(request)
    evaluation = selectors.evaluation_list(lab=lab).filter(pk=pk).first() if lab else None
    if evaluation is None:
        raise Http404("No such evaluation in this lab.")
    return evaluation


def _metrics(evaluation: Evaluation) -> list[str]:
    return list(evaluation.summary.get("metrics") or METRICS)


def _metric_meta(metrics: list[str]) -> list[dict]:
    return [{"key": m, "label": METRIC_LABELS[m], "lower_is_better": m in LOWER_IS_BETTER}
            for m in metrics]  # fmt: skip


def metric_rows(summary: dict) -> list[dict]:
    """The metric table's rows: the model against the pooled map, the centre bias, the
    inter-observer ceiling (or the note saying why it is missing), each reader against the
    others, and the model against each reader. Each: key, label, kind, stats {metric: ...},
    note."""
    notes = summary.get("notes") or {}
    rows = [
        {"key": "model", "label": "Model vs pooled readers", "kind": "model",
         "stats": summary.get("model") or {}},
        {"key": "centre_bias", "label": "Centre bias", "kind": "baseline",
         "stats": summary.get("centre_bias") or {}},
        {"key": "ceiling", "label": "Inter-observer ceiling", "kind": "ceiling",
         "stats": summary.get("ceiling") or {},
         "note": "" if summary.get("ceiling") else (
             notes.get("ceiling") or notes.get("readers") or "Not computed.")},
    ]  # fmt: skip
    for code, stats in (summary.get("readers") or {}).items():
        rows.append({"key": f"reader:{code}", "label": f"{code} vs the other readers",
                     "kind": "reader", "stats": stats})  # fmt: skip
    for code, stats in (summary.get("model_readers") or {}).items():
        rows.append({"key": f"model:{code}", "label": f"Model vs {code}", "kind": "model-reader",
                     "stats": stats})  # fmt: skip
    return rows


def _with_cells(rows: list[dict], metrics: list[str]) -> list[dict]:
    for row in rows:
        row["cells"] = [row["stats"].get(m) for m in metrics]
    return rows


def classification_tables(evaluation: Evaluation) -> dict:
    """The classification numbers: overall (accuracy, AUC and F1 macro and micro) and per
    class (images, predicted, recall, precision, AUC, F1) from the stored metrics."""
    metrics = evaluation.classification or {}
    if not metrics:
        return {"overall": [], "per_class": []}
    overall = [(name, metrics.get(key)) for key, name in (
        ("accuracy", "Accuracy"), ("auc_macro", "AUC (macro)"), ("auc_micro", "AUC (micro)"),
        ("f1_macro", "F1 (macro)"), ("f1_micro", "F1 (micro)"))]  # fmt: skip
    matrix = metrics.get("confusion_matrix") or []
    per_class = []
    for i, name in enumerate(evaluation.classes):
        true = sum(matrix[i]) if i < len(matrix) else 0
        predicted = sum(r[i] for r in matrix if i < len(r))
        hits = matrix[i][i] if i < len(matrix) and i < len(matrix[i]) else 0
        per_class.append({
            "name": name, "n": true, "predicted": predicted,
            "recall": hits / true if true else None,
            "precision": hits / predicted if predicted else None,
            "auc": (metrics.get("auc_per_class") or {}).get(name),
            "f1": (metrics.get("f1_per_class") or {}).get(name),
        })  # fmt: skip
    return {"overall": overall, "per_class": per_class}


def _csv(filename: str, header: list[str], rows) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _stat_lines(rows: list[dict], metrics: list[str]):
    for row in rows:
        for m in metrics:
            stats = row["stats"].get(m)
            if stats:
                yield [row["key"], row["label"], m, *(stats.get(s) for s in STATS)]


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def evaluation_list(request: HttpRequest) -> HttpResponse:
    """The lab's evaluations (state and progress, polled while they run; boxes to choose some
    for a comparison), and a form to start one (researchers and admins)."""
    lab = _lab(request)
    can_create = bool(lab) and role_allows(request.lab_role, Action.WRITE)
    version = request.GET.get("version", "")
    version_id = int(version) if version.isdigit() and 0 < int(version) <= MAX_ID else None
    form = None
    if can_create:
        initial = {"version": version_id} if version_id else {}
        form = EvaluationForm(request.POST or None, lab=lab, initial=initial)
    status = 200
    if request.method == "POST":
        if not can_create:
            raise PermissionDenied("Your role in this lab does not allow starting evaluations.")
        if form.is_valid():
            data = form.cleaned_data
            try:
                evaluation = services.evaluation_create(
                    version=data["version"], snapshot=data["snapshot"], split=data["split"],
                    actor=request.user, name=data["name"],
                )  # fmt: skip
            except ValidationError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Evaluation {evaluation.name!r} is queued.")
                return redirect("evaluation-page", pk=evaluation.pk)
        status = 400
    evaluations = selectors.evaluation_list(lab=lab) if lab else Evaluation.objects.none()
    if version_id:
        evaluations = evaluations.filter(version_id=version_id)
    context = {
        "evaluations": list(evaluations[:LISTED]),
        "form": form,
        "version_id": version_id,
    }
    return render(request, "evaluation/list.html", context, status=status)


@never_cache
@login_required
@require_GET
def evaluation_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One evaluation: state, the metric table with 95 % intervals, the metrics'
    distributions, ROC curves, the confusion matrix and the classification numbers."""
    evaluation = _evaluation_or_404(request, pk)
    metrics = _metrics(evaluation)
    context = {"evaluation": evaluation, "metrics": _metric_meta(metrics)}
    if evaluation.status == Evaluation.Status.SUCCEEDED:
        classification = evaluation.classification or {}
        context.update({
            "rows": _with_cells(metric_rows(evaluation.summary), metrics),
            "tables": classification_tables(evaluation),
            "figures": {
                "metrics": _metric_meta(metrics),
                "distributions": selectors.evaluation_distributions(evaluation=evaluation),
                "classes": evaluation.classes,
                "roc": classification.get("roc_curves") or {},
                "auc": classification.get("auc_per_class") or {},
                "confusion": classification.get("confusion_matrix") or [],
                "name": f"evaluation-{evaluation.pk}",
            },
            "compare_with": selectors.evaluation_list(lab=evaluation.lab_id)
            .filter(snapshot_id=evaluation.snapshot_id, split=evaluation.split,
                    status=Evaluation.Status.SUCCEEDED)
            .exclude(pk=evaluation.pk)[:5],
        })  # fmt: skip
    return render(request, "evaluation/evaluation.html", context)


@never_cache
@login_required
@require_GET
def evaluation_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """One of the evaluation pages' tables as CSV: ``?table=metrics`` (default), ``readers``,
    ``classification``, ``confusion``, ``roc`` or ``regions`` (the regions page's means; 409
    while the evaluation has not succeeded)."""
    evaluation = _evaluation_or_404(request, pk)
    table = request.GET.get("table", "metrics")
    metrics = _metrics(evaluation)
    name = f"evaluation-{evaluation.pk}-{table}.csv"
    header = ["row", "label", "metric", *STATS]
    if table == "metrics":
        return _csv(name, header, _stat_lines(metric_rows(evaluation.summary), metrics))
    if table == "readers":
        rows = [
            r for r in metric_rows(evaluation.summary) if r["kind"] in ("reader", "model-reader")
        ]
        return _csv(name, header, _stat_lines(rows, metrics))
    if table == "classification":
        tables = classification_tables(evaluation)
        lines = [
            ["overall", label, "", "", "", "", "", value] for label, value in tables["overall"]
        ]
        lines += [[c["name"], "", c["n"], c["predicted"], c["recall"], c["precision"], c["auc"],
                   c["f1"]] for c in tables["per_class"]]  # fmt: skip
        return _csv(name, ["class", "measure", "images", "predicted", "recall", "precision",
                           "auc", "value_or_f1"], lines)  # fmt: skip
    if table == "confusion":
        matrix = (evaluation.classification or {}).get("confusion_matrix") or []
        lines = [[evaluation.classes[i] if i < len(evaluation.classes) else i, *r]
                 for i, r in enumerate(matrix)]  # fmt: skip
        return _csv(name, ["true \\ predicted", *evaluation.classes], lines)
    if table == "roc":
        curves = (evaluation.classification or {}).get("roc_curves") or {}
        lines = [
            [c, f, t, th]
            for c, curve in curves.items()
            for f, t, th in zip(curve["fpr"], curve["tpr"], curve["thresholds"], strict=False)
        ]
        return _csv(name, ["class", "fpr", "tpr", "threshold"], lines)
    if table == "regions":
        from apps.evaluation.views_regions import region_means_table  # it imports this module

        try:
            result = services.evaluation_regions(evaluation=evaluation)
        except services.EvaluationNotReady as exc:
            return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
        return _csv(name, *region_means_table(result))
    return HttpResponse("table is one of metrics, readers, classification, confusion, roc, "
                        "regions.", status=400,
                        content_type="text/plain; charset=utf-8")  # fmt: skip


@never_cache
@login_required
@require_GET
def evaluation_gallery(request: HttpRequest, pk: int) -> HttpResponse:
    """The evaluation's images, a page at a time: the model's map, the readers' pooled map and
    their difference over the X-ray with the fixations; sorted by a metric (worst first by
    default), filtered by true class and by right or wrong prediction."""
    evaluation = _evaluation_or_404(request, pk)
    query = None
    if request.GET:  # a query without a sort (a page link, a filter) sorts, and shows, the default
        query = request.GET.copy()
        query["ordering"] = query.get("ordering") or GALLERY_DEFAULT_ORDERING
    form = GalleryForm(query, classes=list(evaluation.classes))
    ordering, label, correct, status = GALLERY_DEFAULT_ORDERING, None, None, 200
    if form.is_bound:
        if form.is_valid():
            ordering = form.cleaned_data["ordering"] or GALLERY_DEFAULT_ORDERING
            label, correct = form.cleaned_data["label"], form.cleaned_data["correct"]
        else:
            status = 400
    page = None
    if status == 200:
        rows = selectors.evaluation_images(evaluation=evaluation, ordering=ordering, label=label,
                                           correct=correct).select_related("item")  # fmt: skip
        page = Paginator(rows, GALLERY_PER_PAGE).get_page(request.GET.get("page"))
        classes = list(evaluation.classes)
        for row in page.object_list:
            row.label_name = classes[row.label] if row.label < len(classes) else row.label
            row.pred_name = (classes[row.pred] if row.pred is not None and row.pred < len(classes)
                             else row.pred)  # fmt: skip
            base = reverse("evaluation-panel", kwargs={"pk": row.pk})
            row.panels = [(kind, f"{base}?kind={kind}") for kind in panels.KINDS]
            row.cells = [(METRIC_LABELS[m], getattr(row, m)) for m in METRICS]
    sort_metric = ordering.lstrip("-")
    context = {
        "evaluation": evaluation,
        "form": form,
        "page": page,
        "sort_metric": METRIC_LABELS.get(sort_metric, sort_metric),
        "sort_key": sort_metric,
    }
    return render(request, "evaluation/gallery.html", context, status=status)


@login_required
@require_GET
def evaluation_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """One gallery panel as PNG (``?kind=model|pooled|difference``), cached by its ETag (the
    content hashes of the arrays it is drawn from)."""
    lab = _lab(request)
    row = (EvaluationImage.objects.filter(pk=pk, evaluation__lab=lab).select_related("item")
           .first() if lab else None)  # fmt: skip
    if row is None:
        raise Http404("No such evaluated image in this lab.")
    kind = request.GET.get("kind", "model")
    if kind not in panels.KINDS:
        return HttpResponse(f"kind is one of {', '.join(panels.KINDS)}.", status=400,
                            content_type="text/plain; charset=utf-8")  # fmt: skip
    etag = panels.panel_etag(row, kind)
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    wanted = parse_etags(request.headers.get("If-None-Match", ""))
    if etag in wanted or "*" in wanted:
        return HttpResponse(status=304, headers=headers)
    try:
        panel = panels.evaluation_image_panel(row=row, kind=kind)
    except (storage.StorageError, ValueError) as exc:
        raise Http404(f"This panel cannot be drawn: {exc}") from None
    return HttpResponse(panel.png, content_type="image/png", headers=headers)


@never_cache
@login_required
@require_GET
def evaluation_readers(request: HttpRequest, pk: int) -> HttpResponse:
    """Each reader's agreement with the model (the model against that reader's map) and with
    the colleagues (that reader against the pool of the others): a table and a bar chart."""
    evaluation = _evaluation_or_404(request, pk)
    metrics = _metrics(evaluation)
    summary = evaluation.summary or {}
    codes = sorted({*(summary.get("readers") or {}), *(summary.get("model_readers") or {})})
    readers = [{
        "code": code, "images": (summary.get("reader_images") or {}).get(code),
        "model": (summary.get("model_readers") or {}).get(code) or {},
        "others": (summary.get("readers") or {}).get(code) or {},
    } for code in codes]  # fmt: skip
    rows = []
    for reader in readers:
        rows.append(
            {
                "label": f"Model vs {reader['code']}",
                "code": reader["code"],
                "images": reader["images"],
                "stats": reader["model"],
                "kind": "model",
            }
        )
        rows.append(
            {
                "label": f"{reader['code']} vs the other readers",
                "code": reader["code"],
                "images": reader["images"],
                "stats": reader["others"],
                "kind": "others",
            }
        )
    references = [r for r in metric_rows(summary) if r["key"] in ("model", "ceiling")]
    context = {
        "evaluation": evaluation,
        "metrics": _metric_meta(metrics),
        "rows": _with_cells(rows, metrics),
        "references": _with_cells(references, metrics),
        "notes": summary.get("notes") or {},
        "figures": {
            "metrics": _metric_meta(metrics),
            "readers": readers,
            "model": summary.get("model") or {},
            "ceiling": summary.get("ceiling") or {},
            "name": f"evaluation-{evaluation.pk}-readers",
        },  # fmt: skip
    }
    return render(request, "evaluation/readers.html", context)


def _compare_page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    lab = _lab(request)
    choices = (selectors.evaluation_list(lab=lab).filter(status=Evaluation.Status.SUCCEEDED)
               if lab else Evaluation.objects.none())  # fmt: skip
    context = {"choices": list(choices[:LISTED]), "chosen": [], **context}
    return render(request, "evaluation/compare.html", context, status=status)


def _comparison_tables(evaluations: list[Evaluation], comparison: dict) -> dict:
    metrics = comparison["metrics"]
    names = {e.pk: f"{e.name} (#{e.pk})" for e in evaluations}
    side = [{"metric": METRIC_LABELS[m], "key": m,
             "cells": [(e.summary.get("model") or {}).get(m) for e in evaluations]}
            for m in metrics]  # fmt: skip
    pairs = []
    for pair in comparison["pairs"]:
        lines = []
        for m in metrics:
            result = dict(pair["metrics"].get(m) or {})
            better = result.get("better")
            result["better_name"] = names.get(pair[better]) if better in ("a", "b") else None
            lines.append({"metric": METRIC_LABELS[m], "key": m, **result})
        pairs.append(
            {
                "a": pair["a"],
                "b": pair["b"],
                "a_name": names[pair["a"]],
                "b_name": names[pair["b"]],
                "n_pairs": pair["n_pairs"],
                "lines": lines,
            }
        )
    return {"side": side, "pairs": pairs}


@never_cache
@login_required
@require_GET
def evaluation_compare(request: HttpRequest) -> HttpResponse:
    """Evaluations of one snapshot split side by side with paired tests of each against the
    first (``?ids=1&ids=2``); without ids, the evaluations to choose from. A comparison the
    evaluations do not allow is a 400 page with the reason; ``?format=csv`` gives the tests
    (``&table=summary``: the side-by-side summary)."""
    raw = request.GET.getlist("ids")
    if not raw:
        return _compare_page(request, {})
    if not all(v.isdigit() and 0 < int(v) <= MAX_ID for v in raw):
        return _compare_page(request, {"error": "ids are evaluation numbers: ?ids=3&ids=5."},
                             status=400)  # fmt: skip
    ids = [int(v) for v in raw]
    if len(ids) == 1:  # from an evaluation's page: choose the others
        return _compare_page(request, {"chosen": ids})
    lab = _lab(request)
    found = {e.pk: e for e in selectors.evaluation_list(lab=lab).filter(pk__in=ids)} if lab else {}
    missing = [i for i in ids if i not in found]
    if missing:
        raise Http404(f"No evaluation {missing[0]} in this lab.")
    evaluations = [found[i] for i in ids]
    try:
        comparison = services.evaluations_compare(evaluations=evaluations)
    except ValidationError as exc:
        return _compare_page(request, {"error": " ".join(exc.messages), "chosen": ids},
                             status=400)  # fmt: skip
    tables = _comparison_tables(evaluations, comparison)
    if request.GET.get("format") == "csv":
        if request.GET.get("table") == "summary":
            return _csv("comparison-summary.csv", ["evaluation", "name", "metric", *STATS], (
                [e.pk, e.name, line["key"], *((cell or {}).get(s) for s in STATS)]
                for line in tables["side"] for e, cell in zip(evaluations, line["cells"],
                                                              strict=True)))  # fmt: skip
        return _csv("comparison.csv", ["a", "b", "metric", *PAIR_FIELDS], (
            [pair["a"], pair["b"], line["key"], *(line.get(f) for f in PAIR_FIELDS[:-1]),
             line["better_name"] or ""]
            for pair in tables["pairs"] for line in pair["lines"]))  # fmt: skip
    query = "&".join(f"ids={i}" for i in ids)
    context = {
        "evaluations": evaluations,
        "comparison": comparison,
        "chosen": ids,
        "query": query,
        **tables,
        "figures": {
            "metrics": _metric_meta(comparison["metrics"]),
            "pairs": [
                {
                    "label": f"{p['a_name']} vs {p['b_name']}",
                    "lines": [
                        {k: line.get(k) for k in ("key", "rank_biserial", "p_holm", "better")}
                        for line in p["lines"]
                    ],
                }
                for p in tables["pairs"]
            ],
            "name": "comparison-" + "-".join(str(i) for i in ids),
        },  # fmt: skip
    }
    return _compare_page(request, context)
