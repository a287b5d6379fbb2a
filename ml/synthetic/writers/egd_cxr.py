"""EGD-CXR export: fixations.csv, eye_gaze.csv and master_sheet.csv (see SEED.md).

The 37 columns are Gazepoint's with SESSION_ID, DICOM_ID, ``Time (in secs)`` and X_ORIGINAL /
Y_ORIGINAL added. Floats carry the repr noise of the published files (0.33879000000000004), which
comes from five-decimal Gazepoint values passed through float arithmetic: we reproduce it by
writing ``repr(round(v * 1e5) * 1e-5)``. TIMETICK is written as a float ("696216388878.0"),
integer columns as integers. X_ORIGINAL / Y_ORIGINAL are the FPOG position mapped into the original
image's pixels; off the image both are -1. Every ``calibration_every``-th screen is a calibration
screen (a dot at the centre) whose DICOM_ID is absent from master_sheet.csv.

Padding columns of master_sheet.csv: the image is shown letterboxed; image_*_pad is the margin on
each side in the original image's pixels (so (x + left_pad) / (width + left_pad + right_pad) is the
fraction of the screen width).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import Reading, simulate_calibration
from ml.synthetic.writers.gazepoint import _INT_FIELDS, gazepoint_fields
from ml.synthetic.writers.truth import write_truth

__all__ = ["EGD_COLUMNS", "MASTER_SHEET_COLUMNS", "write_egd_cxr"]

EGD_COLUMNS: tuple[str, ...] = (
    "SESSION_ID",
    "MEDIA_ID",
    "DICOM_ID",
    "CNT",
    "Time (in secs)",
    "TIMETICK(f=10000000)",
    "FPOGX",
    "FPOGY",
    "FPOGS",
    "FPOGD",
    "FPOGID",
    "FPOGV",
    "BPOGX",
    "BPOGY",
    "BPOGV",
    "LPCX",
    "LPCY",
    "LPD",
    "LPS",
    "LPV",
    "RPCX",
    "RPCY",
    "RPD",
    "RPS",
    "RPV",
    "BKID",
    "BKDUR",
    "BKPMIN",
    "LPMM",
    "LPMMV",
    "RPMM",
    "RPMMV",
    "SACCADE_MAG",
    "SACCADE_DIR",
    "VID_FRAME",
    "X_ORIGINAL",
    "Y_ORIGINAL",
)

_FINDINGS = (
    "consolidation",
    "enlarged_cardiac_silhouette",
    "linear__patchy_atelectasis",
    "lobar__segmental_collapse",
    "not_otherwise_specified_opacity___pleural__parenchymal_opacity__",
    "pleural_effusion_or_thickening",
    "pulmonary_edema__hazy_opacity",
    "normal_anatomically",
    "elevated_hemidiaphragm",
    "hyperaeration",
    "vascular_redistribution",
)
_CHEXPERT = (
    "atelectasis__chx",
    "cardiomegaly__chx",
    "consolidation__chx",
    "edema__chx",
    "enlarged_cardiomediastinum__chx",
    "fracture__chx",
    "lung_lesion__chx",
    "lung_opacity__chx",
    "no_finding__chx",
    "pleural_effusion__chx",
    "pleural_other__chx",
    "pneumonia__chx",
    "pneumothorax__chx",
    "support_devices__chx",
)
MASTER_SHEET_COLUMNS: tuple[str, ...] = (
    "dicom_id",
    "path",
    "study_id",
    "patient_id",
    "stay_id",
    "gender",
    "anchor_age",
    "image_top_pad",
    "image_bottom_pad",
    "image_left_pad",
    "image_right_pad",
    *[c for i in range(1, 10) for c in (f"dx{i}", f"dx{i}_icd")],
    "normal_reports",
    "Normal",
    "CHF",
    "pneumonia",
    *_FINDINGS,
    *_CHEXPERT,
    "cxr_exam_indication",
)

_DX = {
    "CHF": [
        ("CONGESTIVE HEART FAILURE, UNSPEC", "428"),
        ("Heart failure, unspecified", "I50.9"),
        ("HYPERTENSION NOS", "401.9"),
    ],
    "Pneumonia": [
        ("Pneumonia, unspecified organism", "J18.9"),
        ("PNEUMONIA,ORGANISM NOS", "486"),
        ("Fever, unspecified", "R50.9"),
    ],
    "Normal": [
        ("Chest pain, unspecified", "R07.9"),
        ("Shortness of breath", "R06.02"),
        ("SYNCOPE AND COLLAPSE", "780.2"),
    ],
}
_INDICATIONS = {
    "CHF": [
        "___F with CHF and  shortness of breath// ?Pulmonary edema",
        "___M with hypertension, tachycardia",
        "History of CHF.  Evaluate for effusion.",
    ],
    "Pneumonia": [
        "___M with fever, cough// ?pneumonia",
        "Cough and fever.\nEval for infiltrate.",
        "___F with productive cough, r/o PNA",
    ],
    "Normal": [
        "___M with chest pain",
        "Pre-op evaluation.",
        "___F with syncope, eval for acute process",
    ],
}


def _noisy(v: float) -> str:
    """A five-decimal value with the float repr noise of the published files."""
    return repr(round(float(v) * 1e5) * 1e-5)


def _mimic_id(rng: np.random.Generator) -> str:
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, 5))


def _pads(r: Reading, convention: str = "image_px") -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the first view: original-image pixels, or screen pixels."""
    v = r.views[0]
    g = r.geometry
    s = v.scale if convention == "image_px" else 1.0
    return (
        int(round(v.screen_rect[1] / s)),
        int(round((g.screen_height_px - v.screen_rect[3]) / s)),
        int(round(v.screen_rect[0] / s)),
        int(round((g.screen_width_px - v.screen_rect[2]) / s)),
    )


