"""The vectorised CSV path (``CsvChunks.chunks(fast=True)``), with pyarrow converting and with
numpy converting, gives exactly what the csv-module path gives, on real Gazepoint exports and
synthetic EGD-CXR files, and refuses bad input with the same messages and line numbers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from ml.gaze import GazeFormatError, read_recording
from ml.gaze.formats import _csv
from ml.gaze.formats._csv import ArrowColumns, ByteCells, CodedCells, CsvChunks
from ml.gaze.formats._labels import Labels
from ml.gaze.formats._numbers import floats
from ml.gaze.formats._text import MAX_LINE_CHARS
from ml.gaze.quality import quality_report
from ml.synthetic import Radiologist, make_phantom, simulate_reading
from ml.synthetic.writers import write_egd_cxr
from tests.shared_formats import FORMATS_DIR, needs

GAZEPOINT_FILES = (
    "gazepoint_csv/DEV_TheD2Lab_User1_all_gaze_first300.csv",
    "gazepoint_csv/DEV_TheD2Lab_User1_fixations.csv",
    "gazepoint_csv/EDGE_TheD2Lab_test_all_gaze_excel_resaved_first40.csv",
)


def assert_same(a, b, where: str = "rec") -> None:
    """Deep equality of two read recordings (arrays exactly, NaN equal to NaN)."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def read_both(path: Path, monkeypatch, **kw):
    """(fast, careful) readings of one file."""
    fast = read_recording(str(path), **kw)
    with monkeypatch.context() as m:
        m.setattr(_csv, "FAST_CSV", False)
        slow = read_recording(str(path), **kw)
    return fast, slow


def error_both(path: Path, monkeypatch) -> tuple[str, str]:
    """The refusal messages of both paths."""
    with pytest.raises(GazeFormatError) as fast:
        read_recording(str(path))
    with monkeypatch.context() as m:
        m.setattr(_csv, "FAST_CSV", False)
        with pytest.raises(GazeFormatError) as slow:
            read_recording(str(path))
    return str(fast.value), str(slow.value)


@pytest.fixture(scope="module")
def egd(tmp_path_factory) -> dict[str, Path]:
    """A synthetic EGD-CXR session: three images by one radiologist, calibration screens."""
    reader = Radiologist(name="R1", n_fixations=12)
    readings = [
        simulate_reading(
            make_phantom(label, seed=i + 1, height=300, width=250),
            reader,
            rate_hz=60,
            seed=i,
            image_key=f"{i:08x}-cafe0000-00000000-00000000-{label.lower():0>8}",
        )
        for i, label in enumerate(("CHF", "Pneumonia", "Normal"))
    ]
    return write_egd_cxr(readings, tmp_path_factory.mktemp("egd"), calibration_every=2)


@pytest.fixture(autouse=True, params=["arrow", "numpy"])
def engine(request, monkeypatch) -> str:
    """Every test runs with the fast path converting with pyarrow, then with numpy."""
    monkeypatch.setattr(_csv, "ARROW_CSV", request.param == "arrow")
    return request.param


@pytest.fixture
def small_blocks(monkeypatch):
    """Byte blocks of 4 KiB, so that a small file spans many blocks."""
    monkeypatch.setattr(_csv, "FAST_BLOCK_BYTES", 4096)


def test_fast_path_is_taken(egd, engine) -> None:
    with CsvChunks(str(egd["eye_gaze"])) as r:
        columns, lines = next(r.chunks(fast=True))
    assert isinstance(columns[r.index["DICOM_ID"]], ByteCells)
    assert lines[0] == 2 and lines.dtype == np.int64
    with CsvChunks(str(egd["eye_gaze"])) as r:
        columns, lines = next(
            r.chunks(fast=True, numeric=["FPOGX", "nope", None], text=["DICOM_ID"])
        )
    assert lines[0] == 2 and lines.dtype == np.int64
    if engine == "arrow":
        assert isinstance(columns, ArrowColumns)
        assert isinstance(columns[r.index["DICOM_ID"]], CodedCells)
        assert columns[r.index["FPOGX"]].dtype == np.float64
        with pytest.raises(KeyError, match="not asked for"):
            columns[r.index["FPOGY"]]
    else:
        assert isinstance(columns[r.index["DICOM_ID"]], ByteCells)


