"""The regions page of an evaluation: per region (source and name) of its images, the mean share
of the model's saliency mass, of each reader's fixation time and of the pooled readers' time in
the region, beside the region's share of the image's area (the chance level), over the images
that have the region; a grouped bar chart of them (``frontend/static/evaluation/regions.js``)
and the per-image rows a page at a time.

The numbers are ``services.evaluation_regions`` (computed on request, in a fixed number of
queries whatever the number of images). The means' table is a CSV through ``evaluation-csv``
(``?table=regions``, :func:`region_means_table`); the per-image rows are the API's
``/api/v1/evaluations/{id}/regions/?format=csv``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.evaluation import services
from apps.evaluation.models import Evaluation
from apps.evaluation.services.regions import evaluation_regions_rows
from apps.evaluation.views import _evaluation_or_404

ROWS_PER_PAGE = 50


def region_means_table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The per-region means of ``services.evaluation_regions`` as a table (header, rows): one
    ``dwell_<code>`` column per reader, the numbers of images each mean is over."""
    readers = result["readers"]
    header = ["source", "name", "n_images", "model_share", "n_model", "dwell_share", "n_dwell",
              *(f"dwell_{code}" for code in readers), "area_share"]  # fmt: skip
    rows = [
        [r["source"], r["name"], r["n_images"], r["model_share"], r["n_model"],
         r["dwell_share"], r["n_dwell"], *(r["reader_dwell_shares"].get(c) for c in readers),
         r["area_share"]]
        for r in result["regions"]
    ]  # fmt: skip
    return header, rows


def _means(result: dict[str, Any]) -> list[dict[str, Any]]:
    readers = result["readers"]
    return [{
        **region,
        "label": f"{region['name']} ({region['source']})",
        "reader_cells": [(region["reader_dwell_shares"].get(c), region["reader_n"].get(c, 0))
                         for c in readers],
    } for region in result["regions"]]  # fmt: skip


def _image_rows(result: dict[str, Any], page_number: str | None):
    header, rows = evaluation_regions_rows(result)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(page_number)
    page.rows = [{"key": r[0], "image": r[1], "source": r[2], "name": r[3], "area_share": r[4],
                  "model_share": r[5], "dwell_share": r[6], "readers": r[7:]}
                 for r in page.object_list]  # fmt: skip
    return page


@never_cache
@login_required
@require_GET
def evaluation_regions_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Where the model's saliency and the readers' fixation time fall, region by region, on the
    evaluation's images that have regions, against each region's share of the image's area."""
    evaluation = _evaluation_or_404(request, pk)
    context: dict[str, Any] = {"evaluation": evaluation, "ready": False, "not_ready": ""}
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        return render(request, "evaluation/regions.html", context)
    try:
        result = services.evaluation_regions(evaluation=evaluation)
    except services.EvaluationNotReady as exc:  # it changed under us
        context["not_ready"] = str(exc)
        return render(request, "evaluation/regions.html", context)
    means = _means(result)
    context.update({
        "ready": True,
        "result": result,
        "readers": result["readers"],
        "means": means,
        "page": _image_rows(result, request.GET.get("page")) if result["images"] else None,
        "figures": {
            "readers": result["readers"],
            "regions": [{k: m[k] for k in ("label", "source", "name", "n_images", "model_share",
                                            "n_model", "dwell_share", "n_dwell", "area_share",
                                            "reader_dwell_shares", "reader_n")}
                        for m in means],
            "name": f"evaluation-{evaluation.pk}-regions",
        },
    })  # fmt: skip
    return render(request, "evaluation/regions.html", context)
