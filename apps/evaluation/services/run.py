"""An evaluation's body on a ``gpu`` worker: claim, fetch the snapshot and the version's
checkpoint, predict the split batch by batch, score each image (the model against the pooled map
and each reader's map; the centre bias; each reader against the pool of the others), store each
image's map and row as its batch ends (memory stays flat in the number of images), then
summarise and end the evaluation (succeeded, or failed with the cause and traceback).

Every write is conditional on the attempt still owning the evaluation (status running and the
same ``attempts``), so an attempt the sweeper gave up on cannot overwrite its successor's work.
"""

from __future__ import annotations

import io
import logging
import time
import traceback as traceback_module
from pathlib import Path
from typing import Any

import numpy as np
import torch
from django.db import transaction
from django.utils import timezone
from torch.utils.data import DataLoader

from apps.core import storage
from apps.datasets.services import snapshot_local_folder
from apps.evaluation.models import METRICS, Evaluation, EvaluationImage
from apps.evaluation.services.jobs import APP, evaluation_claim
from apps.evaluation.services.summary import evaluation_summarize, json_safe
from ml.checkpoint import load_model
from ml.data.manifest import ManifestDataset
from ml.metrics import classification_metrics, saliency_metrics
from ml.references import leave_one_reader_out, mean_map
from ml.runtime import Runtime

log = logging.getLogger(__name__)

BATCH_SIZE = 4


class EvaluationFailed(Exception):
    """A cause the evaluation page names in plain words (no traceback needed)."""


def _owned(evaluation_id: int, attempt: int):
    return Evaluation.objects.filter(
        pk=evaluation_id, attempts=attempt, status=Evaluation.Status.RUNNING
    )


def stored_map(saliency: np.ndarray) -> np.ndarray:
    """The map as stored: float16, divided by its maximum (no metric depends on the scale)."""
    saliency = np.asarray(saliency, dtype=np.float64)
    peak = saliency.max()
    return (saliency / peak if peak > 0 else saliency).astype(np.float16)


def map_bytes(stored: np.ndarray) -> bytes:
    """A stored map as a compressed ``.npz`` (one array, ``map``)."""
    out = io.BytesIO()
    np.savez_compressed(out, map=stored)
    return out.getvalue()


def load_map(name: str) -> np.ndarray:
    """The stored float16 map of an evaluated image."""
    with np.load(io.BytesIO(storage.read_bytes(name))) as data:
        return data["map"]


# A stored 0 is a value float16 rounded to 0 (under half its smallest subnormal, 2**-24, of
# the map's maximum): it is read as that bound, so that no metric sees an impossible zero (a
# softmax is never 0; the KL of a map with zeros where readers looked would be infinite).
STORED_ZERO = 2.0**-25


def as_density(stored: np.ndarray) -> np.ndarray:
    """The density every stored metric is computed from: the stored map (its zeros read as
    ``STORED_ZERO``), summing to 1."""
    density = np.asarray(stored, dtype=np.float64)
    density = np.where(density > 0, density, STORED_ZERO)
    total = density.sum()
    return density / total if total > 0 else np.full(density.shape, 1.0 / density.size)


