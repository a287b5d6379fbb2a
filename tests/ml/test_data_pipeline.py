"""Splits, resizing with recorded transforms, and the manifest dataset."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ml.data import (
    ManifestDataset,
    letterbox,
    original_split,
    pad_and_stride,
    patient_split,
    read_manifest,
    write_manifest,
)


def test_original_split_interleaves_2_1_7_per_class() -> None:
    labels = [0] * 30 + [1] * 20 + [2] * 10
    splits = original_split(labels, seed=4)
    for label, n in ((0, 30), (1, 20), (2, 10)):
        counts = Counter(s for s, c in zip(splits, labels, strict=True) if c == label)
        assert counts == {"test": n // 5, "val": n // 10, "train": 7 * n // 10}
    assert original_split(labels, seed=4) == splits
    assert original_split(labels, seed=5) != splits


def test_original_split_follows_the_seeded_order() -> None:
    labels = [0] * 10
    order = np.random.default_rng(9).permutation(10)
    splits = original_split(labels, seed=9)
    expected = ["test", "test", "val"] + ["train"] * 7
    assert [splits[i] for i in order] == expected


def test_patient_split_keeps_each_patient_in_one_split() -> None:
    rng = np.random.default_rng(0)
    patients = [f"p{int(i)}" for i in rng.integers(0, 40, size=200)]
    labels = [int(p[1:]) % 3 for p in patients]
    splits = patient_split(labels, patients, seed=1)
    by_patient: dict[str, set] = {}
    for patient, split in zip(patients, splits, strict=True):
        by_patient.setdefault(patient, set()).add(split)
    assert all(len(s) == 1 for s in by_patient.values())
    assert set(splits) == {"train", "val", "test"}


@pytest.mark.parametrize(
    ("shape", "size", "scale", "offsets"),
    [
        ((200, 100), (64, 64), 0.32, (0, 16)),  # portrait: padded left and right
        ((100, 200), (64, 64), 0.32, (16, 0)),  # landscape: padded top and bottom
        ((32, 16), (64, 64), 2.0, (0, 16)),  # enlarged
    ],
)
def test_letterbox_keeps_aspect_and_moves_points_with_the_image(shape, size, scale, offsets):
    image = np.zeros(shape, dtype=np.float32)
    y, x = shape[0] // 3, shape[1] // 4
    image[y - 3 : y + 4, x - 3 : x + 4] = 1.0  # a 7x7 square whose centre is (x, y)
    out, transform = letterbox(image, size)
    assert out.shape == size
    assert transform.scale == pytest.approx(scale)
    assert (transform.offset_y, transform.offset_x) == offsets
    (px,), (py,) = transform.points([x], [y])
    ys, xs = np.nonzero(out > 0.05)
    weights = out[ys, xs]
    assert np.average(xs, weights=weights) == pytest.approx(px, abs=0.3)
    assert np.average(ys, weights=weights) == pytest.approx(py, abs=0.3)
    np.testing.assert_array_equal(transform.apply(image), out)


def test_letterbox_antialiases_a_fine_pattern() -> None:
    stripes = np.tile([0.0, 1.0], (400, 200))  # 1-pixel stripes: pure Nyquist
    out, _ = letterbox(stripes, (80, 80))
    assert out.std() < 0.05 and out.mean() == pytest.approx(0.5, abs=0.02)
    strided, _ = pad_and_stride(stripes, padded=(400, 400), stride=5)
    assert strided.std() > 0.4  # the original's sampling aliases it


def test_pad_and_stride_matches_the_original_recipe() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((2400, 2000)).astype(np.float32)
    out, transform = pad_and_stride(image)
    assert out.shape == (640, 512)
    canvas = np.zeros((3200, 2560), dtype=np.float32)
    canvas[400:2800, 280:2280] = image
    np.testing.assert_array_equal(out, canvas[::5, ::5])
    (px,), (py,) = transform.points([1000], [500])
    assert (px, py) == ((1000 + 280) / 5, (500 + 400) / 5)


def test_pad_and_stride_crops_an_oversized_side_like_the_original() -> None:
    image = np.arange(2000 * 3000, dtype=np.float32).reshape(2000, 3000)
    out, _ = pad_and_stride(image)
    assert out.shape == (640, 512)
    assert out[0, 0] == 0.0  # padding above
    assert out[120, 0] == image[0, 220]  # columns 220..2779 of the landscape image are kept


def _manifest(tmp_path: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    images = rng.random((n, 32, 32)).astype(np.float32)
    targets = rng.random((n, 32, 32)).astype(np.float32)
    labels = np.arange(n) % 3
    splits = ["train", "train", "val", "test", "train", "val"][:n]
    fixations = [rng.integers(0, 32, size=(4, 2)) for _ in range(n)]
    return write_manifest(
        tmp_path,
        ["Normal", "CHF", "Pneumonia"],
        images,
        targets,
        labels,
        splits,
        patient_ids=[f"p{i // 2}" for i in range(n)],
        fixations=fixations,
    )


def test_manifest_dataset_reads_one_split_lazily(tmp_path: Path) -> None:
    path = _manifest(tmp_path)
    train = ManifestDataset(path, "train")
    assert len(train) == 3 and train.keys == ["item-00000", "item-00001", "item-00004"]
    item = train[2]
    assert item["image"].shape == (1, 32, 32) and item["target"].shape == (1, 32, 32)
    assert int(item["label"]) == 1
    np.testing.assert_array_equal(
        item["image"][0].numpy(), np.load(tmp_path / "images" / "item-00004.npy")
    )
    assert train.fixations(0).shape == (4, 2)
    assert len(ManifestDataset(path)) == 6


def test_manifest_scales_integer_images_to_unit_range(tmp_path: Path) -> None:
    path = _manifest(tmp_path)
    np.save(tmp_path / "images" / "item-00000.npy", np.full((32, 32), 65535, dtype=np.uint16))
    assert float(ManifestDataset(path, "train")[0]["image"].max()) == 1.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="other"), "format"),
        (lambda m: m["items"][0].pop("target"), "item 0 has no 'target'"),
        (lambda m: m["items"][1].update(label=7), "label 7"),
    ],
)
def test_bad_manifests_are_refused_with_the_field(tmp_path: Path, edit, message: str) -> None:
    path = _manifest(tmp_path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        read_manifest(path)
