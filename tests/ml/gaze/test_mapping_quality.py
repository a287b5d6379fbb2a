"""Screen-to-image mapping (letterbox, padding, viewer rectangles), stimulus matching, quality,
and synthetic EGD-CXR / REFLACX files plus bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ml.gaze import (
    GazeFormatError,
    ImageRect,
    QualityThresholds,
    Stimulus,
    detect_format,
    map_to_image,
    map_viewer_rects,
    match_stimuli,
    quality_report,
    read_recording,
)
from ml.synthetic.writers import EGD_COLUMNS


def test_letterbox_fit_and_padding_agree() -> None:
    screen, image = (1920, 1080), (2544, 3056)  # a portrait CXR on a landscape screen
    rect = ImageRect.fit(screen, image)
    assert rect.top == 0 and rect.height == 1080
    # EGD-CXR's pads are original-image pixels: the padded image has the screen's shape.
    pad = (image[1] * 1920 / 1080 - image[0]) / 2
    same = ImageRect.from_padding(screen, image, top=0, bottom=0, left=pad, right=pad)
    assert (same.left, same.top, same.width, same.height) == pytest.approx(
        (rect.left, rect.top, rect.width, rect.height)
    )
    sx = np.array([rect.left, rect.left + rect.width / 2, 10.0])
    sy = np.array([0.0, 540.0, 540.0])
    pts = map_to_image(sx, sy, space="screen_px", image_size=image, rect=rect)
    np.testing.assert_allclose(pts.x[:2], [0.0, image[0] / 2], atol=1e-9)
    np.testing.assert_allclose(pts.y[:2], [0.0, image[1] / 2], atol=1e-9)
    assert pts.on_image.tolist() == [True, True, False]
    assert pts.x[2] < 0  # off-image points keep their coordinates
    norm = map_to_image(
        sx / 1920, sy / 1080, space="screen_norm", image_size=image, rect=rect, screen_px=screen
    )
    np.testing.assert_allclose(norm.x, pts.x, atol=1e-6)


def test_egd_cxr_pads_are_original_image_pixels() -> None:
    # X_ORIGINAL = FPOGX * (w + left + right) - left, whatever the pads' size on screen.
    screen, image = (1920, 1080), (2000, 2500)
    left, right, top, bottom = 1500.0, 944.4444444444443, 0.0, 0.0
    rect = ImageRect.from_padding(screen, image, top=top, bottom=bottom, left=left, right=right)
    fx = np.array([0.0, 0.5, 0.9])
    pts = map_to_image(
        fx, np.full(3, 0.5), space="screen_norm", image_size=image, rect=rect, screen_px=screen
    )
    np.testing.assert_allclose(pts.x, fx * (image[0] + left + right) - left, atol=1e-6)
    np.testing.assert_allclose(pts.y, 0.5 * image[1], atol=1e-6)
    assert pts.on_image.tolist() == [False, True, False]
    with pytest.raises(ValueError):
        ImageRect.from_padding(screen, image, top=-1, bottom=0, left=0, right=0)


def test_viewer_rectangles_zoom_and_pan() -> None:
    # The reader zoomed 2x into the image's top-left quarter, drawn on screen at (100, 50).
    shown = (np.array([0.0]), np.array([0.0]), np.array([1000.0]), np.array([800.0]))
    screen = (
        np.array([100.0]),
        np.array([50.0]),
        np.array([1100.0 + 1000]),
        np.array([50.0 + 1600]),
    )
    pts, in_view = map_viewer_rects(
        np.array([1100.0]), np.array([850.0]), shown, screen, (2000, 1600)
    )
    np.testing.assert_allclose([pts.x[0], pts.y[0]], [500.0, 400.0])
    assert in_view[0] and pts.on_image[0]


def test_placement_center_and_unmappable_spaces() -> None:
    rect = ImageRect.from_placement({"anchor": "center", "x": 960, "y": 540}, (800, 600))
    assert (rect.left, rect.top, rect.width, rect.height) == (560, 240, 800, 600)
    with pytest.raises(GazeFormatError, match="surface tracking"):
        map_to_image(np.zeros(1), np.zeros(1), space="camera_norm", image_size=(2, 2))


def test_match_stimuli_reports_unmatched_names() -> None:
    stims = [
        Stimulus("../img/abc123.png", "abc123", 0, 1, "IMGLOAD"),
        Stimulus("XYZ", "XYZ", 1, 2, "MEDIA_NAME"),
        Stimulus("nope", "nope", 2, 3, "TRIALID"),
        Stimulus("nope", "nope", 3, 4, "TRIALID"),
    ]
    m = match_stimuli(stims, {"abc123", "xyz"})
    assert m.matched == {0: "abc123", 1: "xyz"}
    assert m.unmatched == ["nope"]


def _write_egd(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A synthetic eye_gaze.csv: two images of one session, 60 Hz, one off-image sample."""
    rows = []
    tick, cnt = 10_000_000_000, 0
    truth = {"img_a": [], "img_b": []}
    for media, dicom in enumerate(["img_a", "img_b", "calib_1"]):
        for i in range(30):
            x, y = 0.3 + 0.01 * (i // 10), 0.4
            if dicom == "img_b" and i == 29:
                x = -0.2
            xo = -1 if x < 0.2 else int((x * 1920 - 420) * 2)
            rows.append(
                [
                    "s1",
                    media,
                    dicom,
                    cnt,
                    f"{i / 60:.5f}",
                    tick,
                    x,
                    y,
                    0.0,
                    0.1,
                    i // 10 + 1,
                    1,
                    x,
                    y,
                    1,
                    *[0] * 10,
                    0,
                    0,
                    0,
                    3.5,
                    1,
                    3.6,
                    1,
                    0,
                    0,
                    0,
                    xo,
                    100,
                ]
            )
            if dicom in truth:
                truth[dicom].append(xo)
            tick += 166_667
            cnt += 1
    gaze = tmp_path / "eye_gaze.csv"
    with open(gaze, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(EGD_COLUMNS)
        w.writerows(rows)
    sheet = tmp_path / "master_sheet.csv"
    with open(sheet, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "dicom_id",
                "path",
                "image_top_pad",
                "image_bottom_pad",
                "image_left_pad",
                "image_right_pad",
                "cxr_exam_indication",
            ]
        )
        for d in ("img_a", "img_b"):
            w.writerow([d, f"files/{d}.dcm", 0, 0, 420, 420, "cough, fever\nsecond line"])
    return gaze, sheet, truth


def test_egd_cxr_synthetic_with_master_sheet(tmp_path: Path) -> None:
    gaze, sheet, truth = _write_egd(tmp_path)
    assert detect_format(gaze) == "egd_cxr"
    rec = read_recording(gaze, master_sheet=str(sheet))
    assert rec.format == "egd_cxr_eye_gaze" and len(rec.samples) == 90
    assert [s.key for s in rec.stimuli] == ["img_a", "img_b", "calib_1"]
    assert rec.stimuli[2].source == "calibration"
    assert rec.screen_size_px == (1920, 1080)
    b = 1
    rect = ImageRect.from_placement(rec.stimuli[b].placement, (2160, 2160), rec.screen_size_px)
    sel = rec.samples.stimulus == b
    pts = map_to_image(
        rec.samples.x[sel],
        rec.samples.y[sel],
        space="screen_norm",
        image_size=(2160, 2160),
        rect=rect,
        screen_px=rec.screen_size_px,
    )
    on = rec.samples.extra["x_original"][sel] >= 0
    np.testing.assert_array_equal(pts.on_image, on)
    np.testing.assert_allclose(pts.x[on], rec.samples.extra["x_original"][sel][on], atol=1)
    assert len(rec.fixations) == 9  # three FPOGIDs per media
    q = quality_report(
        rec, stimulus=b, on_image=pts.on_image, thresholds=QualityThresholds(good_on_image_pct=99.0)
    )
    assert q.on_image_pct == pytest.approx(100 * 29 / 30)
    assert q.grade == "usable" and q.fixation_count == 3
    np.testing.assert_allclose(rec.sampling_rate_measured_hz, 60.0, rtol=1e-3)


def test_reflacx_synthetic(tmp_path: Path) -> None:
    cols = (
        "timestamp_start_fixation,timestamp_end_fixation,x_position,y_position,"
        "pupil_area_normalized,angular_resolution_x_pixels_per_degree,"
        "angular_resolution_y_pixels_per_degree,window_width,window_level,"
        "xmin_shown_from_image,ymin_shown_from_image,xmax_shown_from_image,"
        "ymax_shown_from_image,xmin_in_screen_coordinates,ymin_in_screen_coordinates,"
        "xmax_in_screen_coordinates,ymax_in_screen_coordinates"
    )
    folder = tmp_path / "P102R108"
    folder.mkdir()
    path = folder / "fixations.csv"
    path.write_text(
        cols + "\n0.5,0.75,1200.5,900,0.3,48.2,48.3,4096,2048,0,0,2544,3056,"
        "560,0,1840,1080\n1.0,1.3,1300,950,0.3,48.2,48.3,4096,2048,0,0,2544,3056,"
        "560,0,1840,1080\n"
    )
    meta = tmp_path / "metadata_phase_3.csv"
    meta.write_text(
        "id,split,eye_tracking_data_discarded,image,dicom_id,subject_id,"
        "image_size_x,image_size_y\nP102R108,test,False,x.jpg,d123,1,2544,3056\n"
    )
    rec = read_recording(path, metadata=str(meta))
    assert rec.fixations.space == "image_px"
    np.testing.assert_allclose(rec.fixations.start_ms, [500, 1000])
    np.testing.assert_allclose(rec.fixations.duration_ms, [250, 300])
    assert rec.stimuli[0].key == "d123" and rec.meta["image_size"] == (2544, 3056)
    np.testing.assert_allclose(
        rec.fixations.extra["angular_resolution_x_pixels_per_degree"], [48.2, 48.2]
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary junk\xff" * 20, "binary"),
        (b"hello world\n", "unrecognised"),
        (b"time,x,y\n0,1,2\n5,1,2\n3,1,2\n", "time runs backwards"),
        (b"time,x,y\n0,1,2\n1,abc,2\n", "not a number"),
        (b"time,x,y\n0,1,2,9\n", "4 fields"),
        (b"time,x,y\n" + b"1" * (1 << 21) + b"\n", "longer than"),
    ],
)
def test_bad_input_is_refused_with_file_and_line(
    tmp_path: Path, content: bytes, match: str
) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(GazeFormatError, match=match) as e:
        read_recording(path, time_unit="ms", space="screen_px")
    assert str(path) in str(e.value)
    if match in ("time runs backwards", "not a number", "4 fields"):
        assert "line " in str(e.value)