def test_careful_path_is_taken_without_fast_csv(egd, monkeypatch) -> None:
    """With ``FAST_CSV`` off (as :func:`read_both` sets it) chunks come from the csv module."""
    monkeypatch.setattr(_csv, "FAST_CSV", False)
    with CsvChunks(str(egd["eye_gaze"])) as r:
        columns, lines = next(r.chunks(fast=True, numeric=["FPOGX"], text=["DICOM_ID"]))
    assert isinstance(columns, list) and isinstance(columns[r.index["DICOM_ID"]], tuple)
    assert not isinstance(lines, np.ndarray)


def test_arrow_floats_match_float(tmp_path, engine) -> None:
    """pyarrow's float parse is correctly rounded: the same float64 as Python's ``float``."""
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [
            rng.standard_normal(4000) * 10.0 ** rng.integers(-30, 30, 4000),
            rng.uniform(0, 1, 4000),
            np.round(rng.uniform(0, 1, 4000) * 1e5) * 1e-5,  # Gazepoint's repr noise
            rng.integers(-(2**53), 2**53, 2000).astype(float),
            [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, -0.0, 1e23],
        ]
    )
    xs = x.tolist()
    cells = [repr(v) for v in xs]
    cells += [f"{v:.17g}" for v in xs[:4000]] + [f"{v:.20e}" for v in xs[:2000]]
    cells += [f"{v:.3f}" for v in xs[4000:6000]] + [f"{v:.25f}" for v in xs[4000:5000]]
    cells += ["".join(rng.choice(list("0123456789"), 30)) + "." + "9" * 25 for _ in range(500)]
    cells += ["1e-400", "4.9e-324", "2.4703282292062328e-324", "+.5", "1.", "-0", "1E+05", ""]
    path = tmp_path / "floats.csv"
    path.write_text("a,b\n" + "".join(f"{c},x\n" for c in cells), encoding="utf-8")
    with CsvChunks(str(path)) as r:
        ((columns, lines),) = list(r.chunks(fast=True, numeric=["a"], text=["b"]))
        got = floats(columns[0], path=str(path), lines=lines, column="a")
    assert isinstance(columns, ArrowColumns) == (engine == "arrow")
    want = np.array([float(c) if c else math.nan for c in cells])
    np.testing.assert_array_equal(got, want)
    assert (np.signbit(got) == np.signbit(want)).all()


def test_over_long_line_never_reaches_pyarrow(egd, tmp_path, monkeypatch, small_blocks) -> None:
    seen: list[int] = []
    arrow_block = CsvChunks._arrow_block

    def spy(self, data, m, *args, **kwargs):
        seen.append(max(len(ln) for ln in data[:m].split(b"\n")))
        return arrow_block(self, data, m, *args, **kwargs)

    monkeypatch.setattr(CsvChunks, "_arrow_block", spy)

    def edit(lines: list[str]) -> list[str]:
        k = len(lines) // 2
        cells = lines[k].split(",")
        cells[7] = "1" * (MAX_LINE_CHARS * 3)
        return [*lines[:k], ",".join(cells), *lines[k + 1 :]]

    path = _rewrite(egd["eye_gaze"], tmp_path / "eye_gaze.csv", edit)
    fast, slow = error_both(path, monkeypatch)
    assert fast == slow and "longer than" in fast
    assert max(seen, default=0) < MAX_LINE_CHARS