def write_egd_cxr(
    readings: Sequence[Reading],
    out_dir: str | Path,
    *,
    session_id: int = 1,
    calibration_every: int = 20,
    seed: int = 0,
    pad_convention: str = "image_px",
) -> dict[str, Path]:
    """Write one EGD-CXR session: fixations.csv, eye_gaze.csv, master_sheet.csv and truth.json.

    ``pad_convention="screen_px"`` writes master_sheet.csv's pads in screen pixels and
    X_ORIGINAL/Y_ORIGINAL the way the EGD-CXR authors' processing code computes them: inside
    ``left < FPOGX * 1920 < 1920 - right`` (and likewise for y), ``X_ORIGINAL = int(w / (1920 -
    left - right) * (FPOGX * 1920 - left))``, else -1 (the image taken as filling the screen
    less its pads). The default ``"image_px"`` writes both as ``ml.gaze`` maps them
    (``ImageRect.from_padding``: pads in original-image pixels).

    Args:
        readings: image readings by one radiologist, in presentation order (all at one rate).
        out_dir: folder to write into (created).
        session_id: SESSION_ID.
        calibration_every: every n-th screen is a calibration screen (first one at MEDIA_ID 0);
            0 for none.
        seed: seeds the clock, calibration screens and master-sheet demographics.
        pad_convention: ``"image_px"`` or ``"screen_px"`` (see above).

    Returns:
        {"fixations", "eye_gaze", "master_sheet", "truth"} paths.
    """
    if pad_convention not in ("image_px", "screen_px"):
        raise ValueError(f"pad_convention must be image_px or screen_px, not {pad_convention!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, session_id, 11])
    screens: list[Reading] = []
    for r in readings:
        if calibration_every and len(screens) % calibration_every == 0:
            screens.append(
                simulate_calibration(
                    r.reader,
                    geometry=r.geometry,
                    rate_hz=r.rate_hz,
                    seed=seed + len(screens),
                    key=_mimic_id(rng),
                )
            )
        screens.append(r)

    tick0 = int(rng.integers(5 * 10**11, 9 * 10**11))
    offset = 0.0
    cnt0 = 0
    gaze_buf, fix_buf = io.StringIO(), io.StringIO()
    gaze_w = csv.writer(gaze_buf, lineterminator="\n")
    fix_w = csv.writer(fix_buf, lineterminator="\n")
    gaze_w.writerow(EGD_COLUMNS)
    fix_w.writerow(EGD_COLUMNS)
    extras = []
    for media_id, r in enumerate(screens):
        gf = gazepoint_fields(r, seed=seed + media_id)
        s = gf.samples
        W, H = r.geometry.screen_width_px, r.geometry.screen_height_px

        def original(fx: np.ndarray, fy: np.ndarray, times: np.ndarray, r=r, W=W, H=H):
            ox = np.full(fx.shape, -1, dtype=np.int64)
            oy = np.full(fx.shape, -1, dtype=np.int64)
            if pad_convention == "screen_px" and r.kind == "image":
                top, bottom, left, right = _pads(r, "screen_px")
                ex, ey = fx * W, fy * H
                inside = (ex > left) & (ex < W - right) & (ey > top) & (ey < H - bottom)
                sx = r.image_width / (W - left - right)
                sy = r.image_height / (H - top - bottom)
                ox[inside] = (sx * (ex[inside] - left)).astype(np.int64)  # int(): truncation
                oy[inside] = (sy * (ey[inside] - top)).astype(np.int64)
                return ox, oy
            which = r.view_index_at(times)
            for k, view in enumerate(r.views):
                sel = which == k
                ix, iy = view.screen_to_image(fx[sel] * W, fy[sel] * H)
                inside = (ix >= 0) & (ix < r.image_width) & (iy >= 0) & (iy < r.image_height)
                ox[np.flatnonzero(sel)[inside]] = np.floor(ix[inside]).astype(np.int64)
                oy[np.flatnonzero(sel)[inside]] = np.floor(iy[inside]).astype(np.int64)
            return ox, oy

        ox, oy = original(s["FPOGX"], s["FPOGY"], r.t)
        ticks = tick0 + np.rint((offset + r.t) * 1e7).astype(np.int64)

        def row(
            i: int,
            vals: dict,
            cnt: int,
            time: float,
            tick: int,
            o: tuple[int, int],
            r=r,
            media_id=media_id,
        ) -> list[str]:
            cells = [
                str(session_id),
                str(media_id),
                r.image_key,
                str(cnt),
                _noisy(time),
                repr(float(tick)),
            ]
            for c in EGD_COLUMNS[6:32]:
                cells.append(str(int(vals[c])) if c in _INT_FIELDS else _noisy(vals[c]))
            cells += [
                _noisy(vals.get("SACCADE_MAG", 0.0)),
                _noisy(vals.get("SACCADE_DIR", 0.0)),
                "0.0",
                str(o[0]),
                str(o[1]),
            ]
            return cells

        for i in range(r.t.size):
            gaze_w.writerow(
                row(i, {c: s[c][i] for c in s}, cnt0 + i, r.t[i], ticks[i], (ox[i], oy[i]))
            )
        fx = gf.fix
        fox, foy = original(fx["FPOGX"], fx["FPOGY"], fx["FPOGS"])
        for k in range(len(r.fixations)):
            ci = int(fx["close_index"][k])
            vals = {c: s[c][ci] for c in s}
            vals.update(
                {
                    c: fx[c][k]
                    for c in (
                        "FPOGX",
                        "FPOGY",
                        "FPOGS",
                        "FPOGD",
                        "FPOGID",
                        "FPOGV",
                        "SACCADE_MAG",
                        "SACCADE_DIR",
                    )
                }
            )
            # Time = FPOGS + FPOGD on the fixation's row, as the published files have it.
            time = round(fx["FPOGS"][k] * 1e5) * 1e-5 + round(fx["FPOGD"][k] * 1e5) * 1e-5
            fix_w.writerow(
                row(
                    ci,
                    vals,
                    cnt0 + int(fx["CNT"][k]),
                    time,
                    tick0 + int(round((offset + time) * 1e7)),
                    (fox[k], foy[k]),
                )
            )
        extras.append(
            {
                "session_id": session_id,
                "media_id": media_id,
                "first_cnt": cnt0,
                "pads_top_bottom_left_right": (
                    list(_pads(r, pad_convention)) if r.kind == "image" else None
                ),
            }
        )
        cnt0 += r.t.size
        offset += r.duration_s + 2.0

    ms_buf = io.StringIO()
    ms_w = csv.writer(ms_buf, lineterminator="\n")
    ms_w.writerow(MASTER_SHEET_COLUMNS)
    for r in screens:
        if r.kind != "image":
            continue
        ms_w.writerow(
            _master_row(
                r,
                np.random.default_rng([seed, len(r.image_key), 3, *r.image_key.encode()[:16]]),
                pad_convention,
            )
        )

    paths = {
        "fixations": out_dir / "fixations.csv",
        "eye_gaze": out_dir / "eye_gaze.csv",
        "master_sheet": out_dir / "master_sheet.csv",
    }
    paths["fixations"].write_text(fix_buf.getvalue(), encoding="utf-8")
    paths["eye_gaze"].write_text(gaze_buf.getvalue(), encoding="utf-8")
    paths["master_sheet"].write_text(ms_buf.getvalue(), encoding="utf-8")
    paths["truth"] = write_truth(
        screens,
        out_dir / "truth.json",
        fmt="egd_cxr",
        extras=extras,
        notes={
            "positions": "FPOG*/BPOG* fractions of the screen, origin top-left",
            "original": "X_ORIGINAL/Y_ORIGINAL = FPOG mapped to image pixels; -1 off the image",
            "calibration": "screens of kind 'calibration' are absent from master_sheet.csv",
            "time": "Time (in secs) restarts at each media; fixation rows: Time = FPOGS + FPOGD",
            **(
                {
                    "pads": "image_*_pad in screen pixels; X_ORIGINAL/Y_ORIGINAL as the EGD-CXR "
                    "authors' code computes them (the image filling the screen less its pads)"
                }
                if pad_convention == "screen_px"
                else {}
            ),
        },
    )
    return paths


def _master_row(r: Reading, rng: np.random.Generator, pad_convention: str) -> list[str]:
    label = r.label if r.label in _DX else "Normal"
    top, bottom, left, right = _pads(r, pad_convention)
    patient = int(rng.integers(10_000_000, 20_000_000))
    study = int(rng.integers(50_000_000, 60_000_000))
    dxs = [_DX[label][int(i)] for i in rng.permutation(len(_DX[label]))[: int(rng.integers(1, 4))]]
    dx_cells = []
    for i in range(9):
        dx_cells += list(dxs[i]) if i < len(dxs) else ["", ""]
    decade = int(rng.integers(2, 9)) * 10
    findings = dict.fromkeys(_FINDINGS, "0")
    chx = dict.fromkeys(_CHEXPERT, "")
    if label == "CHF":
        findings.update(
            enlarged_cardiac_silhouette="1",
            pulmonary_edema__hazy_opacity="1",
            pleural_effusion_or_thickening="1",
        )
        chx.update(
            cardiomegaly__chx="1",
            edema__chx=str(int(rng.choice([1, -1]))),
            pleural_effusion__chx="1",
        )
    elif label == "Pneumonia":
        findings.update(consolidation="1")
        chx.update(
            pneumonia__chx=str(int(rng.choice([1, -1]))),
            consolidation__chx="1",
            lung_opacity__chx="1",
        )
    else:
        findings.update(normal_anatomically="1")
        chx.update(no_finding__chx="1")
    indication = _INDICATIONS[label][int(rng.integers(len(_INDICATIONS[label])))]
    return [
        r.image_key,
        f"files/p{str(patient)[:2]}/p{patient}/s{study}/{r.image_key}.dcm",
        str(study),
        str(patient),
        str(int(rng.integers(30_000_000, 40_000_000))),
        str(rng.choice(["F", "M"])),
        f"{decade} - {decade + 10}",
        str(top),
        str(bottom),
        str(left),
        str(right),
        *dx_cells,
        "1" if label == "Normal" else "0",
        "1" if label == "Normal" else "0",
        "1" if label == "CHF" else "0",
        "1" if label == "Pneumonia" else "0",
        *findings.values(),
        *chx.values(),
        indication,
    ]
