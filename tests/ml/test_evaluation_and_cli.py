"""Evaluation outputs and summaries, and the two command lines end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ml import evaluate as evaluate_module
from ml import train as train_module
from ml.data import ArrayDataset, blob_dataset, write_manifest
from ml.evaluate import evaluate, summarize
from ml.metrics import saliency_metrics
from ml.models import create_model
from ml.runtime import Runtime


def test_summarize_matches_numpy() -> None:
    values = np.random.default_rng(0).normal(size=50)
    out = summarize(list(values) + [float("nan")], bootstrap=500)
    assert out["n"] == 50
    assert out["mean"] == pytest.approx(values.mean())
    assert out["median"] == pytest.approx(np.median(values))
    assert out["std"] == pytest.approx(values.std(ddof=1))
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(50)
    assert out["ci95_low"] == pytest.approx(values.mean() - half_width, abs=0.1)
    assert out["ci95_high"] == pytest.approx(values.mean() + half_width, abs=0.1)


def test_evaluate_writes_maps_and_consistent_metrics(tmp_path: Path) -> None:
    data = blob_dataset(5, size=(32, 32), seed=0)
    fixations = [np.round(c)[None].astype(int) for c in data["centres"]]
    model = create_model("mtunet", base_channels=4, levels=3).eval()
    keys = [f"img{i}" for i in range(5)]
    result = evaluate(
        model,
        ArrayDataset(data["images"], data["targets"], data["labels"]),
        tmp_path,
        # fp32 so that the stored maps can be compared exactly with an fp32 forward pass here
        # (precision "auto" is bf16 on CPUs with AMX or AVX512-BF16).
        runtime=Runtime.create("cpu", "fp32"),
        keys=keys,
        fixations=fixations,
        class_names=["a", "b", "c"],
        bootstrap=100,
    )
    with torch.no_grad():
        logits = model(torch.from_numpy(data["images"]))["saliency_logits"]
    expected_maps = torch.softmax(logits.flatten(1), 1).view(5, 32, 32).numpy()
    stored = np.load(tmp_path / "saliency" / "img3.npy")
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored, expected_maps[3] / expected_maps[3].max(), atol=1e-3)
    row = result["per_image"][3]
    others = np.concatenate([f for i, f in enumerate(fixations) if i != 3])
    assert row["saliency"] == pytest.approx(
        saliency_metrics(
            expected_maps[3], data["targets"][3, 0], fixations[3], result_centre(), others
        ),
        rel=1e-4,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_images"] == 5
    assert set(summary["saliency"]) == {
        "kl",
        "kl_mit",
        "cc",
        "sim",
        "nss",
        "auc_judd",
        "auc_borji",
        "sauc",
        "info_gain",
    }
    assert "info_gain" not in summary["centre_bias"]  # the baseline against itself is 0
    assert summary["classification"]["confusion_matrix"]
    assert len(json.loads((tmp_path / "per_image.json").read_text())) == 5


def result_centre() -> np.ndarray:
    from ml.metrics import centre_bias_map

    return centre_bias_map((32, 32))


def test_command_lines_train_then_evaluate(tmp_path: Path, capsys) -> None:
    data = blob_dataset(12, size=(32, 32), seed=0)
    splits = ["train"] * 6 + ["val"] * 3 + ["test"] * 3
    manifest = write_manifest(
        tmp_path / "snap",
        ["Normal", "CHF", "Pneumonia"],
        data["images"][:, 0],
        data["targets"][:, 0],
        data["labels"],
        splits,
    )
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_config": {"base_channels": 2, "levels": 3},
                "batch_size": 3,
                "max_epochs": 2,
                "device": "cpu",
                "precision": "fp32",
            }
        )
    )
    out = tmp_path / "run"
    assert (
        train_module.main(
            [
                "--manifest",
                str(manifest),
                "--config",
                str(config),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["stop_reason"] == "max_epochs" and Path(report["best_checkpoint"]).exists()

    assert (
        evaluate_module.main(
            [
                "--checkpoint",
                report["best_checkpoint"],
                "--manifest",
                str(manifest),
                "--out",
                str(tmp_path / "eval"),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n_images"] == 3
    assert set(summary["classification"]["auc_per_class"]) == {"Normal", "CHF", "Pneumonia"}
    assert len(list((tmp_path / "eval" / "saliency").glob("*.npy"))) == 3


def test_modules_run_with_python_dash_m() -> None:
    for module in ("ml.train", "ml.evaluate"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[2],
        )
        assert "--manifest" in done.stdout