@pytest.mark.parametrize("blocks", ["default", "small"])
@pytest.mark.parametrize("name", ["eye_gaze", "fixations"])
def test_egd_cxr_same_as_careful_path(egd, name, blocks, monkeypatch, request) -> None:
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    fast, slow = read_both(egd[name], monkeypatch, master_sheet=str(egd["master_sheet"]))
    assert len(fast.stimuli) > 3
    assert_same(fast, slow)
    assert_same(quality_report(fast).as_dict(), quality_report(slow).as_dict())


@needs(FORMATS_DIR)
@pytest.mark.parametrize("rel", GAZEPOINT_FILES)
def test_real_gazepoint_same_as_careful_path(rel, monkeypatch, small_blocks) -> None:
    fast, slow = read_both(FORMATS_DIR / rel, monkeypatch, screen_size_px=(1920, 1080))
    assert_same(fast, slow)


def _rewrite(src: Path, dst: Path, edit) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    dst.write_text("".join(edit(lines)), encoding="utf-8", newline="")
    return dst


@pytest.mark.parametrize(
    "variant",
    [
        "crlf",
        "bom",
        "blank_lines",
        "crlf_blank_lines",
        "no_final_newline",
        "quoted_late",
        "blank_cells",
        "nan_cells",
        "na_markers",
        "inf_cells",
        "spaced_cells",
        "underscore_cells",
        "short_rows",
        "trailing_empty_fields",
    ],
)
def test_variants_same_as_careful_path(egd, variant, tmp_path, monkeypatch, small_blocks) -> None:
    def edit(lines: list[str]) -> list[str]:
        if variant == "crlf":
            return [ln.replace("\n", "\r\n") for ln in lines]
        if variant == "bom":
            return ["\ufeff" + lines[0], *lines[1:]]
        if variant == "blank_lines":
            return [ln + ("\n" if i % 37 == 5 else "") for i, ln in enumerate(lines)]
        if variant == "crlf_blank_lines":
            return [(ln + ("\n" if i % 37 == 5 else "")).replace("\n", "\r\n")
                    for i, ln in enumerate(lines)]  # fmt: skip
        if variant == "short_rows":  # padded with blanks by the careful path
            return [",".join(ln.split(",")[:30]) + "\n" if i and i % 53 == 7 else ln
                    for i, ln in enumerate(lines)]  # fmt: skip
        if variant == "trailing_empty_fields":  # trimmed by the careful path
            return [ln.rstrip("\n") + ",,\n" if i and i % 53 == 7 else ln
                    for i, ln in enumerate(lines)]  # fmt: skip
        if variant == "no_final_newline":
            return [*lines[:-1], lines[-1].rstrip("\n")]
        if variant == "quoted_late":  # quotes take the rest to the csv module
            k = len(lines) - 5
            cells = lines[k].split(",")
            cells[2] = f'"{cells[2]}"'
            return [*lines[:k], ",".join(cells), *lines[k + 1 :]]
        cells_at = 12 if variant == "blank_cells" else 13  # BPOGX / BPOGY
        value = {
            "blank_cells": lambda i: "",
            "nan_cells": lambda i: "nan",
            "na_markers": lambda i: ("NA", "N/A", "null", "None", ".", "NaN")[i % 6],
            "inf_cells": lambda i: ("inf", "-Infinity", "1e999")[i % 3],
            "spaced_cells": lambda i: " 0.25 ",
            "underscore_cells": lambda i: "1_0",
        }[variant]
        out = []
        for i, ln in enumerate(lines):
            if i and i % 11 == 0:
                cells = ln.split(",")
                cells[cells_at] = value(i)
                ln = ",".join(cells)
            out.append(ln)
        return out

    path = _rewrite(egd["eye_gaze"], tmp_path / "eye_gaze.csv", edit)
    fast, slow = read_both(path, monkeypatch)
    assert_same(fast, slow)


