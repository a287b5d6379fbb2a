"""The summary of an evaluation from its per-image rows: each metric's mean, median, std and 95 %
bootstrap interval for the model (against the pooled map and against each reader), the
centre-bias baseline, the inter-observer ceiling and each reader against the others."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from django.db.models import QuerySet

from apps.evaluation.models import METRICS
from ml.evaluate import summarize
from ml.references import ceiling_row

BOOTSTRAP = 1000


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, numpy scalars and arrays plain values."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _stats(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per metric, the summary of the values the rows have (metrics no row has are left out)."""
    out = {}
    for metric in METRICS:
        values = [r[metric] for r in rows if r.get(metric) is not None]
        if values:
            out[metric] = summarize(np.asarray(values, dtype=np.float64), BOOTSTRAP, seed=0)
    return out


def evaluation_summarize(rows: QuerySet) -> dict[str, Any]:
    """The summary stored on the evaluation (see the module's docstring); ``notes`` say why a
    row is missing."""
    model, centre, ceiling = [], [], []
    per_reader_model: dict[str, list[dict]] = defaultdict(list)
    per_reader_loo: dict[str, list[dict]] = defaultdict(list)
    reader_counts: dict[str, int] = defaultdict(int)
    fields = ["centre_metrics", "reader_metrics", "loo_metrics", "readers", *METRICS]
    for row in rows.values(*fields).iterator(chunk_size=500):
        model.append({m: row[m] for m in METRICS})
        centre.append(row["centre_metrics"] or {})
        for code in row["readers"] or []:
            reader_counts[code] += 1
        for code, metrics in (row["reader_metrics"] or {}).items():
            per_reader_model[code].append(metrics)
        loo = row["loo_metrics"] or {}
        for code, metrics in loo.items():
            per_reader_loo[code].append(metrics)
        if loo:
            ceiling.append(json_safe(ceiling_row(
                {c: {k: (np.nan if v is None else v) for k, v in m.items()}
                 for c, m in loo.items()}
            )))  # fmt: skip
    notes = {}
    readers = sorted(reader_counts)
    if not readers:
        notes["readers"] = (
            "No reader's own map is stored for this split (snapshots keep them for the test "
            "split only), so the readers and the inter-observer ceiling are missing."
        )
    elif not ceiling:
        notes["ceiling"] = (
            f"The inter-observer ceiling needs images read by two or more readers; every image "
            f"here was read by one ({', '.join(readers)}), so it cannot be computed."
        )
    return {
        "n_images": len(model),
        "n_multi_reader": len(ceiling),
        "metrics": [m for m in METRICS if any(r.get(m) is not None for r in model)],
        "model": _stats(model),
        "centre_bias": _stats(centre),
        "ceiling": _stats(ceiling) if ceiling else None,
        "model_readers": {c: _stats(rows) for c, rows in sorted(per_reader_model.items())},
        "readers": {c: _stats(rows) for c, rows in sorted(per_reader_loo.items())},
        "reader_images": dict(sorted(reader_counts.items())),
        "notes": notes,
    }
