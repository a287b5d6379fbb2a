"""Dataset snapshots: determinism, arrays, per-reader targets, refusals, patient split, export,
local folder, files with rows, failure."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from apps.core import storage
from apps.datasets import services
from apps.datasets.models import DatasetSnapshot, SnapshotFile, SnapshotItem
from apps.gaze.models import Reading
from apps.imaging.models import Image
from apps.imaging.services import array_read
from ml.data import ManifestDataset, letterbox, read_manifest
from ml.data.snapshot import canonical_json, fixations_to_model
from tests.apps.datasets.conftest import CHOICES
from tests.apps.datasets.objects import add_image, add_reading, lab_with_data, points_for


def _build(lab, user, name="s", **choices):
    snapshot = services.snapshot_create(
        lab=lab, actor=user, name=name, enqueue=False, **{**CHOICES, **choices}
    )
    built = services.snapshot_build(snapshot_id=snapshot.pk)
    assert built is not None and built.status == "ready", built and built.error
    return built


def test_building_twice_gives_the_same_hash_and_a_changed_label_another(personas, images):
    lab, user = personas.lab_a, personas.researcher_a
    extra = add_image(lab, user, "pneumonia-extra", "Pneumonia", seed=99)
    add_reading(lab, extra, "R1", points_for(extra, 3))
    first = _build(lab, user, "first")
    second = _build(lab, user, "second")
    assert len(first.content_hash) == 64
    assert second.content_hash == first.content_hash
    assert second.manifest_name == first.manifest_name
    assert storage.digest_of(first.manifest_name) == first.content_hash
    # Content-addressed: the second build stored nothing new, and names the same files.
    assert set(first.files.values_list("name", flat=True)) == set(
        second.files.values_list("name", flat=True)
    )
    Image.objects.filter(pk=extra.pk).update(label="CHF")  # a Pneumonia image becomes CHF
    third = _build(lab, user, "third")
    assert third.content_hash != first.content_hash
    # A different seed or sigma is another snapshot too.
    assert _build(lab, user, "seed", seed=1).content_hash != first.content_hash
    assert _build(lab, user, "sigma", sigma_deg=2.0).content_hash != first.content_hash


def test_counts_choices_and_split_follow_the_2_1_7_rule(personas, images):
    snap = _build(personas.lab_a, personas.researcher_a)
    assert snap.classes == ["Normal", "CHF", "Pneumonia"]
    assert snap.counts == {
        "train": {"Normal": 1, "CHF": 1, "Pneumonia": 1},
        "val": {"Normal": 1, "CHF": 1, "Pneumonia": 1},
        "test": {"Normal": 2, "CHF": 2, "Pneumonia": 2},
    }
    assert snap.choices["resolution"] == [64, 64] and snap.choices["split"] == "original"
    assert snap.progress == 100 and snap.built_at is not None
    assert snap.selection["left_out"] == {"not_in_classes": 0, "outside_dates": 0, "no_reading": 0}


def test_local_folder_is_a_manifest_dataset_with_letterboxed_images(personas, images, settings):
    snap = _build(personas.lab_a, personas.researcher_a)
    folder = services.snapshot_local_folder(snapshot=snap)
    assert folder.name == snap.content_hash
    assert services.snapshot_local_folder(snapshot=snap) == folder  # reused
    manifest = read_manifest(folder / "manifest.json")
    assert manifest["format"] == "ml.manifest/1" and manifest["resolution"] == [64, 64]
    assert manifest["choices"] == snap.choices
    by_key = {item["key"]: item for item in manifest["items"]}
    train = ManifestDataset(folder / "manifest.json", split="train")
    assert len(train) == 3
    sample = train[0]
    assert sample["image"].shape == (1, 64, 64) and sample["target"].shape == (1, 64, 64)
    assert float(sample["target"].sum()) == pytest.approx(1.0, abs=1e-5)
    for index, key in enumerate(train.keys):
        image = Image.objects.get(lab=personas.lab_a, key=key)
        want, transform = letterbox(array_read(image.array_path), (64, 64))
        got = np.load(folder / by_key[key]["image"])
        np.testing.assert_array_equal(got, want.astype(np.float32))
        assert by_key[key]["transform"] == json.loads(json.dumps(transform.to_dict()))
        # The fixations at model resolution: both readers' fixations, mapped like the image.
        xy = np.array(
            list(
                Reading.objects.filter(image=image)
                .order_by("id")
                .values_list("fixations__x", "fixations__y")
            )
        )
        fixations = train.fixations(index)
        assert sorted(map(tuple, fixations)) == sorted(
            map(tuple, fixations_to_model(xy, transform))
        )
        assert fixations.min() >= 0 and fixations.max() < 64


def test_test_images_keep_each_readers_target_and_others_do_not(personas, images):
    snap = _build(personas.lab_a, personas.researcher_a)
    manifest = services.snapshot_manifest(snapshot=snap)
    folder = services.snapshot_local_folder(snapshot=snap)
    for item in manifest["items"]:
        if item["split"] == "test":
            assert set(item["reader_targets"]) == {"R1", "R2"}
            maps = [np.load(folder / item["reader_targets"][c]) for c in ("R1", "R2")]
            pooled = np.load(folder / item["target"])
            # The pooled target is the mean of the two readers' maps (each sums to 1).
            np.testing.assert_allclose(pooled, (maps[0] + maps[1]) / 2, atol=1e-6)
            assert set(item["reader_fixations"]) == {"R1", "R2"}
        else:
            assert "reader_targets" not in item
    rows = SnapshotItem.objects.filter(snapshot=snap)
    assert all(bool(r.reader_targets) == (r.split == "test") for r in rows)


def test_one_reader_mode_uses_that_readers_readings(personas, images):
    lab, user = personas.lab_a, personas.researcher_a
    pooled = _build(lab, user, "pooled")
    one = _build(lab, user, "r1", target_reader="R1")
    assert one.content_hash != pooled.content_hash
    services.snapshot_local_folder(snapshot=one)
    for item in services.snapshot_manifest(snapshot=one)["items"]:
        if item["split"] == "test":
            assert item["target"] == item["reader_targets"]["R1"]


def test_seed_mode_pads_and_strides(personas, images):
    snap = _build(personas.lab_a, personas.researcher_a, seed_mode=True)
    folder = services.snapshot_local_folder(snapshot=snap)
    data = ManifestDataset(folder / "manifest.json")
    item = data[0]
    target = item["target"][0].numpy()
    assert target.max() == pytest.approx(1.0) and target.min() == pytest.approx(0.0)
    assert data.items[0]["transform"]["mode"] == "pad_and_stride"


def test_reading_filters(personas, images):
    lab, user = personas.lab_a, personas.researcher_a
    # A poor reading, and one left out of training, drop out under the default filters.
    image = images[0]
    Reading.objects.filter(image=image, session__reader__code="R1").update(grade="poor")
    Reading.objects.filter(image=image, session__reader__code="R2").update(use_for_training=False)
    extra = add_image(lab, user, "normal-extra", "Normal", seed=77)
    add_reading(lab, extra, "R1", points_for(extra, 5))
    snap = services.snapshot_create(lab=lab, actor=user, name="f", enqueue=False, **CHOICES)
    keys = set(snap.items.values_list("key", flat=True))
    assert image.key not in keys and extra.key in keys
    assert snap.selection["left_out"]["no_reading"] == 1
    snap = services.snapshot_create(
        lab=lab, actor=user, name="g", enqueue=False, min_grade="poor",
        use_for_training_only=False, **CHOICES,
    )  # fmt: skip
    assert image.key in set(snap.items.values_list("key", flat=True))
    snap = services.snapshot_create(
        lab=lab, actor=user, name="h", enqueue=False, readers=["R2"],
        use_for_training_only=False, **CHOICES,
    )  # fmt: skip
    keys = set(snap.items.values_list("key", flat=True))
    assert extra.key not in keys and image.key in keys  # extra was read by R1 only


def test_an_empty_split_is_refused_naming_it(personas):
    lab_with_data(personas.lab_a, personas.researcher_a, per_class=(2, 2, 2), readers=("R1",))
    with pytest.raises(ValidationError) as caught:
        services.snapshot_create(
            lab=personas.lab_a, actor=personas.researcher_a, name="x", **CHOICES
        )
    message = caught.value.message_dict["split"][0]
    assert "The training split would be empty" in message
    assert "6 image(s)" in message and "Normal 2" in message
    assert not DatasetSnapshot.objects.exists()


def test_a_class_without_a_training_image_is_refused_naming_it(personas):
    lab_with_data(personas.lab_a, personas.researcher_a, per_class=(4, 4, 3), readers=("R1",))
    with pytest.raises(ValidationError) as caught:
        services.snapshot_create(
            lab=personas.lab_a, actor=personas.researcher_a, name="x", **CHOICES
        )
    message = caught.value.message_dict["labels"][0]
    assert "Class 'Pneumonia' has no training image" in message and "3 image(s)" in message
    # Leaving the class out works.
    snap = services.snapshot_create(
        lab=personas.lab_a, actor=personas.researcher_a, name="x", enqueue=False,
        labels=["Normal", "CHF"], **CHOICES,
    )  # fmt: skip
    assert snap.classes == ["Normal", "CHF"]


def test_nothing_selected_says_why(personas, images):
    with pytest.raises(ValidationError) as caught:
        services.snapshot_create(
            lab=personas.lab_a, actor=personas.researcher_a, name="x", readers=["R1"],
            uploaded_after="2100-01-01", **CHOICES,
        )  # fmt: skip
    assert "No image matches" in caught.value.message_dict["labels"][0]
    assert "12 were uploaded outside the dates" in caught.value.message_dict["labels"][0]


@pytest.mark.parametrize(
    ("choice", "field"),
    [
        ({"labels": ["Effusion"]}, "labels"),
        ({"readers": ["R9"]}, "readers"),
        ({"sessions": [999999]}, "sessions"),
        ({"resolution": [100, 64]}, "resolution"),
        ({"sigma_deg": 0.0}, "sigma_deg"),
        ({"target_reader": "R9"}, "target_reader"),
        ({"split": "random"}, "split"),
        ({"min_grade": "excellent"}, "min_grade"),
        ({"seed_mode": True, "sigma_deg": 2.0}, "sigma_deg"),
        ({"uploaded_after": "yesterday"}, "uploaded_after"),
    ],
)
def test_bad_choices_name_their_field(personas, choice, field):
    with pytest.raises(ValidationError) as caught:
        services.snapshot_create(
            lab=personas.lab_a, actor=personas.researcher_a, name="x",
            **{**CHOICES, **choice},
        )  # fmt: skip
    assert field in caught.value.message_dict


def test_patient_split_keeps_a_patients_images_together(personas):
    lab, user = personas.lab_a, personas.researcher_a
    images = []
    for c, label in enumerate(("Normal", "CHF")):
        for p in range(5):  # 5 patients per class, 2 images each
            for k in range(2):
                image = add_image(
                    lab, user, f"{label}-{p}-{k}", label, seed=100 * c + 10 * p + k,
                    patient_id=f"MRN-{label}-{p}",
                )  # fmt: skip
                add_reading(lab, image, "R1", points_for(image, 10 * p + k))
                images.append(image)
    keys = {img.patient_key for img in images}
    assert len(keys) == 10 and all(len(k) == 32 for k in keys)
    assert not any("MRN" in k for k in keys)
    # Same PatientID, same key; the key is not the PatientID's plain hash.
    assert images[0].patient_key == images[1].patient_key != images[2].patient_key
    snap = services.snapshot_create(
        lab=lab, actor=user, name="p", enqueue=False, labels=["Normal", "CHF"], split="patient",
        **CHOICES,
    )  # fmt: skip
    splits: dict[str, set[str]] = {}
    for item in snap.items.all():
        splits.setdefault(item.patient_key, set()).add(item.split)
    assert all(len(s) == 1 for s in splits.values()), splits
    assert snap.counts["test"] == {"Normal": 4, "CHF": 4}  # 2 patients x 2 images per class
    # The image-level split separates at least one patient's images (seeded: deterministic).
    by_image = services.snapshot_create(
        lab=lab, actor=user, name="i", enqueue=False, labels=["Normal", "CHF"], **CHOICES
    )
    mixed = {}
    for item in by_image.items.all():
        mixed.setdefault(item.patient_key, set()).add(item.split)
    assert any(len(s) > 1 for s in mixed.values())


def test_patient_key_is_per_lab(personas):
    a = add_image(personas.lab_a, personas.researcher_a, "a", "CHF", seed=1, patient_id="P-1")
    b = add_image(personas.lab_b, personas.admin_b, "b", "CHF", seed=2, patient_id="P-1")
    png = add_image(personas.lab_a, personas.researcher_a, "c", "CHF", seed=3)
    assert a.patient_key and b.patient_key and a.patient_key != b.patient_key
    assert png.patient_key == ""


def test_export_zip_holds_manifest_arrays_and_readme(personas, images, tmp_path):
    snap = _build(personas.lab_a, personas.researcher_a, "Paper split")
    handle = services.snapshot_export_zip(snapshot=snap)
    with zipfile.ZipFile(io.BytesIO(handle.read())) as zf:
        names = set(zf.namelist())
        assert {"README.txt", "manifest.json"} <= names
        readme = zf.read("README.txt").decode()
        assert zf.read("manifest.json") == storage.read_bytes(snap.manifest_name)
        zf.extractall(tmp_path / "x")
    assert "Paper split" in readme and snap.content_hash in readme
    assert "64 x 64" in readme and "Normal, CHF, Pneumonia" in readme
    assert "train:     3" in readme and "test :     6" in readme
    data = ManifestDataset(tmp_path / "x" / "manifest.json", split="test")
    assert len(data) == 6 and data[0]["image"].shape == (1, 64, 64)
    assert canonical_json(read_manifest(tmp_path / "x" / "manifest.json")) == zf_bytes(tmp_path)


def zf_bytes(tmp_path):
    return (tmp_path / "x" / "manifest.json").read_bytes()


def test_claim_is_idempotent(personas, images):
    snap = _build(personas.lab_a, personas.researcher_a)
    assert services.snapshot_build(snapshot_id=snap.pk) is None
    assert services.snapshot_build(snapshot_id=10**9) is None


def test_deleting_a_snapshot_deletes_its_files_but_not_a_twins(
    personas, images, django_capture_on_commit_callbacks
):
    lab, user = personas.lab_a, personas.researcher_a
    first = _build(lab, user, "first")
    twin = _build(lab, user, "twin")
    names = set(first.files.values_list("name", flat=True))
    assert names and all(storage.local_path(n).exists() for n in names)
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_delete(snapshot=first)
    assert all(storage.local_path(n).exists() for n in names)  # the twin names them
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_delete(snapshot=twin)
    assert not any(storage.local_path(n).exists() for n in names)
    assert not SnapshotFile.objects.exists() and not SnapshotItem.objects.exists()


def test_a_failed_build_says_why_and_leaves_no_files(
    personas, images, django_capture_on_commit_callbacks
):
    lab, user = personas.lab_a, personas.researcher_a
    snap = services.snapshot_create(lab=lab, actor=user, name="x", enqueue=False, **CHOICES)
    last = snap.items.order_by("key").last()
    Reading.objects.filter(image_id=last.image_id).delete()
    with django_capture_on_commit_callbacks(execute=True):
        failed = services.snapshot_build(snapshot_id=snap.pk)
    assert failed.status == "failed" and failed.content_hash == ""
    assert f"Image {last.key!r}: its readings were deleted" in failed.error
    assert not SnapshotFile.objects.filter(snapshot=snap).exists()
    datasets_root = storage.local_path(f"datasets/lab-{lab.pk}/")
    leftover = (
        [p for p in datasets_root.rglob("*") if p.is_file()] if datasets_root.exists() else []
    )
    assert leftover == []


def test_snapshot_files_count_against_the_quota(personas, images, settings):
    from apps.core import quota
    from apps.core.errors import QuotaExceeded

    snap = _build(personas.lab_a, personas.researcher_a)
    assert services.snapshot_usage_bytes(personas.lab_a.pk) == snap.size_bytes > 0
    settings.LAB_DERIVED_QUOTA_BYTES = quota.derived_bytes(personas.lab_a.pk) + 1000
    with pytest.raises(QuotaExceeded):
        services.snapshot_create(
            lab=personas.lab_a, actor=personas.researcher_a, name="y", **CHOICES
        )
