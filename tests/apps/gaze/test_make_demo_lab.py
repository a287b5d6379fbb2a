"""make_demo_lab: a small demo lab loaded through the upload services, and nothing more the
second time."""

from __future__ import annotations

import io
import json
from collections import Counter

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from apps.gaze.models import Fixation, Reader, Reading, ReadingSession, Recording
from apps.imaging.models import DeidentificationAudit, Image

ARGS = ["--images", "6", "--readers", "2", "--size", "small", "--lab", "lab-a"]
MODELS = (Image, DeidentificationAudit, Reader, ReadingSession, Recording, Reading, Fixation)


def make_demo_lab(*args: str) -> str:
    out = io.StringIO()
    call_command("make_demo_lab", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in MODELS}


def assert_fixations_match_truth(session: ReadingSession, truth: dict) -> None:
    """Each reading holds the fixations of its own image: at least 90 % of the true fixations
    (where the tracker put them, calibration offset included) have one within 0.5 degree."""
    checked = 0
    for t in truth["readings"]:
        if t["kind"] != "image":
            continue
        reading = Reading.objects.get(session=session, image__key=t["image_key"])
        rows = list(reading.fixations.values_list("x", "y"))
        xs, ys = np.array(rows).T
        view = t["views"][0]
        scale = (view["screen_rect"][2] - view["screen_rect"][0]) / t["image_width"]
        ppd = t["pixels_per_degree_at_centre"][0]
        dx, dy = (v / scale for v in t["calibration_offset_px"])
        found = 0
        for f in t["fixations"]:
            deg = np.hypot(xs - f["image_x"] - dx, ys - f["image_y"] - dy) * scale / ppd
            found += bool(deg.min() <= 0.5)
        assert found >= 0.9 * len(t["fixations"]), (t["image_key"], found, len(t["fixations"]))
        checked += 1
    assert checked == 6


def test_loads_a_demo_lab_then_adds_nothing(personas, tmp_path):
    lab = personas.lab_a
    out = make_demo_lab(*ARGS, "--user", "researcher_a", "--out", str(tmp_path / "files"))
    assert "6 new" in out and "2 simulated readers" in out and "12 readings with" in out

    images = Image.objects.filter(lab=lab)
    assert images.count() == 6
    assert Counter(images.values_list("label", flat=True)) == {
        "Normal": 2,
        "CHF": 2,
        "Pneumonia": 2,
    }
    assert images.filter(photometric_interpretation="MONOCHROME1").count() == 1
    assert all(i.dicom_path and i.preview_path and i.array_path for i in images)
    assert {(i.width, i.height) for i in images} == {(1000, 1200)}
    assert DeidentificationAudit.objects.filter(image__in=images).count() == 6

    readers = {r.code: r for r in Reader.objects.filter(lab=lab)}
    assert set(readers) == {"R1", "R2"}
    sessions = ReadingSession.objects.filter(lab=lab)
    assert sessions.count() == 2
    recordings = Recording.objects.filter(lab=lab)
    assert sorted(recordings.values_list("format", flat=True)) == ["egd_cxr", "eyelink_asc"]
    assert set(recordings.values_list("status", flat=True)) == {"done"}
    assert recordings.get(format="egd_cxr").companion_name == "master_sheet.csv"

    for session in sessions:
        readings = Reading.objects.filter(session=session)
        assert sorted(readings.values_list("image__key", flat=True)) == sorted(
            images.values_list("key", flat=True)
        )
        for reading in readings:
            fixations = reading.fixations.all()
            assert reading.fixation_count == fixations.count() >= 10
            on_image = fixations.filter(on_image=True).count() / fixations.count()
            assert on_image >= 0.8, (reading, on_image)
            assert reading.grade in ("good", "usable")
        truth = json.loads((tmp_path / "files" / session.reader.code / "truth.json").read_text())
        assert_fixations_match_truth(session, truth)

    before = counts()
    again = make_demo_lab(*ARGS, "--user", "researcher_a")
    assert counts() == before
    assert "0 new, 6 already in the lab" in again
    assert "0 new, 2 already uploaded" in again
    assert "nothing added" in again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--images", "0"], "--images"),
        (["--readers", "x"], "--readers"),
        (["--size", "huge"], "--size"),
        (["--seed", "-1"], "--seed"),
        (["--lab", "no-such-lab"], "no lab"),
        (["--user", "nobody"], "no user"),
        (["--user", "viewer_a"], "researcher or admin"),
        (["--user", "admin_b"], "not a member"),
    ],
)
def test_bad_arguments_are_refused_clearly(personas, args, message):
    # Later flags win: each case overrides the lab or user it names.
    argv = ["--lab", "lab-a", "--user", "researcher_a", *args]
    with pytest.raises(CommandError, match=message):
        make_demo_lab(*argv)
    assert counts() == dict.fromkeys(counts(), 0)


def test_keyword_arguments_are_checked_too(personas):
    with pytest.raises(CommandError, match="--images"):
        call_command("make_demo_lab", images=0, lab="lab-a", user="researcher_a")