def test_asc_time_running_backwards_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "edited.asc"
    path.write_text(
        "** CONVERTED FROM x.edf\nSTART\t100 \tLEFT\tSAMPLES\tEVENTS\n"
        "SAMPLES\tGAZE\tLEFT\tRATE\t1000.00\n100\t1.0\t2.0\t300.0\t...\n"
        "101\t1.0\t2.0\t300.0\t...\n99\t1.0\t2.0\t300.0\t...\nEND\t102\n"
    )
    with pytest.raises(GazeFormatError, match="line 6.*time runs backwards"):
        read_recording(path)


def _asc_with_messages(tmp_path: Path, messages: str) -> Path:
    path = tmp_path / "messages.asc"
    path.write_text(
        "** CONVERTED FROM x.edf\nSTART\t100 \tLEFT\tSAMPLES\tEVENTS\n"
        "SAMPLES\tGAZE\tLEFT\tRATE\t1000.00\n" + messages
        + "".join(f"{t}\t1.0\t2.0\t300.0\t...\n" for t in range(100, 140)) + "END\t140\n"
    )  # fmt: skip
    return path


def test_an_offset_message_is_not_out_of_order(tmp_path: Path) -> None:
    """``MSG t -8 !V IMGLOAD`` (Experiment Builder: the image shows 8 ms after the message) puts
    its event after the next message's; the file is in order by the times messages were
    logged, so there is no warning, and the event keeps its own time."""
    rec = read_recording(_asc_with_messages(
        tmp_path, "MSG\t100 -8 !V IMGLOAD FILL img.png\nMSG\t104 TRIALID 1\n"
    ))  # fmt: skip
    assert not [w for w in rec.warnings if "earlier than a preceding message" in w]
    assert (108.0, "!V IMGLOAD FILL img.png") in rec.messages


def test_messages_logged_out_of_order_are_reported(tmp_path: Path) -> None:
    rec = read_recording(_asc_with_messages(
        tmp_path, "MSG\t110 TRIALID 1\nMSG\t104 TRIALID 2\n"
    ))  # fmt: skip
    assert any("1 message(s) earlier than a preceding message" in w for w in rec.warnings)