@pytest.mark.parametrize("where", ["early", "late"])
@pytest.mark.parametrize(
    "bad", ["ragged", "long_row", "not_a_number", "decimal_comma", "over_long_line", "backwards"]
)
def test_bad_input_refused_the_same(egd, bad, where, tmp_path, monkeypatch, small_blocks) -> None:
    def edit(lines: list[str]) -> list[str]:
        k = 3 if where == "early" else len(lines) - 4
        cells = lines[k].rstrip("\n").split(",")
        if bad == "ragged":  # shorter rows are padded: a row with extra fields is refused
            cells = [*cells, "1", "2"]
        elif bad == "long_row":
            cells = [*cells, *["9"] * 40]
        elif bad == "not_a_number":
            cells[7] = "0.4x2"
        elif bad == "decimal_comma":  # a quoted decimal comma is read, as before
            cells[7] = '"0,25"'
        elif bad == "over_long_line":
            cells[7] = "1" * (MAX_LINE_CHARS + 10)
        elif bad == "backwards":
            cells[5] = "1.0"
        return [*lines[:k], ",".join(cells) + "\n", *lines[k + 1 :]]

    path = _rewrite(egd["eye_gaze"], tmp_path / "eye_gaze.csv", edit)
    if bad == "decimal_comma":
        fast, slow = read_both(path, monkeypatch)
        assert_same(fast, slow)
        return
    fast, slow = error_both(path, monkeypatch)
    assert fast == slow
    assert "line" in fast


def test_floats_bytecells_match_float() -> None:
    cells = [b"0.33879000000000004", b"", b"-1", b"1e-5", b"+.5", b"696216388878.0", b"7"]
    got = floats(ByteCells(np.array(cells), "utf-8"), path="p", lines=np.arange(7), column="c")
    want = [float(c) if c else math.nan for c in cells]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(GazeFormatError, match=r"line 12, column 'c': '1-2x'"):
        floats(ByteCells(np.array([b"1", b"1-2x"]), "utf-8"), path="p", lines=[11, 12], column="c")
    nas = floats(ByteCells(np.array([b"NA", b"1,5", b" 2"]), "utf-8"), path="p", lines=[1, 2, 3],
                 column="c")  # fmt: skip
    np.testing.assert_array_equal(nas, [math.nan, 1.5, 2.0])


def test_labels_runs_bytecells_match_strings() -> None:
    names = ["a", "a", "", "b", "b", "a", "a", " ", "c"]
    sess = ["1", "1", "1", "1", "2", "2", "2", "2", "2"]
    t = np.arange(len(names), dtype=float) * 10
    outs = []
    for wrap in (tuple, lambda v: ByteCells(np.array([s.encode() for s in v]), "utf-8")):
        lab = Labels()
        half = 4
        a = lab.runs(wrap(names[:half]), t[:half], 1.0, "X", session=wrap(sess[:half]))
        b = lab.runs(wrap(names[half:]), t[half:], 1.0, "X", session=wrap(sess[half:]))
        outs.append((np.r_[a, b], lab.stimuli))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    assert_same(outs[0][1], outs[1][1])


def test_rows_by_stimulus_and_quality_rows(egd) -> None:
    from ml.gaze.quality import RowsByStimulus

    rec = read_recording(str(egd["eye_gaze"]), master_sheet=str(egd["master_sheet"]))
    s, fx = rec.samples, rec.fixations
    stim = s.stimulus.copy()
    stim[::50] = -1  # rows outside every stimulus
    by = RowsByStimulus(stim, len(rec.stimuli))
    n = len(rec.stimuli)
    for idxs in ([0], [1, 3], [n - 1, 0], list(range(n))):
        np.testing.assert_array_equal(by.rows(idxs), np.flatnonzero(np.isin(stim, idxs)))
    s_rows = RowsByStimulus(s.stimulus, n)
    f_rows = RowsByStimulus(fx.stimulus, n)
    for i in range(n):
        plain = quality_report(rec, stimulus=i, fixations=fx).as_dict()
        fast = quality_report(
            rec, stimulus=i, fixations=fx, sample_rows=s_rows.rows(i), fixation_rows=f_rows.rows(i)
        ).as_dict()
        assert_same(fast, plain)
