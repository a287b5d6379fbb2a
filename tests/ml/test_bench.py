"""The benchmark's structure and its loss comparison, at a tiny size."""

from __future__ import annotations

from ml.bench import _format, bench


def test_bench_reports_both_paths_and_a_matching_loss() -> None:
    result = bench([(32, 32)], base=4, batch=2, warmup=1, steps=1, loss_steps=3, device="cpu")
    entry = result["sizes"]["32x32"]
    assert result["paths"]["reference"] == {
        "precision": "fp32",
        "channels_last": False,
        "device": "cpu",
    }
    for name in ("reference", "default"):
        assert entry[name]["train_images_per_s"] > 0
        assert entry[name]["infer_images_per_s"] > 0
    assert entry["train_speedup"] == (
        entry["default"]["train_images_per_s"] / entry["reference"]["train_images_per_s"]
    )
    check = result["loss_check"]
    assert len(check["reference"]) == 3
    # Same seed, weights and data: the paths differ only in precision (if at all).
    assert check["relative_difference"] < 0.02
    assert "ratio" in _format(result)
