"""Acceptance: a tiny MT-UNet learns both tasks of a synthetic problem in well under a minute."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from ml.data import ArrayDataset, blob_dataset
from ml.metrics import cc, centre_bias_map
from ml.train import TrainConfig, train


@pytest.mark.slow  # about 20 s on 2 cores; still in the default CI run
def test_tiny_run_learns_class_and_saliency(tmp_path: Path) -> None:
    tr = blob_dataset(120, size=(64, 64), seed=1)
    va = blob_dataset(48, size=(64, 64), seed=2)
    config = TrainConfig(
        model_config={"base_channels": 8},
        batch_size=12,
        lr=3e-3,
        max_epochs=7,
        seed=0,
        device="cpu",
        num_threads=2,
    )
    started = time.perf_counter()
    result = train(
        config,
        ArrayDataset(tr["images"], tr["targets"], tr["labels"]),
        ArrayDataset(va["images"], va["targets"], va["labels"]),
        tmp_path,
    )
    seconds = time.perf_counter() - started

    best = result.history[result.best_epoch - 1]
    centre = centre_bias_map((64, 64))
    centre_cc = float(np.mean([cc(centre, target[0]) for target in va["targets"]]))
    # Reported, not asserted: a timed assertion fails on a busy machine, not on slow code.
    # About 20 s on 2 quiet cores; the acceptance target is under 60 s.
    print(f"tiny run: {seconds:.1f} s for {config.max_epochs} epochs")
    assert best["val_accuracy"] >= 0.75, best  # chance is 1/3
    assert best["val_cc"] > centre_cc + 0.3, (best, centre_cc)
