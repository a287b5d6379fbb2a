"""REFLACX export: per reading main_data/<id>/fixations.csv and gaze_data/<id>/gaze.csv, plus
main_data/metadata_phase_<n>.csv, anomaly_location_ellipses.csv and chest_bounding_box.csv.

Positions are already in image pixels (mapped through the view shown at that moment), each row
carries the viewer's rectangles (the part of the image shown and where it was drawn, which change
when the reader zooms or pans), the window, and the angular resolution in image pixels per degree
at that point. Times are seconds from the start of the dictation audio, which starts
``audio_offset_s`` before the first sample (recorded in truth.json). Lost samples have empty cells.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.synthetic.radiologist import Reading
from ml.synthetic.writers.truth import fixation_measured_positions, write_truth

__all__ = ["REFLACX_FIXATION_COLUMNS", "REFLACX_LABELS", "write_reflacx"]

_COMMON = (
    "x_position",
    "y_position",
    "pupil_area_normalized",
    "angular_resolution_x_pixels_per_degree",
    "angular_resolution_y_pixels_per_degree",
    "window_width",
    "window_level",
    "xmin_shown_from_image",
    "ymin_shown_from_image",
    "xmax_shown_from_image",
    "ymax_shown_from_image",
    "xmin_in_screen_coordinates",
    "ymin_in_screen_coordinates",
    "xmax_in_screen_coordinates",
    "ymax_in_screen_coordinates",
)
REFLACX_FIXATION_COLUMNS = ("timestamp_start_fixation", "timestamp_end_fixation", *_COMMON)
REFLACX_GAZE_COLUMNS = ("timestamp_sample", *_COMMON)
REFLACX_LABELS = {
    1: (
        "Airway wall thickening",
        "Atelectasis",
        "Consolidation",
        "Emphysema",
        "Enlarged cardiac silhouette",
        "Fibrosis",
        "Fracture",
        "Groundglass opacity",
        "Mass",
        "Nodule",
        "Other",
        "Pleural effusion",
        "Pleural thickening",
        "Pneumothorax",
        "Pulmonary edema",
        "Quality issue",
        "Support devices",
        "Wide mediastinum",
    ),
    3: (
        "Abnormal mediastinal contour",
        "Acute fracture",
        "Atelectasis",
        "Consolidation",
        "Enlarged cardiac silhouette",
        "Enlarged hilum",
        "Groundglass opacity",
        "Hiatal hernia",
        "High lung volume / emphysema",
        "Interstitial lung disease",
        "Lung nodule or mass",
        "Pleural abnormality",
        "Pneumothorax",
        "Pulmonary edema",
        "Quality issue",
        "Support devices",
        "Other",
    ),
}
REFLACX_LABELS[2] = REFLACX_LABELS[1]
_POSITIVE = {
    "CHF": (
        "Enlarged cardiac silhouette",
        "Pulmonary edema",
        "Pleural effusion",
        "Pleural abnormality",
    ),
    "Pneumonia": ("Consolidation",),
}


def _view_cells(r: Reading, view_index: int, x_screen: float, y_screen: float) -> list[str]:
    v = r.views[view_index]
    ppd = r.geometry.pixels_per_degree(x_screen, y_screen)
    return [
        repr(ppd[0] / v.scale),
        repr(ppd[1] / v.scale),
        repr(float(v.window_width)),
        repr(float(v.window_level)),
        *(str(int(round(c))) for c in v.image_rect),
        *(str(int(round(c))) for c in v.screen_rect),
    ]


def write_reflacx(
    readings: Sequence[Reading],
    out_dir: str | Path,
    *,
    phase: int = 1,
    seed: int = 0,
) -> dict[str, Path]:
    """Write readings in REFLACX's layout.

    Args:
        readings: the readings (any readers, any images).
        out_dir: the dataset root (main_data/ and gaze_data/ are created in it).
        phase: 1, 2 or 3 (selects the label columns of metadata_phase_<phase>.csv).
        seed: seeds the ids, audio offsets and label certainties.

    Returns:
        {"metadata": path, "truth": path} plus "<id>/fixations" and "<id>/gaze" paths.
    """
    if phase not in REFLACX_LABELS:
        raise ValueError(f"phase must be 1, 2 or 3, got {phase}")
    out = Path(out_dir)
    rng = np.random.default_rng([seed, phase, 13])
    labels = REFLACX_LABELS[phase]
    readers = sorted({r.reader.name for r in readings})
    meta_buf = io.StringIO()
    meta = csv.writer(meta_buf, lineterminator="\n")
    meta.writerow(
        [
            "id",
            "split",
            "eye_tracking_data_discarded",
            "image",
            "dicom_id",
            "subject_id",
            "image_size_x",
            "image_size_y",
            *labels,
        ]
    )
    paths: dict[str, Path] = {}
    extras = []
    used: set[str] = set()
    for r in readings:
        prefix = f"P{phase}{readers.index(r.reader.name) + 1:02d}R"
        rid = f"{prefix}{int(rng.integers(100000, 999999))}"
        while rid in used:
            rid = f"{prefix}{int(rng.integers(100000, 999999))}"
        used.add(rid)
        audio = float(rng.uniform(0.5, 3.0))
        subject = int(rng.integers(10_000_000, 20_000_000))
        study = int(rng.integers(50_000_000, 60_000_000))
        image = (
            f"physionet.org/files/mimic-cxr/2.0.0/files/p{str(subject)[:2]}/p{subject}/"
            f"s{study}/{r.image_key}.dcm"
        )
        positive = _POSITIVE.get(r.label, ())
        certainty = [str(int(rng.integers(3, 6))) if lab in positive else "0" for lab in labels]
        split = ("train", "validate", "test")[int(rng.choice(3, p=[0.7, 0.1, 0.2]))]
        meta.writerow(
            [
                rid,
                split,
                "False",
                image,
                r.image_key,
                subject,
                r.image_width,
                r.image_height,
                *certainty,
            ]
        )

        mean_area = np.nanmean(r.pupil_mm**2)
        # Fixations, in image pixels through the view shown when each started.
        fx, fy = fixation_measured_positions(r)
        f = r.fixations
        fix_buf = io.StringIO()
        w = csv.writer(fix_buf, lineterminator="\n")
        w.writerow(REFLACX_FIXATION_COLUMNS)
        vidx = r.view_index_at(f.start_s)
        for k in range(len(f)):
            if not np.isfinite(fx[k]):
                continue
            v = r.views[vidx[k]]
            ix, iy = v.screen_to_image(fx[k], fy[k])
            a, m = int(f.first_sample[k]), int(f.n_samples[k])
            area = np.nanmean(r.pupil_mm[a : a + m] ** 2) / mean_area
            w.writerow(
                [
                    repr(audio + float(f.start_s[k])),
                    repr(audio + float(f.start_s[k] + f.duration_s[k])),
                    repr(float(ix)),
                    repr(float(iy)),
                    repr(float(area)),
                    *_view_cells(r, int(vidx[k]), fx[k], fy[k]),
                ]
            )
        gaze_buf = io.StringIO()
        g = csv.writer(gaze_buf, lineterminator="\n")
        g.writerow(REFLACX_GAZE_COLUMNS)
        gx, gy = r.samples_in_image()
        svidx = r.view_index_at(r.t)
        for i in range(r.t.size):
            if r.valid[i]:
                g.writerow(
                    [
                        repr(audio + float(r.t[i])),
                        repr(float(gx[i])),
                        repr(float(gy[i])),
                        repr(float(r.pupil_mm[i] ** 2 / mean_area)),
                        *_view_cells(r, int(svidx[i]), r.x[i], r.y[i]),
                    ]
                )
            else:
                g.writerow(
                    [
                        repr(audio + float(r.t[i])),
                        "",
                        "",
                        "",
                        *_view_cells(
                            r, int(svidx[i]), r.views[0].screen_rect[0], r.views[0].screen_rect[1]
                        ),
                    ]
                )
        main = out / "main_data" / rid
        gaze_dir = out / "gaze_data" / rid
        main.mkdir(parents=True, exist_ok=True)
        gaze_dir.mkdir(parents=True, exist_ok=True)
        (main / "fixations.csv").write_text(fix_buf.getvalue(), encoding="utf-8")
        (gaze_dir / "gaze.csv").write_text(gaze_buf.getvalue(), encoding="utf-8")
        ell = ["xmin,ymin,xmax,ymax,certainty," + ",".join(labels)]
        if r.finding_bbox and positive:
            x0, y0, x1, y1 = r.finding_bbox
            flags = ",".join("True" if lab in positive else "False" for lab in labels)
            ell.append(f"{x0},{y0},{x1},{y1},{max(int(c) for c in certainty)},{flags}")
        (main / "anomaly_location_ellipses.csv").write_text("\n".join(ell) + "\n", encoding="utf-8")
        margin = 0.05
        (main / "chest_bounding_box.csv").write_text(
            "xmin,ymin,xmax,ymax\n"
            f"{int(r.image_width * margin)},{int(r.image_height * margin)},"
            f"{int(r.image_width * (1 - margin))},{int(r.image_height * 0.8)}\n",
            encoding="utf-8",
        )
        paths[f"{rid}/fixations"] = main / "fixations.csv"
        paths[f"{rid}/gaze"] = gaze_dir / "gaze.csv"
        extras.append({"id": rid, "audio_offset_s": audio, "phase": phase})
    meta_path = out / "main_data" / f"metadata_phase_{phase}.csv"
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(meta_buf.getvalue(), encoding="utf-8")
    paths["metadata"] = meta_path
    paths["truth"] = write_truth(
        readings,
        out / "truth.json",
        fmt="reflacx",
        extras=extras,
        notes={
            "positions": "image pixels (already mapped through the viewer rectangles)",
            "time": "s from the start of the dictation audio = audio_offset_s + reading time",
            "angular_resolution": "image pixels per degree at the gaze point",
        },
    )
    return paths
