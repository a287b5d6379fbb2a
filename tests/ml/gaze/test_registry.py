"""The format registry: each spec says truly what its reader takes, companions point both ways,
and refused formats are refused with their spec's message."""

from __future__ import annotations

import inspect

import pytest

from ml.gaze import FORMATS, FormatSpec, GazeFormatError, read_recording
from ml.gaze.formats import SCREEN_OPTION, detect_format
from ml.gaze.formats.registry import companion_formats, upload_options

READ = [s for s in FORMATS.values() if s.read is not None]
REFUSED = [s for s in FORMATS.values() if s.refused]


@pytest.mark.parametrize("spec", READ, ids=lambda s: s.name)
def test_options_are_the_readers_keyword_options(spec: FormatSpec) -> None:
    params = inspect.signature(spec.read).parameters.values()
    assert {p.name for p in params if p.kind is p.KEYWORD_ONLY} == spec.options
    assert spec.read.__module__ == f"ml.gaze.formats.{spec.family}"


def test_every_format_is_read_or_refused_and_companions_point_both_ways() -> None:
    assert {s.name for s in READ} | {s.name for s in REFUSED} == set(FORMATS)
    assert all(name == spec.name for name, spec in FORMATS.items())
    assert companion_formats() == {
        "egd_cxr_master_sheet": "egd_cxr",
        "reflacx_metadata": "reflacx",
        "neon_sections": "neon",
    }
    for companion, described in companion_formats().items():
        assert FORMATS[companion].refused  # alone, a companion is no gaze data
        assert FORMATS[described].companion is not None
    assert {s.name: s.companion for s in READ if s.companion} == {
        "egd_cxr": "master_sheet",
        "reflacx": "metadata",
        "neon": "sections",
    }
    assert {s.name for s in READ if s.takes_screen_size} == {
        "eyelink_asc", "eyelink_dataviewer_report", "tobii_pro_lab_tsv", "tobii_studio_tsv",
        "gazepoint", "generic_csv",
    }  # fmt: skip


def test_upload_options_leave_out_the_screen_and_the_companions() -> None:
    assert upload_options() == {
        "time_unit", "space", "columns", "duration_unit", "delimiter", "kind", "eye",
        "trial_var", "stimulus_column", "reading_id", "min_confidence",
    }  # fmt: skip
    assert SCREEN_OPTION not in upload_options()


def test_a_spec_is_checked() -> None:
    with pytest.raises(ValueError, match="either read or refused"):
        FormatSpec("x", "generic")
    with pytest.raises(ValueError, match="companion option"):
        FormatSpec("x", "generic", read=print, companion="sheet")
    with pytest.raises(ValueError, match="required options"):
        FormatSpec("x", "generic", read=print, required=frozenset({"unit"}))


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"SR_RESEARCH\x00\x00", "eyelink_edf"),
        (b"Gazepoint Analysis Data Summary\nAOI,Viewers\n", "gazepoint_summary"),
        (b"dicom_id,image_top_pad,image_bottom_pad\nabc,0,0\n", "egd_cxr_master_sheet"),
        (b"id,dicom_id,eye_tracking_data_discarded\nP1,abc,False\n", "reflacx_metadata"),
        (b"section id,recording id,gaze x [px],gaze y [px]\n1,2,3,4\n", "neon_scene_camera"),
        (b"section id,recording id,start event name\n1,2,a\n", "neon_companion"),
        (b"section id,recording id,section start time [ns],section end time [ns]\n1,2,3,4\n",
         "neon_sections"),
    ],
)
def test_refused_formats_are_refused_with_their_message(tmp_path, content, name) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    assert detect_format(path) == name
    with pytest.raises(GazeFormatError) as refused:
        read_recording(path)
    assert str(refused.value) == f"{path}: {FORMATS[name].refusal}"


def test_options_a_reader_does_not_take_are_refused(tmp_path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("time,x,y\n0,1,2\n1,2,3\n")
    with pytest.raises(GazeFormatError, match=r"not understood by the generic_csv reader: eye \("):
        read_recording(path, format="generic_csv", time_unit="ms", space="image_px", eye="left")
    rec = read_recording(path, format="generic_csv", time_unit="ms", space="image_px")
    assert len(rec.samples) == 2
