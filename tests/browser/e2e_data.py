"""The files a lab brings to the end-to-end browser test, written with ``ml.synthetic`` as
``make_demo_lab`` writes them: phantom chest X-rays as DICOM files (a fake patient identity in
every PHI attribute), a labels sheet, and the gaze of two simulated radiologists who read every
image, exported as an EyeLink ASC (R1) and a Tobii Pro Lab TSV (R2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml.synthetic import (
    LABELS,
    DisplayGeometry,
    Radiologist,
    make_phantom,
    simulate_reading,
    write_dicom,
)
from ml.synthetic.writers import write_eyelink_asc, write_tobii_pro_lab_tsv

# Small phantoms (rows, columns): quick to write, upload, preview and snapshot.
SIZE = (300, 250)
# The reading room of both sessions (the simulated radiologists' default screen).
SCREEN = DisplayGeometry()


@dataclass(frozen=True)
class Export:
    """A reader's export: their code, the session's tracker and the file."""

    code: str
    tracker: str
    rate_hz: float
    path: Path
    years: int
    specialty: str


@dataclass(frozen=True)
class LabFiles:
    dicoms: list[Path]
    labels: dict[str, str]  # image key -> label
    labels_csv: Path
    exports: list[Export]


def lab_files(folder: Path, *, per_class: int = 4) -> LabFiles:
    """``per_class`` DICOM phantoms of each of Normal, CHF and Pneumonia (every fifth
    MONOCHROME1), ``labels.csv`` naming their labels, and the two readers' exports."""
    folder.mkdir(parents=True, exist_ok=True)
    dicom_dir = folder / "dicom"
    dicom_dir.mkdir(exist_ok=True)
    readers = (
        ("R1", Radiologist(name="R1", style="systematic", expertise=0.9,
                           calibration_offset_deg=(0.12, -0.08))),
        ("R2", Radiologist(name="R2", style="focused", expertise=0.8,
                           calibration_offset_deg=(-0.18, 0.22))),
    )  # fmt: skip
    rates = {"R1": 250.0, "R2": 120.0}
    dicoms: list[Path] = []
    labels: dict[str, str] = {}
    readings: dict[str, list] = {code: [] for code, _ in readers}
    for i in range(per_class * len(LABELS)):
        label = LABELS[i % len(LABELS)]
        key = f"e2e-{label.lower()}-{i // len(LABELS) + 1:02d}"
        seed = 1000 + i
        phantom = make_phantom(label, seed=seed, height=SIZE[0], width=SIZE[1])
        photometric = "MONOCHROME1" if i % 5 == 4 else "MONOCHROME2"
        written = write_dicom(phantom, dicom_dir / f"{key}.dcm", photometric=photometric, seed=seed)
        dicoms.append(Path(written.path))
        labels[key] = label
        for code, radiologist in readers:
            readings[code].append(
                simulate_reading(
                    phantom,
                    radiologist,
                    geometry=SCREEN,
                    rate_hz=rates[code],
                    seed=seed,
                    image_key=key,
                )  # fmt: skip
            )
    sheet = folder / "labels.csv"
    sheet.write_text("key,label\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    asc = write_eyelink_asc(readings["R1"], folder / "R1" / "e2e_R1.asc", seed=1)["asc"]
    tsv = write_tobii_pro_lab_tsv(
        readings["R2"], folder / "R2" / "e2e_R2_Data_Export.tsv", seed=2, participant="R2"
    )["tsv"]
    exports = [
        Export("R1", "SR Research", rates["R1"], Path(asc), 18, "Thoracic radiology"),
        Export("R2", "Tobii", rates["R2"], Path(tsv), 9, "Emergency radiology"),
    ]
    return LabFiles(dicoms=dicoms, labels=labels, labels_csv=sheet, exports=exports)
