"""Evaluate a model on a split: per-image predictions and metrics, and a summary.

Per image: class probabilities, the predicted saliency map (spatial softmax, at the model's
resolution) and the saliency metrics against the gaze target (plus the location-based ones where
the manifest has fixations). Summary: mean, median, std and a 95 % bootstrap interval of each
saliency metric, the same for a centre-bias baseline, and the classification metrics.

``python -m ml.evaluate --checkpoint best.pt --manifest M --split test --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ml.metrics import centre_bias_map, classification_metrics, saliency_metrics
from ml.runtime import Runtime


def summarize(values: Sequence[float], bootstrap: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean, median, std and the percentile 95 % bootstrap interval of the mean.

    Args:
        values: per-image values (NaNs are dropped).
        bootstrap: resamples; 0 skips the interval.
        seed: resampling seed.

    Returns:
        ``{"n", "mean", "median", "std", "ci95_low", "ci95_high"}``.
    """
    array = np.asarray(values, dtype=np.float64)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return {"n": 0}
    out = {
        "n": int(array.size),
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
    }
    if bootstrap:
        rng = np.random.default_rng(seed)
        means = array[rng.integers(0, array.size, size=(bootstrap, array.size))].mean(axis=1)
        out["ci95_low"], out["ci95_high"] = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    return out


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: Dataset,
    runtime: Runtime | None = None,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Run the model over a dataset.

    Args:
        model: a registry model.
        dataset: items with ``image``, ``target``, ``label``.
        runtime: device and precision (default: best available).
        batch_size: images per forward pass.
        progress: called with ``(done, total)`` after each batch.

    Returns:
        ``{"probs": (N, C) float64 or absent, "saliency": (N, H, W) float32 probabilities or
        absent, "targets": (N, H, W) float32, "labels": (N,)}``.
    """
    runtime = runtime or Runtime.create()
    model = runtime.prepare_model(model).eval()
    probs, maps, targets, labels = [], [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    done = 0
    for batch in loader:
        with runtime.autocast():
            outputs = model(runtime.prepare_input(batch["image"]))
        if "class_logits" in outputs:
            probs.append(torch.softmax(outputs["class_logits"].float(), dim=1).cpu().double())
        if "saliency_logits" in outputs:
            logits = outputs["saliency_logits"].float()
            flat = torch.softmax(logits.flatten(1), dim=1)
            maps.append(flat.view(logits.shape[0], *logits.shape[-2:]).cpu())
        targets.append(batch["target"][:, 0])
        labels.append(batch["label"])
        done += len(batch["label"])
        if progress is not None:
            progress(done, len(dataset))
    out = {"targets": torch.cat(targets).numpy(), "labels": torch.cat(labels).numpy()}
    if probs:
        out["probs"] = torch.cat(probs).numpy()
    if maps:
        out["saliency"] = torch.cat(maps).numpy()
    return out


def evaluate(
    model: torch.nn.Module,
    dataset: Dataset,
    out_dir: str | Path | None = None,
    runtime: Runtime | None = None,
    batch_size: int = 4,
    class_names: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    fixations: Sequence[np.ndarray | None] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Predict, score per image, summarise, and optionally write everything to ``out_dir``.

    Writes (with ``out_dir``): ``saliency/<key>.npy`` (float16, each map divided by its maximum,
    which no metric is sensitive to), ``per_image.json`` and ``summary.json``.

    Args:
        model: a registry model.
        dataset: items with ``image``, ``target``, ``label``.
        out_dir: where to write results; ``None`` writes nothing.
        runtime: device and precision.
        batch_size: images per forward pass.
        class_names: names of the classes (default ``"0"``, ``"1"``...).
        keys: one name per image (default its index).
        fixations: per image ``(N, 2)`` ``(x, y)`` fixations or ``None``; enables NSS, the AUCs
            and information gain (against the centre bias), and the shuffled AUC (negatives:
            all other images' fixations).
        bootstrap: resamples for the 95 % intervals.
        seed: bootstrap seed.
        progress: ``(done, total)`` callback.

    Returns:
        ``{"per_image": [...], "summary": {...}}``; the summary has ``saliency``,
        ``centre_bias``, ``classification`` (as the model's heads allow), ``n_images`` and
        ``seconds``.
    """
    started = time.perf_counter()
    predictions = predict(model, dataset, runtime, batch_size, progress)
    n = len(predictions["labels"])
    keys = list(keys) if keys is not None else [str(i) for i in range(n)]
    fixations = list(fixations) if fixations is not None else [None] * n
    shape = predictions["targets"].shape[-2:]
    centre = centre_bias_map(shape)
    per_image: list[dict[str, Any]] = []
    saliency_rows, centre_rows = [], []
    for i in range(n):
        row: dict[str, Any] = {"key": keys[i], "label": int(predictions["labels"][i])}
        if "probs" in predictions:
            row["probs"] = predictions["probs"][i].tolist()
            row["pred"] = int(predictions["probs"][i].argmax())
        if "saliency" in predictions:
            others = [f for j, f in enumerate(fixations) if j != i and f is not None and len(f)]
            other = np.concatenate(others) if others else None
            target = predictions["targets"][i]
            row["saliency"] = saliency_metrics(
                predictions["saliency"][i], target, fixations[i], centre, other
            )
            centre_scores = saliency_metrics(centre, target, fixations[i], None, other)
            saliency_rows.append(row["saliency"])
            centre_rows.append(centre_scores)
        per_image.append(row)

    summary: dict[str, Any] = {"n_images": n}
    for name, rows in (("saliency", saliency_rows), ("centre_bias", centre_rows)):
        if rows:
            metric_names = sorted({key for r in rows for key in r})
            summary[name] = {
                m: summarize([r.get(m, np.nan) for r in rows], bootstrap, seed)
                for m in metric_names
            }
    if "probs" in predictions:
        summary["classification"] = classification_metrics(
            predictions["labels"], predictions["probs"], class_names
        )
    summary["seconds"] = time.perf_counter() - started

    if out_dir is not None:
        out_dir = Path(out_dir)
        if "saliency" in predictions:
            (out_dir / "saliency").mkdir(parents=True, exist_ok=True)
            for key, smap in zip(keys, predictions["saliency"], strict=True):
                np.save(out_dir / "saliency" / f"{key}.npy", (smap / smap.max()).astype(np.float16))
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "per_image.json").write_text(json.dumps(per_image, indent=1))
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return {"per_image": per_image, "summary": summary}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: evaluate a checkpoint on one split of a manifest."""
    from ml.checkpoint import load_model
    from ml.data import ManifestDataset

    parser = argparse.ArgumentParser(
        prog="python -m ml.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--checkpoint", required=True, help="a best.pt or last.pt from ml.train")
    parser.add_argument("--manifest", required=True, help="snapshot manifest JSON")
    parser.add_argument("--split", default="test", help="train, val, test or all")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    dataset = ManifestDataset(args.manifest, None if args.split == "all" else args.split)
    if not len(dataset):
        parser.error(f"split {args.split!r} of {args.manifest} has no items")
    model, _ = load_model(args.checkpoint)
    runtime = Runtime.create(args.device, args.precision)
    bar = None if args.no_progress else _progress_bar(len(dataset), "evaluate")
    result = evaluate(
        model,
        dataset,
        out_dir=args.out,
        runtime=runtime,
        batch_size=args.batch_size,
        class_names=dataset.classes,
        keys=dataset.keys,
        fixations=[dataset.fixations(i) for i in range(len(dataset))],
        bootstrap=args.bootstrap,
        progress=None if bar is None else lambda done, total: bar.update(done - bar.n),
    )
    if bar is not None:
        bar.close()
    summary = result["summary"]
    lines = [f"{summary['n_images']} images on {runtime.device} ({runtime.precision})"]
    for metric, stats in summary.get("saliency", {}).items():
        lines.append(f"  {metric:10s} {stats['mean']:.4f} (median {stats['median']:.4f})")
    if "classification" in summary:
        c = summary["classification"]
        lines.append(f"  accuracy   {c['accuracy']:.4f}  macro AUC {c['auc_macro']:.4f}")
    print("\n".join(lines))
    return 0


def _progress_bar(total: int, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