class _Split:
    """The split's items with what scoring needs besides the image: targets, fixations, each
    reader's target and fixations, and the training split's mean map (the centre bias)."""

    def __init__(self, folder: Path, split: str) -> None:
        self.dataset = ManifestDataset(folder / "manifest.json", split)
        self.root = folder
        self.fixations = [self.dataset.fixations(i) for i in range(len(self.dataset))]
        train = ManifestDataset(folder / "manifest.json", "train")
        source = train if len(train) else self.dataset
        try:
            self.baseline = mean_map(
                np.asarray(source._load(item["target"]), dtype=np.float64) for item in source.items
            )
        except ValueError as exc:
            raise EvaluationFailed(
                f"The training split has no gaze to make a centre bias from: {exc}"
            ) from None

    def _array(self, relative: str) -> np.ndarray:
        return np.asarray(np.load(self.root / relative, mmap_mode="r"), dtype=np.float64)

    def others(self, index: int) -> np.ndarray | None:
        """Every other image's fixations (the shuffled AUC's negatives)."""
        rest = [f for j, f in enumerate(self.fixations) if j != index and f is not None and len(f)]
        return np.concatenate(rest) if rest else None

    def readers(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
        item = self.dataset.items[index]
        maps = {c: self._array(p) for c, p in (item.get("reader_targets") or {}).items()}
        fixations = {
            c: np.asarray(self._array(p), dtype=np.int64).reshape(-1, 2)
            for c, p in (item.get("reader_fixations") or {}).items()
        }
        return maps, {c: fixations.get(c) for c in maps}


def _score(split: _Split, index: int, density: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """One image's metrics: the model against the pool and each reader, and the references."""
    fixations, others = split.fixations[index], split.others(index)
    reader_maps, reader_fixations = split.readers(index)
    model = saliency_metrics(density, target, fixations, split.baseline, others)
    per_reader = {
        code: json_safe(
            saliency_metrics(density, reader_map, reader_fixations[code], split.baseline, others)
        )  # fmt: skip
        for code, reader_map in sorted(reader_maps.items())
    }
    centre = saliency_metrics(split.baseline, target, fixations, None, others)
    loo = leave_one_reader_out(reader_maps, reader_fixations, baseline=split.baseline,
                               other_fixations=others)  # fmt: skip
    return {
        "model": json_safe(model), "readers": sorted(reader_maps), "reader_metrics": per_reader,
        "centre_metrics": json_safe(centre),
        "loo_metrics": {code: json_safe(m) for code, m in sorted(loo.items())},
    }  # fmt: skip


def _forward(model, runtime: Runtime, images: torch.Tensor) -> tuple[np.ndarray | None, np.ndarray]:
    with torch.no_grad(), runtime.autocast():
        outputs = model(runtime.prepare_input(images))
    probs = None
    if "class_logits" in outputs:
        probs = torch.softmax(outputs["class_logits"].float(), dim=1).cpu().double().numpy()
    if "saliency_logits" not in outputs:
        raise EvaluationFailed("The model has no saliency head to evaluate.")
    logits = outputs["saliency_logits"].float()
    flat = torch.softmax(logits.flatten(1), dim=1)
    return probs, flat.view(logits.shape[0], *logits.shape[-2:]).cpu().numpy()


def _score_all(evaluation: Evaluation, attempt: int, split: _Split, model, runtime) -> None:
    """Predict and score every image, writing each batch's rows and maps as it ends."""
    loader = DataLoader(split.dataset, batch_size=BATCH_SIZE, shuffle=False)
    done = 0
    for batch in loader:
        probs, maps = _forward(model, runtime, batch["image"])
        rows, batch_files = [], storage.FileBatch(app=APP, lab_id=evaluation.lab_id)
        try:
            for j, index in enumerate(batch["index"].tolist()):
                stored = stored_map(maps[j])
                data = map_bytes(stored)
                name = batch_files.put(kind="maps", fh=io.BytesIO(data), ext="npz")
                target = batch["target"][j, 0].numpy().astype(np.float64)
                scores = _score(split, index, as_density(stored), target)
                label = int(split.dataset.labels[index])
                pred = int(probs[j].argmax()) if probs is not None else None
                rows.append(EvaluationImage(
                    evaluation=evaluation, item_id=None, key=split.dataset.keys[index],
                    label=label, pred=pred, correct=None if pred is None else pred == label,
                    probs=[] if probs is None else probs[j].tolist(), map_name=name,
                    map_size=len(data), readers=scores["readers"],
                    reader_metrics=scores["reader_metrics"],
                    centre_metrics=scores["centre_metrics"], loo_metrics=scores["loo_metrics"],
                    **{m: scores["model"].get(m) for m in METRICS},
                ))  # fmt: skip
            done += len(rows)
            with transaction.atomic():
                if not _owned(evaluation.pk, attempt).select_for_update().exists():
                    raise EvaluationFailed("superseded")
                EvaluationImage.objects.bulk_create(rows)
                _owned(evaluation.pk, attempt).update(done=done, heartbeat_at=timezone.now())
        except BaseException:
            batch_files.discard()
            raise


def _link_items(evaluation: Evaluation) -> None:
    """Point each row at its snapshot item (by key; one query per evaluation)."""
    from apps.datasets.models import SnapshotItem

    ids = dict(
        SnapshotItem.objects.filter(snapshot_id=evaluation.snapshot_id, split=evaluation.split)
        .values_list("key", "pk")
    )  # fmt: skip
    rows = list(EvaluationImage.objects.filter(evaluation=evaluation).only("pk", "key"))
    for row in rows:
        row.item_id = ids.get(row.key)
    EvaluationImage.objects.bulk_update(rows, ["item_id"], batch_size=500)


def _model(evaluation: Evaluation) -> torch.nn.Module:
    path = storage.local_file(evaluation.version.checkpoint_name)
    try:
        model, _ = load_model(path)
    except Exception as exc:  # not a checkpoint, a checksum mismatch, an unknown model
        raise EvaluationFailed(
            f"The checkpoint of model version {evaluation.version_id} could not be loaded "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    return model


def _cause(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, EvaluationFailed):
        return str(exc)
    if name == "SoftTimeLimitExceeded":
        return "It ran past CELERY_GPU_TASK_SOFT_TIME_LIMIT."
    if name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return f"The device ran out of memory ({exc})."
    if isinstance(exc, storage.StorageError):
        return f"A stored file could not be read: {exc}"
    return f"The evaluation stopped ({name}: {exc})."


def _end(evaluation_id: int, attempt: int, status: str, **fields) -> bool:
    with transaction.atomic():
        evaluation = _owned(evaluation_id, attempt).select_for_update().first()
        if evaluation is None:
            return False
        now = timezone.now()
        evaluation.status, evaluation.finished_at, evaluation.heartbeat_at = status, now, now
        for key, value in fields.items():
            setattr(evaluation, key, value)
        evaluation.save()
        if status == Evaluation.Status.FAILED:  # no half evaluation (its maps go with the rows)
            EvaluationImage.objects.filter(evaluation=evaluation).delete()
    return True


def evaluation_run(*, evaluation_id: int) -> Evaluation | None:
    """Run a queued evaluation (the task's body). Idempotent: one that is not queued is left
    alone (returns None)."""
    evaluation = evaluation_claim(evaluation_id=evaluation_id)
    if evaluation is None:
        log.info("evaluation %s is not queued; nothing to do", evaluation_id)
        return None
    attempt = evaluation.attempts
    started = time.perf_counter()
    try:
        EvaluationImage.objects.filter(evaluation=evaluation).delete()  # a restart starts over
        split = _Split(snapshot_local_folder(snapshot=evaluation.snapshot), evaluation.split)
        if not len(split.dataset):
            raise EvaluationFailed(f"The {evaluation.split} split has no image.")
        model = _model(evaluation)
        runtime = Runtime.create()
        model = runtime.prepare_model(model).eval()
        _owned(evaluation_id, attempt).update(total=len(split.dataset))
        _score_all(evaluation, attempt, split, model, runtime)
        _link_items(evaluation)
        rows = EvaluationImage.objects.filter(evaluation=evaluation)
        summary = evaluation_summarize(rows)
        labelled = [(r.label, r.probs) for r in rows.only("label", "probs") if r.probs]
        classification = (
            json_safe(classification_metrics(
                np.array([lab for lab, _ in labelled]),
                np.array([p for _, p in labelled], dtype=np.float64), evaluation.classes,
            )) if labelled else {}
        )  # fmt: skip
        _end(evaluation_id, attempt, Evaluation.Status.SUCCEEDED, summary=summary,
             classification=classification, device=str(runtime.device),
             seconds=time.perf_counter() - started)  # fmt: skip
    except BaseException as exc:
        if isinstance(exc, EvaluationFailed) and str(exc) == "superseded":
            log.warning("evaluation %s attempt %s was superseded", evaluation_id, attempt)
            return Evaluation.objects.get(pk=evaluation_id)
        if not isinstance(exc, EvaluationFailed):
            log.exception("evaluation %s failed", evaluation_id)
        _end(evaluation_id, attempt, Evaluation.Status.FAILED, error=_cause(exc),
             traceback="" if isinstance(exc, EvaluationFailed) else traceback_module.format_exc(),
             seconds=time.perf_counter() - started)  # fmt: skip
        if not isinstance(exc, Exception):
            raise
    return Evaluation.objects.get(pk=evaluation_id)
